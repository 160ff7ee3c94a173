package queue

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// tailOwner stands in for a quorum queue's Raft state machine: it appends
// to the log as apply would, and takes what the queue replicates.
type tailOwner struct {
	t   *testing.T
	log *storage.Log

	mu      sync.Mutex
	entries []byte     // every entry Record got, in order
	deletes []int64    // every offset DeleteBefore got
	acks    *AckRecord // if set, Record applies to it, as every replica would
	busy    atomic.Bool
}

func newTailOwner(t *testing.T, segmentBytes int64) *tailOwner {
	t.Helper()
	lg, err := storage.Open(t.TempDir(), storage.Options{SegmentBytes: segmentBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return &tailOwner{t: t, log: lg}
}

func (o *tailOwner) tail(acks []byte) *Tail {
	return &Tail{Log: o.log, Acks: acks, Record: o.record, DeleteBefore: o.deleteBefore}
}

func (o *tailOwner) record(entries []byte) {
	if o.busy.Swap(true) {
		o.t.Error("Record called concurrently with itself")
	}
	defer o.busy.Store(false)
	if len(entries) == 0 || len(entries)%ackEntryLen != 0 || validAckEntries(entries) != len(entries) {
		o.t.Errorf("Record got %d bytes that are not whole, good entries", len(entries))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries = append(o.entries, entries...)
	if o.acks != nil {
		if err := o.acks.Apply(entries); err != nil {
			o.t.Error(err)
		}
	}
}

func (o *tailOwner) deleteBefore(off int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deletes = append(o.deletes, off)
}

// recorded returns the settled set and mark of what Record got so far.
func (o *tailOwner) recorded() (intervals, int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return decodeAcks(o.entries)
}

func (o *tailOwner) deleted() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.deletes)
}

func decodeAcks(entries []byte) (intervals, int64) {
	var set intervals
	mark := replayAckEntries(entries[:validAckEntries(entries)], &set)
	return set, mark
}

// append appends messages as a quorum queue's apply does: one record per
// batch, built as Publish builds it.
func (o *tailOwner) append(bodies ...string) {
	o.t.Helper()
	for _, b := range bodies {
		m := message.Message{Exchange: "x", RoutingKey: "k", Body: []byte(b)}
		rec, err := m.Record()
		if err != nil {
			o.t.Fatal(err)
		}
		app, err := o.log.Append(storage.AppendRecordBatch(nil, 0, time.Now().UnixMilli(), []storage.Record{rec}))
		if err != nil {
			o.t.Fatal(err)
		}
		if err := app.Wait(); err != nil {
			o.t.Fatal(err)
		}
	}
}

func (o *tailOwner) open(cfg Config, acks []byte, dl func(*Queue, []Dead) error) *Queue {
	o.t.Helper()
	q, err := Open(Options{Name: "qq", Config: cfg, DeadLetter: dl, Tail: o.tail(acks)})
	if err != nil {
		o.t.Fatal(err)
	}
	o.t.Cleanup(func() { q.Close() })
	return q
}

// Messages the owner appends after Open reach a consumer in order, counted
// as published.
func TestTailDeliversAppendedMessages(t *testing.T) {
	o := newTailOwner(t, 0)
	o.append("a")
	q := o.open(NoLimits(), nil, nil)
	c := newConsumer(10)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	o.append("b", "c", "d")
	for i, want := range []string{"a", "b", "c", "d"} {
		d := c.next(t)
		if string(d.Message.Body) != want || d.Offset != int64(i) || d.Redelivered {
			t.Fatalf("delivery %d: %q at %d (redelivered %v), want %q at %d", i, d.Message.Body, d.Offset, d.Redelivered, want, i)
		}
	}
	c.none(t)
	if n := q.Totals().Published; n != 3 {
		t.Fatalf("published %d, want 3 (the messages appended after Open)", n)
	}
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 4 {
		t.Fatalf("counts: %d ready, %d unacked; want 0, 4", ready, unacked)
	}
}

// An ack is replicated through Record; a new leader's queue opened with
// the replica's ack record keeps the acked message settled and delivers
// the unacked one again, flagged redelivered by the delivered mark.
func TestTailAckRecordCarriesToNextLeader(t *testing.T) {
	dir := t.TempDir()
	ar, err := OpenAckRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := newTailOwner(t, 0)
	o.acks = ar
	o.append("a", "b")
	q1 := o.open(NoLimits(), nil, nil)
	c := newConsumer(2)
	if _, err := q1.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	a, b := c.next(t), c.next(t)
	q1.Ack(a.Offset)
	waitFor(t, "the ack replicated", func() bool {
		set, _ := o.recorded()
		return set.contains(a.Offset)
	})
	if err := q1.Close(); err != nil {
		t.Fatal(err)
	}
	set, mark := o.recorded()
	if set.contains(b.Offset) || mark < 2 {
		t.Fatalf("replicated: settled %v, mark %d; want only %d settled, a mark past both deliveries (2 or more)", set.r, mark, a.Offset)
	}
	if _, err := o.log.Read(0, 1); err != nil {
		t.Fatalf("the log is unusable after the queue closed: %v", err)
	}

	// The next leader: the replica's record, reopened from its file.
	if err := ar.Close(); err != nil {
		t.Fatal(err)
	}
	ar2, err := OpenAckRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ar2.Close()
	o.acks = ar2
	q2 := o.open(NoLimits(), ar2.Entries(), nil)
	c2 := newConsumer(10)
	if _, err := q2.AddConsumer(c2, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := c2.next(t); string(d.Message.Body) != "b" || d.Offset != b.Offset || !d.Redelivered {
		t.Fatalf("got %q at %d (redelivered %v), want the unacked b again, redelivered", d.Message.Body, d.Offset, d.Redelivered)
	}
	c2.none(t)
	o.append("c")
	if d := c2.next(t); string(d.Message.Body) != "c" || d.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a new c, not redelivered", d.Message.Body, d.Redelivered)
	}
}

// The queue asks the owner to move the log start once a whole segment
// below is settled, once per segment freed, and never moves it itself.
func TestTailAsksDeleteBefore(t *testing.T) {
	o := newTailOwner(t, 1000)
	for i := range 30 {
		o.append(fmt.Sprintf("message %02d", i))
	}
	segs := o.log.SegmentBaseOffsets()
	if len(segs) < 3 {
		t.Fatalf("want three segments at least, got bases %v", segs)
	}
	s1, s2 := segs[1], segs[2]
	q := o.open(NoLimits(), nil, nil)
	c := newConsumer(100)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		c.next(t)
	}
	ackThrough := func(from, to int64) { // acks [from, to) and waits for it to be recorded
		t.Helper()
		for off := from; off < to; off++ {
			q.Ack(off)
		}
		waitFor(t, "acks recorded", func() bool {
			set, _ := o.recorded()
			return set.count(from, to) == to-from
		})
	}

	ackThrough(0, s1-1) // all but the first segment's last message
	time.Sleep(20 * time.Millisecond)
	if d := o.deleted(); len(d) != 0 {
		t.Fatalf("asked to delete before %v with the first segment not wholly settled", d)
	}
	ackThrough(s1-1, s1)
	waitFor(t, "DeleteBefore", func() bool { return len(o.deleted()) > 0 })
	if d := o.deleted(); !slices.Equal(d, []int64{s1}) {
		t.Fatalf("DeleteBefore got %v, want [%d]", d, s1)
	}
	if st := o.log.StartOffset(); st != 0 {
		t.Fatalf("the queue moved the log start to %d itself", st)
	}
	ackThrough(s1, s1+1) // frees no further segment: not asked again
	time.Sleep(20 * time.Millisecond)
	if d := o.deleted(); len(d) != 1 {
		t.Fatalf("asked again without a new segment freed: %v", d)
	}
	if err := o.log.DeleteRecordsBefore(s1); err != nil { // the owner applies it
		t.Fatal(err)
	}
	ackThrough(s1+1, s2)
	waitFor(t, "a second DeleteBefore", func() bool { return len(o.deleted()) > 1 })
	if d := o.deleted(); !slices.Equal(d, []int64{s1, s2}) {
		t.Fatalf("DeleteBefore got %v, want [%d %d]", d, s1, s2)
	}
}

// Admit decides as Publish would over what the queue has caught up with,
// and changes nothing; Publish refuses.
func TestTailAdmitAndPublish(t *testing.T) {
	var mu sync.Mutex
	var dead []Dead
	cfg := NoLimits()
	cfg.MaxLength = 2
	cfg.Overflow = RejectPublish
	o := newTailOwner(t, 0)
	q := o.open(cfg, nil, func(_ *Queue, d []Dead) error {
		mu.Lock()
		dead = append(dead, d...)
		mu.Unlock()
		return nil
	})
	m := &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte("new")}
	if err := q.Admit(m); err != nil {
		t.Fatalf("empty queue: Admit = %v", err)
	}
	o.append("1", "2")
	waitFor(t, "the appended messages counted", func() bool {
		ready, _, _ := q.Counts()
		return ready == 2
	})
	if err := q.Admit(m); !errors.Is(err, ErrRejected) {
		t.Fatalf("over x-max-length with reject-publish: Admit = %v, want ErrRejected", err)
	}
	if app, err := q.Publish(m); !errors.Is(err, ErrTail) || app != nil {
		t.Fatalf("Publish = %v, %v; want ErrTail", app, err)
	}

	cfg.Overflow, cfg.DeadLetter = RejectPublishDLX, true
	q.SetConfig(cfg)
	if err := q.Admit(m); !errors.Is(err, ErrRejected) {
		t.Fatalf("reject-publish-dlx: Admit = %v, want ErrRejected", err)
	}
	mu.Lock()
	if len(dead) != 1 || dead[0].Reason != MaxLen || string(dead[0].Message.Body) != "new" {
		t.Fatalf("reject-publish-dlx dead-lettered %+v, want the refused message, maxlen", dead)
	}
	mu.Unlock()

	cfg.MaxLength, cfg.MaxLengthBytes = -1, 4 // counts bodies as Publish does: 2 bytes held
	q.SetConfig(cfg)
	if err := q.Admit(&message.Message{Body: []byte("abc")}); !errors.Is(err, ErrRejected) {
		t.Fatalf("3 bytes over a 4-byte limit holding 2: Admit = %v, want ErrRejected", err)
	}
	if err := q.Admit(&message.Message{Body: []byte("ab")}); err != nil {
		t.Fatalf("2 bytes within a 4-byte limit holding 2: Admit = %v", err)
	}
	if ready, unacked, _ := q.Counts(); ready != 2 || unacked != 0 || o.log.HighWatermark() != 2 {
		t.Fatalf("Admit or Publish changed the queue: %d ready, %d unacked, log end %d", ready, unacked, o.log.HighWatermark())
	}
}

// basic.get finds what was appended at once; Delete cancels consumers,
// hands over the last entries and leaves the log to its owner.
func TestTailGetAndDelete(t *testing.T) {
	o := newTailOwner(t, 0)
	// Dir is unused in tail mode; here it names the log's own directory,
	// which Delete must leave alone.
	q, err := Open(Options{Name: "qq", Dir: o.log.Dir(), Config: NoLimits(), Tail: o.tail(nil)})
	if err != nil {
		t.Fatal(err)
	}
	c := newConsumer(0)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	o.append("x", "y")
	d, ok := q.Get(false)
	if !ok || string(d.Message.Body) != "x" {
		t.Fatalf("Get = %q, %v; want x", d.Message.Body, ok)
	}
	if err := q.Delete(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("consumer not cancelled")
	}
	// The mark covers the delivered message, written ahead of the
	// cursor by tailMarkAhead (its entry commits after it is proposed).
	if _, mark := o.recorded(); mark != 1+tailMarkAhead {
		t.Fatalf("replicated mark %d after Delete, want %d (the cursor, 1, plus tailMarkAhead)", mark, 1+tailMarkAhead)
	}
	if _, err := os.Stat(o.log.Dir()); err != nil {
		t.Fatalf("the log's directory after Delete: %v", err)
	}
	o.append("z") // the owner's log is still open
	if hw := o.log.HighWatermark(); hw != 3 {
		t.Fatalf("log end %d, want 3", hw)
	}
}

func TestTailNeedsItsFunctions(t *testing.T) {
	o := newTailOwner(t, 0)
	if _, err := Open(Options{Tail: &Tail{Log: o.log}}); err == nil {
		t.Fatal("Open took a Tail without Record and DeleteBefore")
	}
}
