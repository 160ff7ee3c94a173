package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitOffset sends a simple OffsetCommit (generation -1, as admin tools
// do) of one partition and returns its error code; a request that gets no
// answer returns an error.
func commitOffset(ctx context.Context, c *kgo.Client, group, topic string, partition int32, offset int64) (int16, error) {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// fetchOffset returns a group's committed offset of one partition (-1:
// none).
func fetchOffset(t *testing.T, c *kgo.Client, group, topic string, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetFetch %s: %v %+v", group, kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("OffsetFetch %s: %v", group, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// TestKill9KeepsCommittedOffsets is the offset commit's promise: an
// answered OffsetCommit is on disk. Committers raise their groups'
// offsets while the server is killed with SIGKILL at a random moment,
// again and again; after each restart every group's committed offset is
// at least the last one answered and at most the last one sent.
func TestKill9KeepsCommittedOffsets(t *testing.T) {
	iterations := iterationsKnob(t, 8, "SLUICE_CRASH_ITERATIONS")
	if testing.Short() {
		iterations = 2
	}
	const committers, partitions = 8, 2
	b := startBroker(t)
	b.createTopic(t, "offsets-crash", partitions, nil)
	group := func(i int) string { return fmt.Sprintf("crash-g%d", i) }
	acked := make([]int64, committers) // last offset answered without error
	sent := make([]int64, committers)  // last offset sent
	for i := range acked {
		acked[i], sent[i] = -1, -1
	}
	total := 0
	for it := range iterations {
		if it > 0 {
			b.Restart()
		}
		check := b.client(t)
		for i := range committers {
			got := fetchOffset(t, check, group(i), "offsets-crash", int32(i%partitions))
			if got < acked[i] || got > sent[i] {
				t.Fatalf("iteration %d: %s committed %d, but %d was answered and %d the last sent", it, group(i), got, acked[i], sent[i])
			}
			acked[i] = got // what is durable is the floor from now on
		}
		check.Close()

		c := b.client(t, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range committers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					next := sent[i] + 1
					sent[i] = next
					mu.Unlock()
					code, err := commitOffset(ctx, c, group(i), "offsets-crash", int32(i%partitions), next)
					if err != nil || code != 0 {
						return // the server is gone
					}
					mu.Lock()
					acked[i] = next
					total++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		b.Kill()
		cancel()
		wg.Wait()
		c.Close()
	}
	b.Restart()
	c := b.client(t)
	for i := range committers {
		if got := fetchOffset(t, c, group(i), "offsets-crash", int32(i%partitions)); got < acked[i] || got > sent[i] {
			t.Fatalf("%s committed %d, but %d was answered and %d the last sent", group(i), got, acked[i], sent[i])
		}
	}
	if total < iterations*50 {
		t.Fatalf("only %d commits answered over %d iterations: the test did not exercise much", total, iterations)
	}
	t.Logf("%d iterations: %d offset commits answered, none lost", iterations, total)
}

// TestOffsetsLogFailure: with the offsets log's fsync failing, an offset
// commit answers COORDINATOR_NOT_AVAILABLE (clients look the coordinator
// up again and retry) and takes no effect, before or after a kill -9; the
// log recovers by itself once fsyncs succeed; the metadata log is not
// involved.
func TestOffsetsLogFailure(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	b.createTopic(t, "t", 1, nil)
	c := b.client(t, kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
	commit := func(offset int64) int16 {
		code, err := commitOffset(ctxT(t, 10*time.Second), c, "g", "t", 0, offset)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := commit(5); code != 0 {
		t.Fatalf("OffsetCommit: %v", kerr.ErrorForCode(code))
	}

	b.fault(t, "fail-sync", "/offsets/")
	if code := commit(6); code != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("OffsetCommit with the offsets log failing: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}
	if got := fetchOffset(t, c, "g", "t", 0); got != 5 {
		t.Errorf("a refused commit is visible: offset %d, want 5", got)
	}
	// The metadata log does not depend on the offsets log.
	if ipr, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxT(t, 10*time.Second), c); err != nil {
		t.Fatal(err)
	} else if ipr.ErrorCode != 0 {
		t.Errorf("InitProducerID with the offsets log failing: %v", kerr.ErrorForCode(ipr.ErrorCode))
	}
	b.waitStorageAlarm(t, "offsets", "offsets")

	b.fault(t, "clear", "")
	waitFor(t, 20*time.Second, "the offsets log to recover by itself", func() bool { return len(b.storageAlarms(t)) == 0 })
	if n := strings.Count(b.Logs(), `"msg":"log failed: refusing writes until it is recovered","kind":"offsets"`); n != 1 {
		t.Errorf("the offsets log's failure logged %d times, want once", n)
	}
	if code := commit(7); code != 0 {
		t.Errorf("OffsetCommit after recovery: %v", kerr.ErrorForCode(code))
	}

	b.Kill()
	b.Restart()
	c2 := b.client(t)
	if got := fetchOffset(t, c2, "g", "t", 0); got != 7 {
		t.Errorf("after kill -9: offset %d, want 7", got)
	}
}
