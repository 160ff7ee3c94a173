package queue

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

type testConsumer struct {
	mu        sync.Mutex
	credit    int
	got       chan Delivery
	cancelled chan struct{}
}

func newConsumer(credit int) *testConsumer {
	return &testConsumer{credit: credit, got: make(chan Delivery, 1000), cancelled: make(chan struct{}, 1)}
}

func (c *testConsumer) Reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.credit == 0 {
		return false
	}
	c.credit--
	return true
}
func (c *testConsumer) Deliver(d Delivery) { c.got <- d }
func (c *testConsumer) Cancelled()         { c.cancelled <- struct{}{} }
func (c *testConsumer) grant(n int, q interface{ Kick() }) {
	c.mu.Lock()
	c.credit += n
	c.mu.Unlock()
	q.Kick()
}

func (c *testConsumer) next(t *testing.T) Delivery {
	t.Helper()
	select {
	case d := <-c.got:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
		return Delivery{}
	}
}

func (c *testConsumer) none(t *testing.T) {
	t.Helper()
	select {
	case d := <-c.got:
		t.Fatalf("unexpected delivery of %q", d.Message.Body)
	case <-time.After(50 * time.Millisecond):
	}
}

func openQueue(t *testing.T, dir string, cfg Config, dl func(*Queue, []Dead) error) *Queue {
	t.Helper()
	q, err := Open(Options{Name: "q", Dir: dir, Config: cfg, DeadLetter: dl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func publish(t *testing.T, q *Queue, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		m := &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte(b)}
		app, err := q.Publish(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeliverAckRequeueOrder(t *testing.T) {
	q := openQueue(t, t.TempDir(), NoLimits(), nil)
	publish(t, q, "a", "b", "c")
	c := newConsumer(2)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	a, b := c.next(t), c.next(t)
	c.none(t) // prefetch 2
	if string(a.Message.Body) != "a" || string(b.Message.Body) != "b" || a.Redelivered {
		t.Fatalf("got %q %q", a.Message.Body, b.Message.Body)
	}
	q.Requeue(a.Offset)
	c.grant(1, q)
	if d := c.next(t); string(d.Message.Body) != "a" || !d.Redelivered || d.DeliveryCount != 1 {
		t.Fatalf("requeued message should come back first, redelivered: %+v", d)
	}
	q.Ack(b.Offset)
	c.grant(1, q)
	if d := c.next(t); string(d.Message.Body) != "c" || d.Redelivered {
		t.Fatalf("then c: %+v", d)
	}
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 2 {
		t.Fatalf("counts %d ready %d unacked", ready, unacked)
	}
}

func TestRestartRedeliversUnacked(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		publish(t, q, fmt.Sprint(i))
	}
	for i := range 10 {
		d, ok := q.Get(false)
		if !ok || string(d.Message.Body) != fmt.Sprint(i) {
			t.Fatalf("get %d: %v %+v", i, ok, d)
		}
		if i%2 == 0 {
			q.Ack(d.Offset)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openQueue(t, dir, NoLimits(), nil)
	if ready, _, _ := q.Counts(); ready != 5 {
		t.Fatalf("ready after restart = %d, want 5", ready)
	}
	for _, want := range []string{"1", "3", "5", "7", "9"} {
		d, ok := q.Get(true)
		if !ok || string(d.Message.Body) != want {
			t.Fatalf("want %s, got %v %q", want, ok, d.Message.Body)
		}
	}
	if _, ok := q.Get(true); ok {
		t.Fatal("queue should be empty")
	}
}

func TestTTLDeadLettersAtHead(t *testing.T) {
	var mu sync.Mutex
	var dead []Dead
	cfg := NoLimits()
	cfg.MessageTTL = 20 * time.Millisecond
	cfg.DeadLetter = true
	q := openQueue(t, t.TempDir(), cfg, func(_ *Queue, d []Dead) error {
		mu.Lock()
		dead = append(dead, d...)
		mu.Unlock()
		return nil
	})
	publish(t, q, "old")
	deadline := time.Now().Add(5 * time.Second)
	for {
		ready, unacked, _ := q.Counts()
		mu.Lock()
		n := len(dead)
		mu.Unlock()
		if ready == 0 && unacked == 0 && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message did not expire: ready %d, dead %d", ready, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if dead[0].Reason != Expired || string(dead[0].Message.Body) != "old" {
		t.Fatalf("dead: %+v", dead[0])
	}
}

func TestMaxLengthOverflow(t *testing.T) {
	cfg := NoLimits()
	cfg.MaxLength = 2
	q := openQueue(t, t.TempDir(), cfg, nil)
	publish(t, q, "1", "2", "3", "4")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ready, _, _ := q.Counts(); ready == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("drop-head did not trim the queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, want := range []string{"3", "4"} {
		if d, ok := q.Get(true); !ok || string(d.Message.Body) != want {
			t.Fatalf("want %s got %q", want, d.Message.Body)
		}
	}

	cfg.Overflow = RejectPublish
	r := openQueue(t, t.TempDir(), cfg, nil)
	publish(t, r, "1", "2")
	if _, err := r.Publish(&message.Message{Body: []byte("3")}); err != ErrRejected {
		t.Fatalf("third publish: %v, want ErrRejected", err)
	}
}

func TestPurgeAndSegmentReclaim(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
	if err != nil {
		t.Fatal(err)
	}
	q.opts.Storage.SegmentBytes = 0
	for i := range 100 {
		publish(t, q, fmt.Sprint(i))
	}
	if n := q.Purge(); n != 100 {
		t.Fatalf("purged %d", n)
	}
	publish(t, q, "after")
	if d, ok := q.Get(true); !ok || string(d.Message.Body) != "after" {
		t.Fatalf("got %q", d.Message.Body)
	}
	q.Close()
	q = openQueue(t, dir, NoLimits(), nil)
	if ready, _, _ := q.Counts(); ready != 0 {
		t.Fatalf("ready after restart %d", ready)
	}
}

// TestCompactionReclaimsBehindStuckMessage: one unacked message at the
// head does not pin the segments after it: they are compacted down to the
// batches still live, and the stuck message is still delivered, requeued
// and recovered correctly.
func TestCompactionReclaimsBehindStuckMessage(t *testing.T) {
	dir := t.TempDir()
	open := func() *Queue {
		o := Options{Name: "q", Dir: dir, Config: NoLimits()}
		o.Storage.SegmentBytes = 16 << 10
		q, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	q := open()
	body := func(i int) string { return fmt.Sprintf("%04d-%s", i, string(make([]byte, 300))) }
	const n = 400
	for i := range n {
		publish(t, q, body(i))
	}
	full := q.DiskBytes()
	var stuck Delivery
	var keepOff int64 = -1
	for i := range n {
		d, ok := q.Get(false)
		if !ok || string(d.Message.Body) != body(i) {
			t.Fatalf("get %d: %v", i, ok)
		}
		switch i {
		case 0:
			stuck = d // never acked
		case 250:
			keepOff = d.Offset // requeued below: redelivered, then acked
		default:
			q.Ack(d.Offset)
		}
	}
	q.Requeue(keepOff)
	d, ok := q.Get(false)
	if !ok || d.Offset != keepOff || !d.Redelivered {
		t.Fatalf("requeued message: %v %+v", ok, d.Offset)
	}
	q.Ack(d.Offset)

	deadline := time.Now().Add(10 * time.Second)
	for q.DiskBytes() > full/4 || q.CompactedSegments() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("disk not reclaimed: %d of %d bytes, %d segments compacted", q.DiskBytes(), full, q.CompactedSegments())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("log %d -> %d bytes with one message unacked", full, q.DiskBytes())
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 1 {
		t.Fatalf("counts %d ready %d unacked", ready, unacked)
	}
	// The stuck message is still there: requeued (a consumer went away),
	// it is delivered again.
	q.Requeue(stuck.Offset)
	d, ok = q.Get(false)
	if !ok || d.Offset != stuck.Offset || string(d.Message.Body) != body(0) || !d.Redelivered {
		t.Fatalf("stuck message after compaction: %v %+v", ok, d.Offset)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart it is the only message, flagged redelivered, and
	// new messages follow it.
	q = open()
	defer q.Close()
	if ready, unacked, _ := q.Counts(); ready != 1 || unacked != 0 {
		t.Fatalf("after restart: %d ready %d unacked", ready, unacked)
	}
	publish(t, q, "new")
	d, ok = q.Get(false)
	if !ok || string(d.Message.Body) != body(0) || !d.Redelivered {
		t.Fatalf("after restart: %v %q redelivered=%v", ok, d.Message.Body[:4], d.Redelivered)
	}
	d2, ok := q.Get(false)
	if !ok || string(d2.Message.Body) != "new" || d2.Redelivered {
		t.Fatalf("then the new message, not redelivered: %v %+v", ok, d2)
	}
	q.Ack(d.Offset, d2.Offset)
	if _, ok := q.Get(false); ok {
		t.Fatal("queue should be empty")
	}
}

// TestRedeliveredAfterRestart: messages delivered but not acked before a
// clean restart come back flagged redelivered; messages never delivered
// do not.
func TestRedeliveredAfterRestart(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, q, "a", "b", "c", "d")
	for range 2 {
		if _, ok := q.Get(false); !ok {
			t.Fatal("get")
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openQueue(t, dir, NoLimits(), nil)
	for _, want := range []struct {
		body string
		re   bool
	}{{"a", true}, {"b", true}, {"c", false}, {"d", false}} {
		d, ok := q.Get(true)
		if !ok || string(d.Message.Body) != want.body || d.Redelivered != want.re {
			t.Fatalf("want %s redelivered=%v, got %v %q %v", want.body, want.re, ok, d.Message.Body, d.Redelivered)
		}
	}
}

// TestRedeliveredAfterCrash: a copy of the queue's files taken at once
// after the deliveries, as a killed process leaves them (written, never
// closed), reopens with every delivered message flagged redelivered, by
// consumer or basic.get, and the never-delivered ones not.
func TestRedeliveredAfterCrash(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, NoLimits(), nil)
	publish(t, q, "a", "b", "c", "d", "e", "f")
	c := newConsumer(3)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b", "c"} {
		if d := c.next(t); string(d.Message.Body) != want {
			t.Fatalf("delivered %q, want %q", d.Message.Body, want)
		}
	}
	if d, ok := q.Get(false); !ok || string(d.Message.Body) != "d" {
		t.Fatalf("get: %v %q", ok, d.Message.Body)
	}

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	q2 := openQueue(t, crashed, NoLimits(), nil)
	for _, want := range []struct {
		body string
		re   bool
	}{{"a", true}, {"b", true}, {"c", true}, {"d", true}, {"e", false}, {"f", false}} {
		d, ok := q2.Get(true)
		if !ok || string(d.Message.Body) != want.body || d.Redelivered != want.re {
			t.Fatalf("want %s redelivered=%v, got %v %q redelivered=%v", want.body, want.re, ok, d.Message.Body, d.Redelivered)
		}
	}
}

// copyDir copies the files under src to dst, as they are now.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// basic.get right after a publish finds the message even while its write
// is still on the way to disk (a message becomes readable once durable).
func TestGetFindsMessageStillBeingWritten(t *testing.T) {
	q := openQueue(t, t.TempDir(), NoLimits(), nil)
	for i := range 50 {
		body := fmt.Sprint("m", i)
		m := message.Message{Body: []byte(body)}
		if _, err := q.Publish(&m); err != nil {
			t.Fatal(err)
		}
		d, ok := q.Get(true)
		if !ok {
			t.Fatalf("get %d right after its publish found nothing", i)
		}
		if string(d.Message.Body) != body {
			t.Fatalf("get %d: %q", i, d.Message.Body)
		}
	}
}

// TestCompactionOfSegmentDeletedMeanwhile: a compaction job planned for a
// wholly settled segment that a flush deletes (moving the log start past
// it) before the job runs finds the segment gone; that is not a failure.
// Under flat-out load the two raced and the queue logged "compacting the
// queue's log failed ... no closed segment at N".
func TestCompactionOfSegmentDeletedMeanwhile(t *testing.T) {
	var logs syncBuffer
	o := Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	o.Storage.SegmentBytes = 4 << 10
	q, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	body := string(make([]byte, 300))
	for range 40 {
		publish(t, q, body)
	}
	segs := q.log.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(segs))
	}
	first := segs[0]
	for off := first.Base; off < first.End; off++ {
		d, ok := q.Get(false)
		if !ok || d.Offset != off {
			t.Fatalf("get %d: %v %d", off, ok, d.Offset)
		}
		q.Ack(d.Offset)
	}
	// The job as maybeCompactLocked plans it for the settled segment...
	q.mu.Lock()
	job := compactJob{segs: []storage.SegmentInfo{first}, live: []int64{0}}
	job.settled.add(first.Base, first.End)
	q.mu.Unlock()
	// ...then a flush moves the start past it (whole segments go)...
	if err := q.log.DeleteRecordsBefore(first.End); err != nil {
		t.Fatal(err)
	}
	if s := q.log.Segments(); s[0].Base == first.Base {
		t.Fatalf("segment %d still there", first.Base)
	}
	// ...and then the job runs.
	q.compaction.wg.Add(1)
	q.compact(job)
	if strings.Contains(logs.String(), "failed") {
		t.Fatalf("compaction of a segment deleted meanwhile logged a failure:\n%s", logs.String())
	}
	// The queue carries on: the rest is delivered in order.
	for off := first.End; off < 40; off++ {
		if d, ok := q.Get(true); !ok || d.Offset != off {
			t.Fatalf("after the compaction: get %v %d, want %d", ok, d.Offset, off)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A power loss can take the tail of the log (published, delivered and
// acked before its fsync, so never confirmed) while the ack record keeps
// the acks of that tail. The offsets are then given to new messages: the
// stale acks must not settle them, at this start or at any later one.
func TestAcksOfLostTailDoNotSettleNewMessages(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, q, "a", "b", "c", "d", "e")
	head := t.TempDir()
	copyDir(t, filepath.Join(dir, "log"), head) // the log as the power loss will leave it
	publish(t, q, "f", "g", "h", "i", "j")
	for range 10 {
		d, ok := q.Get(false)
		if !ok {
			t.Fatal("get: empty")
		}
		q.Ack(d.Offset)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "log")); err != nil {
		t.Fatal(err)
	}
	copyDir(t, head, filepath.Join(dir, "log"))

	// The log ends at 5 again, the ack record settles [0, 10).
	q, err = Open(Options{Name: "q", Dir: dir, Config: NoLimits()})
	if err != nil {
		t.Fatal(err)
	}
	if ready, _, _ := q.Counts(); ready != 0 {
		t.Fatalf("ready after the power loss = %d, want 0", ready)
	}
	publish(t, q, "new-1", "new-2", "new-3") // offsets 5, 6, 7
	if d, ok := q.Get(false); !ok || string(d.Message.Body) != "new-1" {
		t.Fatalf("get: %v %q", ok, d.Message.Body) // delivered, left unacked
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openQueue(t, dir, NoLimits(), nil)
	if ready, _, _ := q.Counts(); ready != 3 {
		t.Fatalf("ready after the next restart = %d, want 3 (the new messages)", ready)
	}
	for _, want := range []string{"new-1", "new-2", "new-3"} {
		d, ok := q.Get(true)
		if !ok || string(d.Message.Body) != want {
			t.Fatalf("want %s, got %v %q", want, ok, d.Message.Body)
		}
	}
}
