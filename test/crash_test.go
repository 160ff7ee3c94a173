package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKill9WhileProducingKeepsEveryAcknowledgedRecord is the data-safety
// promise: with the default durability, an acks=all answer means the
// record is on disk. Producers send while the server is killed with
// SIGKILL at a random moment, again and again; after each restart every
// acknowledged record is at its offset, in order, with no gaps.
func TestKill9WhileProducingKeepsEveryAcknowledgedRecord(t *testing.T) {
	iterations := iterationsKnob(t, 20, "SLUICE_CRASH_ITERATIONS")
	if testing.Short() {
		iterations = 2
	}
	const partitions = 4
	b := startBroker(t, "--segment-bytes=262144") // small segments: crashes also hit rolls
	b.createTopic(t, "crash", partitions, nil)

	acked := make([]map[int64]string, partitions) // partition -> offset -> value
	for p := range acked {
		acked[p] = map[int64]string{}
	}
	var mu sync.Mutex
	total := 0
	for it := range iterations {
		if it > 0 {
			b.Restart()
		}
		verifyCrashLog(t, b, acked, it)

		prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
			kgo.RecordRetries(3), kgo.RequestRetries(2), kgo.RetryTimeout(3*time.Second))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := range partitions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := 0; ctx.Err() == nil; seq++ {
					value := fmt.Sprintf("it%d-p%d-%d", it, p, seq)
					rec := &kgo.Record{Topic: "crash", Partition: int32(p), Value: []byte(value)}
					prod.Produce(ctx, rec, func(r *kgo.Record, err error) {
						if err != nil {
							return
						}
						mu.Lock()
						if prev, ok := acked[p][r.Offset]; ok && prev != value {
							t.Errorf("offset %d/%d acknowledged twice: %q then %q", p, r.Offset, prev, value)
						}
						acked[p][r.Offset] = value
						total++
						mu.Unlock()
					})
					if seq%64 == 63 {
						time.Sleep(time.Millisecond) // let batches form
					}
				}
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		b.Kill()
		cancel()
		wg.Wait()
		prod.Close() // fails whatever was still in flight
	}
	b.Restart()
	readBack := verifyCrashLog(t, b, acked, iterations)
	mu.Lock()
	defer mu.Unlock()
	if total < iterations*100 {
		t.Fatalf("only %d records acknowledged over %d iterations: the test did not exercise much", total, iterations)
	}
	// verifyCrashLog fails the test on any missing, changed or reordered
	// record, so lost and duplicated are 0 when this line is reached.
	t.Logf("%d iterations: %d records acknowledged, %d read back (acknowledged or not), 0 lost, 0 duplicated offsets", iterations, total, readBack)
}

// iterationsKnob is a campaign's iteration count: the first of the named
// environment variables that is set (a positive number), else def.
func iterationsKnob(t *testing.T, def int, envs ...string) int {
	t.Helper()
	for _, env := range envs {
		if s := os.Getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", env, s)
			}
			return n
		}
	}
	return def
}

// verifyCrashLog reads every partition from the start and checks offsets
// are contiguous and every acknowledged record is present.
func verifyCrashLog(t *testing.T, b *broker, acked []map[int64]string, it int) (readBack int) {
	t.Helper()
	adm := b.admin(t)
	ends, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), "crash")
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[int32]kgo.Offset{}
	want := 0
	for p := range acked {
		e, _ := ends.Lookup("crash", int32(p))
		for off := range acked[p] {
			if off >= e.Offset {
				t.Fatalf("iteration %d: partition %d ends at %d but offset %d was acknowledged", it, p, e.Offset, off)
			}
		}
		offsets[int32(p)] = kgo.NewOffset().AtStart()
		want += int(e.Offset)
	}
	if want == 0 {
		return 0
	}
	c := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"crash": offsets}))
	recs := consumeN(t, c, want, 60*time.Second)
	next := make([]int64, len(acked))
	for _, r := range recs {
		p := r.Partition
		if r.Offset != next[p] {
			t.Fatalf("iteration %d: partition %d offset %d after %d: gap or reorder", it, p, r.Offset, next[p]-1)
		}
		next[p]++
		if v, ok := acked[p][r.Offset]; ok && v != string(r.Value) {
			t.Fatalf("iteration %d: partition %d offset %d holds %q, acknowledged %q", it, p, r.Offset, r.Value, v)
		}
	}
	for p := range acked {
		for off := range acked[p] {
			if off >= next[p] {
				t.Fatalf("iteration %d: acknowledged %d/%d missing", it, p, off)
			}
		}
	}
	c.Close()
	return len(recs)
}
