package test

// A real small file system filled under load of both protocols: a
// loop-mounted ext4 image holds the data directory, so that every writer
// of the broker (partition and queue logs, the metadata log, queues' ack
// records) meets a real ENOSPC.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// smallFS mounts a fresh ext4 image of size bytes on a temporary
// directory and returns the mount point; it skips the test when the
// machine does not allow it (not root, no loop devices, no mkfs.ext4).
func smallFS(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a loop image needs root")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not available: %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		if f, cerr := os.Create(img); cerr == nil {
			f.Close()
		}
		if err := os.Truncate(img, size); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount an image here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

// fillTo writes a filler file so that about leave bytes stay free, and
// returns its path.
func fillTo(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	n := freeBytes(t, dir) - leave
	if n <= 0 {
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
		t.Fatalf("fallocate %d bytes: %v", n, err)
	}
	return path
}

// startOn starts a broker whose data directory (and log) are on the
// file system mounted at mnt, with the load test's topic and queue.
func startOn(t *testing.T, mnt string, extra ...string) *broker {
	t.Helper()
	b := &broker{t: t, DataDir: filepath.Join(mnt, "data"), extra: append([]string{"--segment-bytes", "4194304"}, extra...), ownPorts: true}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.start()
	t.Cleanup(func() {
		b.Stop()
		b.logFile.Close() // it is on the file system, which unmounts next
	})
	b.createTopic(t, loadTopic, loadPartitions, nil)
	ch := b.channel(t)
	if _, err := ch.QueueDeclare(loadQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// loadTracker runs a Kafka producer and an AMQP publisher against b and
// records what each was told is stored.
type loadTracker struct {
	mu        sync.Mutex
	acked     []map[int64]string // partition -> offset -> value
	confirmed map[string]bool
	kafkaErrs int
	amqpErrs  int
	seq       int
}

const loadTopic, loadQueue, loadPartitions = "load", "load", 4

func newLoadTracker() *loadTracker {
	lt := &loadTracker{confirmed: map[string]bool{}}
	for range loadPartitions {
		lt.acked = append(lt.acked, map[int64]string{})
	}
	return lt
}

// run drives both protocols until ctx ends.
func (lt *loadTracker) run(ctx context.Context, t *testing.T, b *broker, phase string) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		prod := b.client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
			kgo.RecordRetries(1000), kgo.RecordDeliveryTimeout(15*time.Second))
		defer prod.Close()
		value := make([]byte, 1024)
		for i := 0; ctx.Err() == nil; i++ {
			v := fmt.Sprintf("%s-%d-", phase, i)
			copy(value, v)
			body := string(value[:len(v)]) + string(value[len(v):])
			prod.Produce(ctx, &kgo.Record{Topic: loadTopic, Value: []byte(body)}, func(r *kgo.Record, err error) {
				lt.mu.Lock()
				defer lt.mu.Unlock()
				if err != nil {
					lt.kafkaErrs++
					return
				}
				lt.acked[r.Partition][r.Offset] = body
			})
			if i%256 == 255 {
				time.Sleep(time.Millisecond)
			}
		}
		prod.Flush(context.Background())
	}()
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; {
			conn, err := amqp.Dial(b.amqpURL())
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			ch, err := conn.Channel()
			if err == nil {
				err = ch.Confirm(false)
			}
			for ; err == nil && ctx.Err() == nil; i++ {
				body := fmt.Sprintf("%s-%d", phase, i)
				var dc *amqp.DeferredConfirmation
				dc, err = ch.PublishWithDeferredConfirmWithContext(ctx, "", loadQueue, false, false,
					amqp.Publishing{DeliveryMode: amqp.Persistent, Body: make([]byte, 1024), MessageId: body})
				if err != nil {
					break
				}
				var ok bool
				if ok, err = dc.WaitContext(ctx); ok {
					lt.mu.Lock()
					lt.confirmed[body] = true
					lt.mu.Unlock()
				} else if err == nil {
					err = errors.New("nacked")
				}
			}
			if err != nil && ctx.Err() == nil {
				lt.mu.Lock()
				lt.amqpErrs++
				lt.mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
			conn.Close()
		}
	}()
	wg.Wait()
}

// total counts what was acknowledged so far, records and messages.
func (lt *loadTracker) total() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	n := len(lt.confirmed)
	for _, m := range lt.acked {
		n += len(m)
	}
	return n
}

// verify reads everything back after a restart: every acknowledged
// record at its offset, every confirmed message in the queue.
func (lt *loadTracker) verify(t *testing.T, b *broker) {
	t.Helper()
	lt.mu.Lock()
	defer lt.mu.Unlock()
	ends, err := b.admin(t).ListEndOffsets(ctxT(t, 10*time.Second), loadTopic)
	if err != nil {
		t.Fatal(err)
	}
	offsets, want := map[int32]kgo.Offset{}, 0
	for p := range lt.acked {
		e, _ := ends.Lookup(loadTopic, int32(p))
		offsets[int32(p)] = kgo.NewOffset().AtStart()
		want += int(e.Offset)
	}
	got := make([]map[int64]string, loadPartitions)
	for p := range got {
		got[p] = map[int64]string{}
	}
	if want > 0 {
		c := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{loadTopic: offsets}))
		for _, r := range consumeN(t, c, want, 60*time.Second) {
			got[r.Partition][r.Offset] = string(r.Value)
		}
	}
	ackedN, lost := 0, 0
	for p := range lt.acked {
		for off, v := range lt.acked[p] {
			ackedN++
			if got[p][off] != v {
				lost++
				if lost <= 5 {
					t.Errorf("acknowledged record %d/%d missing or changed after the restart", p, off)
				}
			}
		}
	}
	ch := b.channel(t)
	seen, dups := map[string]bool{}, 0
	for {
		d, ok, err := ch.Get(loadQueue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if seen[d.MessageId] {
			dups++
		}
		seen[d.MessageId] = true
	}
	missing := 0
	for body := range lt.confirmed {
		if !seen[body] {
			missing++
		}
	}
	t.Logf("kafka: %d acknowledged, %d read back, %d lost, %d produce errors; amqp: %d confirmed, %d read back, %d lost, %d duplicated, %d publish errors",
		ackedN, want, lost, lt.kafkaErrs, len(lt.confirmed), len(seen), missing, dups, lt.amqpErrs)
	if lost > 0 || missing > 0 {
		t.Errorf("lost %d acknowledged records and %d confirmed messages", lost, missing)
	}
	if ackedN == 0 || len(lt.confirmed) == 0 {
		t.Errorf("nothing acknowledged (%d records, %d messages): the test exercised nothing", ackedN, len(lt.confirmed))
	}
}

// TestDiskFullWithoutAlarm fills a real file system with the disk alarm
// off: writes fail with the protocols' own errors, nothing acknowledged is
// lost, a queue declared while the disk is full does not exist after a
// restart, and once space returns the broker recovers by itself.
func TestDiskFullWithoutAlarm(t *testing.T) {
	mnt := smallFS(t, 160<<20)
	b := startOn(t, mnt, "--disk-free-limit", "0")
	filler := fillTo(t, mnt, 24<<20)

	lt := newLoadTracker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lt.run(ctx, t, b, "full"); close(done) }()
	waitFor(t, 60*time.Second, "a log failing on the full disk", func() bool { return len(b.storageAlarms(t)) > 0 })
	t.Logf("failed logs: %v", b.storageAlarms(t))

	// A declaration refused for want of space does not exist afterwards;
	// one that succeeded does.
	ch := b.channel(t)
	_, declareErr := ch.QueueDeclare("declared-when-full", true, false, false, false, nil)
	t.Logf("queue.declare on the full disk: %v", declareErr)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every log to recover by itself", func() bool { return len(b.storageAlarms(t)) == 0 })
	acked := lt.total
	before := acked()
	waitFor(t, 30*time.Second, "traffic acknowledged after the recovery", func() bool { return acked() > before+1000 })
	cancel()
	<-done

	b.Kill()
	b.Restart()
	lt.verify(t, b)
	ch = b.channel(t)
	_, err := ch.QueueDeclarePassive("declared-when-full", true, false, false, false, nil)
	switch {
	case declareErr != nil && err == nil:
		t.Errorf("queue.declare failed (%v), yet the queue exists after the restart", declareErr)
	case declareErr == nil && err != nil:
		t.Errorf("queue.declare succeeded, yet the queue is gone after the restart: %v", err)
	}
}

// TestDiskFullWithDefaultAlarm fills a real file system with the default
// disk alarm (100 MB): the alarm blocks publishers of both protocols
// before any write fails, at any write rate, free space never falls far
// below the limit, and once space returns traffic resumes; nothing
// acknowledged is lost across a kill -9.
func TestDiskFullWithDefaultAlarm(t *testing.T) {
	mnt := smallFS(t, 320<<20)
	b := startOn(t, mnt, "--resource-check-interval", "1s")
	filler := fillTo(t, mnt, 160<<20)

	var (
		mu          sync.Mutex
		minFree     = freeBytes(t, mnt)
		failedLogs  int
		stopWatch   = make(chan struct{})
		watcherDone = make(chan struct{})
	)
	go func() { // watch free space and failed logs all along
		defer close(watcherDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(10 * time.Millisecond):
			}
			f := freeBytes(t, mnt)
			n := len(b.storageAlarms(t))
			mu.Lock()
			minFree = min(minFree, f)
			failedLogs = max(failedLogs, n)
			mu.Unlock()
		}
	}()
	diskAlarm := func() bool {
		_, body := b.httpDo(t, "guest", "guest", "GET", "/api/health/checks/alarms", nil)
		return strings.Contains(string(body), `"resource":"disk"`)
	}
	lt := newLoadTracker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lt.run(ctx, t, b, "alarm"); close(done) }()
	waitFor(t, 60*time.Second, "the disk alarm", diskAlarm)
	time.Sleep(2 * time.Second) // publishers stay blocked: nothing more is written
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the disk alarm to clear", func() bool { return !diskAlarm() })
	acked := lt.total
	before := acked()
	waitFor(t, 30*time.Second, "traffic acknowledged after the alarm cleared", func() bool { return acked() > before+1000 })
	cancel()
	<-done
	close(stopWatch)
	<-watcherDone

	mu.Lock()
	t.Logf("least free space seen: %d MiB (limit 100 MB); failed logs seen: %d", minFree>>20, failedLogs)
	if failedLogs > 0 {
		t.Errorf("%d logs failed although the disk alarm should have blocked publishers first", failedLogs)
	}
	if minFree < 80*1000*1000 {
		t.Errorf("free space fell to %d bytes, far below the 100 MB limit", minFree)
	}
	mu.Unlock()
	b.Kill()
	b.Restart()
	lt.verify(t, b)
}
