package queue

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// The core's tests drive it the way Queue does, with the log, the clock
// and the dead-letter exchange simulated in memory: no disk, no
// goroutine, no sleeping. Time moves only by sim.advance.

type fakeConsumer struct {
	name   string
	credit int
}

func (f *fakeConsumer) Reserve() bool {
	if f.credit == 0 {
		return false
	}
	f.credit--
	return true
}
func (f *fakeConsumer) consumerName() string { return f.name }
func (f *fakeConsumer) Deliver(Delivery)     {}
func (f *fakeConsumer) Cancelled()           {}

type got struct {
	to          string // consumer name, "get" for basic.get
	body        string
	off         int64
	redelivered bool
	count       int32
}

func (g got) String() string {
	s := g.to + ":" + g.body
	if g.redelivered {
		s += "(r"
		if g.count > 0 {
			s += fmt.Sprint(g.count)
		}
		s += ")"
	}
	return s
}

type sim struct {
	t        *testing.T
	c        *core
	now      time.Time
	disk     []loadedMsg // the log, by offset
	readable int64       // the log's readable end; -1: all of disk
	got      []got
	dead     []Dead // copies the dead-letter exchange took
	dlxFail  bool   // the dead-letter publish fails
	dlxTries int    // dead-letter publishes attempted
	reads    int    // reads the core asked for
	dropped  int64  // messages dropped for want of a dead-letter exchange
	acks     intervals
	mark     int64 // the delivered mark the ack record holds
	wake     time.Time
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSim(t *testing.T, cfg Config, dlx bool) *sim {
	return &sim{t: t, c: newCore(cfg, dlx, t0), now: t0, readable: -1}
}

func (s *sim) advance(d time.Duration) { s.now = s.now.Add(d) }

func (s *sim) readableEnd() int64 {
	if s.readable >= 0 {
		return s.readable
	}
	return int64(len(s.disk))
}

// publish offers a message as Queue.Publish does; expiration is the
// per-message TTL in ms ("" for none).
func (s *sim) publish(body, expiration string) admission {
	m := message.Message{RoutingKey: "k", Body: []byte(body)}
	if expiration != "" {
		m.Properties.Present |= message.PropExpiration
		m.Properties.Expiration = expiration
	}
	a := s.c.admitPublish(m.Size())
	if a != admit {
		if a == rejectDLX {
			s.dead = append(s.dead, Dead{Message: m, Reason: MaxLen})
		}
		return a
	}
	off := int64(len(s.disk))
	s.disk = append(s.disk, loadedMsg{off: off, m: m, ts: s.now.UnixMilli()})
	s.c.enqueued(off, m.Size(), s.now)
	s.perform()
	return a
}

func (s *sim) pub(bodies ...string) {
	for _, b := range bodies {
		if a := s.publish(b, ""); a != admit {
			s.t.Fatalf("publish %q refused (%d)", b, a)
		}
	}
}

// perform does what Queue.perform does, against the simulation.
func (s *sim) perform() {
	for n := 0; ; n++ {
		s.spin(n)
		r := s.c.ready()
		for _, sp := range r.settled {
			s.acks.add(sp.from, sp.to)
		}
		s.dropped += r.dropped
		s.mark = max(s.mark, r.mark, s.c.redeliverBelow)
		for _, o := range r.deliveries {
			if o.d.Offset >= s.mark {
				s.t.Fatalf("offset %d delivered with the delivered mark at %d: a crash now would bring it back unflagged", o.d.Offset, s.mark)
			}
			s.got = append(s.got, got{to: o.to.c.(interface{ consumerName() string }).consumerName(), body: string(o.d.Message.Body),
				off: o.d.Offset, redelivered: o.d.Redelivered, count: o.d.DeliveryCount})
		}
		if !r.wake.IsZero() {
			s.wake = r.wake
		}
		for _, rq := range r.reads {
			s.reads++
			end := rq.off + 1
			if rq.ahead {
				end = min(rq.off+4, s.readableEnd()) // a short read-ahead, to see refills
			}
			s.c.readDone(append([]loadedMsg(nil), s.disk[rq.off:end]...))
		}
		if len(r.dead) > 0 {
			var offs []int64
			for _, d := range r.dead {
				s.dlxTries++
				if !d.loaded {
					d.d.Message = s.disk[d.off].m
				}
				if !s.dlxFail {
					s.dead = append(s.dead, d.d)
				}
				offs = append(offs, d.off)
			}
			s.c.deadLettered(offs, !s.dlxFail, s.now)
		}
		if len(r.reads) == 0 && len(r.dead) == 0 && len(r.settled) == 0 && len(r.deliveries) == 0 {
			return
		}
	}
}

// spin fails a loop that does not settle down: the core must reach a
// state with nothing to do.
func (s *sim) spin(n int) {
	if n > 10000 {
		s.t.Fatal("the core keeps asking for work")
	}
}

// dispatch runs the dispatcher until it has nothing to do now.
func (s *sim) dispatch() {
	s.wake = time.Time{}
	for n := 0; ; n++ {
		s.spin(n)
		st := s.c.dispatch(s.now, s.readableEnd())
		s.perform()
		if st == empty {
			return
		}
	}
}

func (s *sim) get(noAck bool) (Delivery, bool) {
	for n := 0; ; n++ {
		s.spin(n)
		d, st := s.c.get(s.now, s.readableEnd(), noAck)
		s.perform()
		switch st {
		case took:
			if d.Offset >= s.mark {
				s.t.Fatalf("offset %d got with the delivered mark at %d", d.Offset, s.mark)
			}
			return d, true
		case empty:
			return Delivery{}, false
		}
	}
}

func (s *sim) consume(name string, credit int, opts ConsumerOptions) (*fakeConsumer, uint64) {
	f := &fakeConsumer{name: name, credit: credit}
	id, err := s.c.addConsumer(f, opts, s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	return f, id
}

// took returns the deliveries since the last call, as "consumer:body"
// with (r) for redelivered and the delivery count when above zero.
func (s *sim) took() string {
	out := make([]string, len(s.got))
	for i, g := range s.got {
		out[i] = g.String()
	}
	s.got = nil
	return strings.Join(out, " ")
}

func (s *sim) offsetOf(body string) int64 {
	for _, m := range s.disk {
		if string(m.m.Body) == body {
			return m.off
		}
	}
	s.t.Fatalf("no message %q", body)
	return -1
}

func (s *sim) offs(bodies ...string) []int64 {
	out := make([]int64, len(bodies))
	for i, b := range bodies {
		out[i] = s.offsetOf(b)
	}
	return out
}

func (s *sim) deadLetters() string {
	out := make([]string, len(s.dead))
	for i, d := range s.dead {
		out[i] = string(d.Message.Body) + "/" + string(d.Reason)
	}
	s.dead = nil
	return strings.Join(out, " ")
}

func (s *sim) counts(wantReady, wantUnacked int64) {
	s.t.Helper()
	r, u, _ := s.c.counts()
	if r != wantReady || u != wantUnacked {
		s.t.Fatalf("ready %d unacked %d, want %d and %d", r, u, wantReady, wantUnacked)
	}
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func TestCoreRequeueOrder(t *testing.T) {
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b", "c", "d", "e")
	c, _ := s.consume("c1", 5, ConsumerOptions{})
	s.dispatch()
	expect(t, "first deliveries", s.took(), "c1:a c1:b c1:c c1:d c1:e")
	// Returned out of order, they come back in offset order, before
	// anything newer, flagged redelivered with their delivery count.
	s.c.requeue(s.offs("d", "b"))
	s.c.requeue(s.offs("e"))
	s.pub("f")
	c.credit = 4
	s.dispatch()
	expect(t, "after requeue", s.took(), "c1:b(r1) c1:d(r1) c1:e(r1) c1:f")
	s.counts(0, 6)
	if n := s.c.ack(s.offs("a", "b", "c", "d", "e", "f")); n != 6 {
		t.Fatalf("acked %d, want 6", n)
	}
	s.perform()
	s.counts(0, 0)
	if s.acks.count(0, 6) != 6 {
		t.Fatalf("ack record holds %v, want [0,6)", s.acks.r)
	}
	// Acking twice settles nothing more.
	if n := s.c.ack(s.offs("a")); n != 0 {
		t.Fatalf("second ack settled %d", n)
	}
}

func TestCoreReadsAreEffects(t *testing.T) {
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b", "c", "d", "e", "f")
	s.consume("c1", 10, ConsumerOptions{})
	// The core decides nothing about a head it has not been given: it
	// asks for a read and waits.
	if st := s.c.dispatch(s.now, s.readableEnd()); st != needRead {
		t.Fatalf("dispatch without the head read: %v, want needRead", st)
	}
	r := s.c.ready()
	if len(r.reads) != 1 || r.reads[0] != (readReq{off: 0, ahead: true}) || len(r.deliveries) != 0 {
		t.Fatalf("ready = %+v, want one read-ahead at 0", r)
	}
	// A read that comes back after the queue moved on is ignored.
	s.c.purge()
	s.c.ready()
	s.c.readDone(append([]loadedMsg(nil), s.disk...))
	s.dispatch()
	expect(t, "after a purge", s.took(), "")
	s.pub("g", "h", "i", "j", "k")
	s.reads = 0
	s.dispatch()
	expect(t, "deliveries", s.took(), "c1:g c1:h c1:i c1:j c1:k")
	if s.reads != 2 {
		t.Fatalf("%d reads for 5 messages with a read-ahead of 4, want 2", s.reads)
	}
	// Only what is readable is delivered.
	s.readable = int64(len(s.disk))
	s.pub("l")
	s.dispatch()
	expect(t, "before it is readable", s.took(), "")
	s.readable = -1
	s.dispatch()
	expect(t, "once readable", s.took(), "c1:l")
}

func TestCoreUnreadableIsSettled(t *testing.T) {
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b")
	s.consume("c1", 10, ConsumerOptions{})
	s.c.dispatch(s.now, s.readableEnd())
	s.c.ready()
	s.c.unreadable(0)
	s.c.ready()
	s.dispatch()
	expect(t, "after an unreadable head", s.took(), "c1:b")
	s.counts(0, 1)
}

func TestCoreTTL(t *testing.T) {
	cfg := NoLimits()
	cfg.MessageTTL = time.Second
	s := newSim(t, cfg, true)
	s.pub("a")
	s.advance(500 * time.Millisecond)
	s.pub("b")
	if a := s.publish("c", "200"); a != admit { // its own, shorter TTL
		t.Fatal("refused")
	}
	// No consumer: the head still expires, on the wake-up the core asks for.
	s.dispatch()
	if want := t0.Add(time.Second); !s.wake.Equal(want) {
		t.Fatalf("wake %v, want %v (a's expiry)", s.wake, want)
	}
	s.advance(499 * time.Millisecond)
	s.dispatch()
	expect(t, "before expiry", s.deadLetters(), "")
	s.advance(time.Millisecond)
	s.dispatch()
	// Expiry happens at the head only: c (expired at 700ms) goes once b,
	// ahead of it, has gone (RabbitMQ's rule).
	expect(t, "at a's expiry", s.deadLetters(), "a/expired")
	if want := t0.Add(1500 * time.Millisecond); !s.wake.Equal(want) {
		t.Fatalf("wake %v, want %v (b's expiry)", s.wake, want)
	}
	s.counts(2, 0)
	s.advance(500 * time.Millisecond)
	s.dispatch()
	expect(t, "at b's expiry", s.deadLetters(), "b/expired c/expired")
	s.counts(0, 0)
	// Nothing visible: still look again within the TTL (at most a
	// second), so that expiry drains a queue whose head is not readable.
	if want := s.now.Add(time.Second); !s.wake.Equal(want) {
		t.Fatalf("idle wake %v, want %v", s.wake, want)
	}

	// A consumer gets what has not expired; what was delivered and is
	// requeued after its expiry expires at the head.
	s.pub("d")
	s.consume("c1", 1, ConsumerOptions{})
	s.dispatch()
	expect(t, "delivered", s.took(), "c1:d")
	s.advance(2 * time.Second)
	s.c.requeue(s.offs("d"))
	s.dispatch()
	expect(t, "requeued after expiry", s.deadLetters(), "d/expired")
	expect(t, "nothing delivered", s.took(), "")
}

func TestCoreTTLWithoutDeadLetterDrops(t *testing.T) {
	cfg := NoLimits()
	cfg.MessageTTL = 0
	s := newSim(t, cfg, false)
	s.pub("a", "b")
	s.dispatch()
	s.counts(0, 0)
	if s.acks.count(0, 2) != 2 || s.dropped != 2 {
		t.Fatalf("ack record %v, %d dropped; want [0,2) and 2", s.acks.r, s.dropped)
	}
}

func TestCoreDeadLetterSettlesOnlyAfterTheCopy(t *testing.T) {
	s := newSim(t, NoLimits(), true)
	s.pub("a", "b")
	s.consume("c1", 2, ConsumerOptions{})
	s.dispatch()
	s.took()
	// Reject: the original stays (dying, not ackable) until the copy is
	// durable, and it needs reading (the core does not keep delivered
	// messages).
	s.c.discard(s.offs("a"), Rejected)
	r := s.c.ready()
	if len(r.dead) != 1 || r.dead[0].loaded || r.dead[0].d.Reason != Rejected {
		t.Fatalf("dead = %+v, want a, rejected, to be read", r.dead)
	}
	if n := s.c.ack(s.offs("a")); n != 0 {
		t.Fatal("a dying message was acked")
	}
	s.counts(0, 2)
	if s.acks.contains(0) {
		t.Fatal("settled before its copy was durable")
	}
	s.c.deadLettered([]int64{r.dead[0].off}, true, s.now)
	s.perform()
	s.counts(0, 1)
	if !s.acks.contains(0) {
		t.Fatal("not settled once its copy was durable")
	}
	// A copy that fails keeps the original, back at the head.
	s.dlxFail = true
	s.c.discard(s.offs("b"), Rejected)
	s.perform()
	s.counts(1, 0)
	s.dlxFail = false
	s.consume("c2", 1, ConsumerOptions{})
	s.dispatch()
	expect(t, "after a failed dead-letter", s.took(), "c2:b(r)")
}

func TestCoreDeadLetterReasons(t *testing.T) {
	cfg := NoLimits()
	cfg.DeliveryLimit = 1
	cfg.MaxLength = 2
	s := newSim(t, cfg, true)
	s.pub("a", "b", "c") // over the limit: a goes (maxlen)
	s.dispatch()
	expect(t, "drop-head", s.deadLetters(), "a/maxlen")
	s.consume("c1", 10, ConsumerOptions{})
	s.dispatch()
	expect(t, "delivered", s.took(), "c1:b c1:c")
	s.c.discard(s.offs("b"), Rejected)
	s.perform()
	expect(t, "reject", s.deadLetters(), "b/rejected")
	s.c.requeue(s.offs("c"))
	s.dispatch()
	expect(t, "redelivered", s.took(), "c1:c(r1)")
	s.c.requeue(s.offs("c"))
	s.dispatch()
	expect(t, "delivery limit", s.deadLetters(), "c/delivery_limit")
	s.counts(0, 0)
}

// TestCoreDeadLetterCycle follows one message around a dead-letter cycle
// of two queues (a's dead-letter exchange routes to b, b's to a), each
// with a TTL: the core of each queue dead-letters it on expiry, every
// time, and the reasons and queues are what x-death counts (the broker
// writes x-death and stops automatic cycles, router_publish.go).
func TestCoreDeadLetterCycle(t *testing.T) {
	cfg := NoLimits()
	cfg.MessageTTL = 10 * time.Millisecond
	qa, qb := newSim(t, cfg, true), newSim(t, cfg, true)
	qa.pub("m")
	var trail []string
	for i := 0; i < 3; i++ {
		for _, step := range []struct {
			name     string
			from, to *sim
		}{{"a", qa, qb}, {"b", qb, qa}} {
			step.from.advance(10 * time.Millisecond)
			step.from.dispatch()
			if len(step.from.dead) != 1 {
				t.Fatalf("round %d, queue %s: %d dead, want 1", i, step.name, len(step.from.dead))
			}
			d := step.from.dead[0]
			step.from.dead = nil
			trail = append(trail, step.name+":"+string(d.Reason))
			step.from.counts(0, 0)
			step.to.now = step.from.now
			step.to.pub(string(d.Message.Body))
		}
	}
	expect(t, "cycle", strings.Join(trail, " "), "a:expired b:expired a:expired b:expired a:expired b:expired")
}

func TestCoreLengthLimits(t *testing.T) {
	t.Run("drop-head counts ready, not unacked", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLength = 2
		s := newSim(t, cfg, false)
		s.pub("a", "b")
		s.consume("c1", 1, ConsumerOptions{})
		s.dispatch()
		expect(t, "delivered", s.took(), "c1:a")
		s.pub("c", "d") // ready b c d: b dropped
		s.dispatch()
		s.counts(2, 1)
		s.c.ack(s.offs("a"))
		s.c.ready()
		s.consume("c2", 5, ConsumerOptions{})
		s.dispatch()
		expect(t, "left", s.took(), "c2:c c2:d")
	})
	t.Run("bytes", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLengthBytes = 5
		s := newSim(t, cfg, true)
		s.pub("aa", "bb", "cc")
		s.dispatch()
		expect(t, "dropped", s.deadLetters(), "aa/maxlen")
		s.counts(2, 0)
	})
	t.Run("reject-publish", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLength = 1
		cfg.Overflow = RejectPublish
		s := newSim(t, cfg, true)
		s.pub("a")
		if a := s.publish("b", ""); a != reject {
			t.Fatalf("admission %d, want reject", a)
		}
		expect(t, "no dead letter", s.deadLetters(), "")
		s.consume("c1", 1, ConsumerOptions{})
		s.dispatch()
		s.pub("c") // a is unacked, not ready: room again
		s.counts(1, 1)
	})
	t.Run("reject-publish-dlx", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLength = 1
		cfg.Overflow = RejectPublishDLX
		s := newSim(t, cfg, true)
		s.pub("a")
		if a := s.publish("b", ""); a != rejectDLX {
			t.Fatalf("admission %d, want rejectDLX", a)
		}
		// Without a dead-letter exchange, only the refusal.
		s2 := newSim(t, cfg, false)
		s2.pub("a")
		if a := s2.publish("b", ""); a != reject {
			t.Fatalf("admission %d without a DLX, want reject", a)
		}
	})
}

func TestCoreDeliveryLimit(t *testing.T) {
	cfg := NoLimits()
	cfg.DeliveryLimit = 2
	s := newSim(t, cfg, false)
	s.pub("a")
	s.consume("c1", 10, ConsumerOptions{})
	var trail []string
	for i := 0; i < 4; i++ {
		s.dispatch()
		trail = append(trail, s.took())
		s.c.requeue(s.offs("a"))
		s.perform()
	}
	expect(t, "deliveries", strings.Join(trail, " "), "c1:a c1:a(r1) c1:a(r2) ")
	if s.dropped != 1 {
		t.Fatalf("%d dropped, want 1 (past the delivery limit, no dead-letter exchange)", s.dropped)
	}
	s.counts(0, 0)
	if !s.acks.contains(0) {
		t.Fatal("a message past its delivery limit was not settled")
	}
}

func TestCoreSingleActiveConsumer(t *testing.T) {
	cfg := NoLimits()
	cfg.SingleActiveConsumer = true
	s := newSim(t, cfg, false)
	s.pub("a", "b", "c", "d")
	_, id1 := s.consume("c1", 2, ConsumerOptions{})
	_, id2 := s.consume("c2", 10, ConsumerOptions{Priority: 5}) // priority does not make it active
	if !s.c.activeConsumer(id1) || s.c.activeConsumer(id2) {
		t.Fatal("the first registered consumer should be the active one")
	}
	s.dispatch()
	expect(t, "active only", s.took(), "c1:a c1:b")
	// c1 goes (its channel closes): c2 takes over, and what c1 had
	// unacked comes back first.
	s.c.removeConsumer(id1, s.now)
	s.c.requeue(s.offs("a", "b"))
	if !s.c.activeConsumer(id2) {
		t.Fatal("c2 should be active once c1 is gone")
	}
	s.dispatch()
	expect(t, "after failover", s.took(), "c2:a(r1) c2:b(r1) c2:c c2:d")
}

func TestCoreConsumerChoice(t *testing.T) {
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b", "c", "d", "e", "f", "g")
	c1, _ := s.consume("c1", 2, ConsumerOptions{})
	s.consume("c2", 2, ConsumerOptions{})
	s.dispatch()
	// Round robin among equals, up to each one's prefetch.
	expect(t, "round robin", s.took(), "c1:a c2:b c1:c c2:d")
	// A higher-priority consumer is served first while it has credit.
	s.consume("hi", 2, ConsumerOptions{Priority: 1})
	c1.credit = 5
	s.dispatch()
	expect(t, "priority", s.took(), "hi:e hi:f c1:g")
	// No-ack deliveries are settled as they go out.
	s.pub("h")
	s.consume("auto", 1, ConsumerOptions{Priority: 2, NoAck: true})
	s.dispatch()
	expect(t, "no-ack", s.took(), "auto:h")
	if !s.acks.contains(s.offsetOf("h")) {
		t.Fatal("a no-ack delivery was not settled")
	}
	if _, err := s.c.addConsumer(&fakeConsumer{}, ConsumerOptions{Exclusive: true}, s.now); err != ErrExclusiveConsumer {
		t.Fatalf("exclusive consumer on a queue with consumers: %v", err)
	}
}

func TestCoreGetAndPurge(t *testing.T) {
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b", "c")
	s.advance(time.Minute)
	d, ok := s.get(false)
	if !ok || string(d.Message.Body) != "a" {
		t.Fatalf("get = %q %v, want a", d.Message.Body, ok)
	}
	if !s.c.lastUsed.Equal(s.now) {
		t.Fatal("basic.get should mark the queue used")
	}
	if d, ok = s.get(true); !ok || string(d.Message.Body) != "b" || !s.acks.contains(1) {
		t.Fatal("no-ack get of b should settle it")
	}
	s.c.requeue(s.offs("a"))
	s.perform()
	if n := s.c.purge(); n != 2 {
		t.Fatalf("purged %d, want 2 (a requeued, c)", n)
	}
	s.perform()
	s.counts(0, 0)
	if _, ok := s.get(false); ok {
		t.Fatal("get after purge")
	}
	if s.acks.count(0, 3) != 3 {
		t.Fatalf("ack record %v after purge, want [0,3)", s.acks.r)
	}
}

func TestCoreRestore(t *testing.T) {
	// A queue reopened with [0,2) settled, a delivered mark of 4 and
	// messages up to 6: 2 and 3 may have been delivered before.
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b", "c", "d", "e", "f")
	s.c = newCore(NoLimits(), false, t0)
	s.c.settled.add(0, 2)
	s.c.restore(0, 6, 4)
	s.c.liveBytes = 4
	s.counts(4, 0)
	s.consume("c1", 10, ConsumerOptions{})
	s.dispatch()
	expect(t, "after restore", s.took(), "c1:c(r) c1:d(r) c1:e c1:f")
}

// TestCoreMarkBeforeDelivery: every delivery from the cursor comes with a
// delivered mark past it, for the runtime to write before the delivery
// goes out, so that a crash at any moment after a delivery brings the
// message back flagged redelivered; one mark per step, not per message.
// (sim.perform checks every delivery against the mark.)
func TestCoreMarkBeforeDelivery(t *testing.T) {
	s := newSim(t, NoLimits(), false)
	s.pub("a", "b", "c", "d", "e")
	s.consume("c1", 2, ConsumerOptions{})
	s.dispatch()
	expect(t, "first round", s.took(), "c1:a c1:b")
	if s.mark != 2 {
		t.Fatalf("mark %d after delivering offsets 0 and 1, want 2", s.mark)
	}
	if d, ok := s.get(false); !ok || d.Offset != 2 || s.mark != 3 {
		t.Fatalf("basic.get: %v offset %d, mark %d; want offset 2, mark 3", ok, d.Offset, s.mark)
	}
	// A requeued message is below the mark already: no new mark.
	s.c.requeue([]int64{0})
	r := s.c.ready()
	if r.mark != 0 {
		t.Fatalf("requeue asked for mark %d", r.mark)
	}
	if d, ok := s.get(false); !ok || d.Offset != 0 || !d.Redelivered {
		t.Fatalf("requeued get: %v %+v", ok, d)
	}
	if r := s.c.ready(); r.mark != 0 {
		t.Fatalf("redelivery asked for mark %d", r.mark)
	}

	// Reopened with that mark, the delivered ones come back flagged and the
	// never delivered ones do not.
	s.c = newCore(NoLimits(), false, t0)
	s.c.restore(0, 5, s.mark)
	s.c.liveBytes = 5
	s.got = nil
	s.consume("c2", 10, ConsumerOptions{})
	s.dispatch()
	expect(t, "after a crash", s.took(), "c2:a(r) c2:b(r) c2:c(r) c2:d c2:e")
}

// TestCoreHasNoIO keeps the core free of the log and the clock: it may
// import neither storage nor anything that does I/O, and may not read the
// time itself.
func TestCoreHasNoIO(t *testing.T) {
	src, err := os.ReadFile("core.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "core.go", src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{`"slices"`: true, `"strconv"`: true, `"time"`: true,
		`"github.com/sluice-mq/sluice/internal/broker/message"`: true}
	for _, imp := range f.Imports {
		if !allowed[imp.Path.Value] {
			t.Errorf("core.go imports %s", imp.Path.Value)
		}
	}
	for _, banned := range []string{"time.Now", "time.Since", "time.Until", "time.AfterFunc", "time.NewTimer", "go func", "sync."} {
		if strings.Contains(string(src), banned) {
			t.Errorf("core.go uses %s", banned)
		}
	}
}

// prioSim is a priority queue as Priority builds it: one core per level
// (without length limits: laneConfig), a consumer per level that refuses
// while a higher level has messages ready (laneConsumer), limits counted
// over all levels (overLimits) and drop-head trimming the highest level
// first (Priority.trim).
type prioSim struct {
	t     *testing.T
	cfg   Config
	lanes []*sim
}

func newPrioSim(t *testing.T, cfg Config, max int) *prioSim {
	p := &prioSim{t: t, cfg: cfg}
	for range max + 1 {
		p.lanes = append(p.lanes, newSim(t, laneConfig(cfg), true))
	}
	return p
}

func (p *prioSim) loads() []levelLoad {
	out := make([]levelLoad, len(p.lanes))
	for i, l := range p.lanes {
		out[i].ready, _, _ = l.c.counts()
		out[i].bytes = l.c.readyBytes()
	}
	return out
}

// publish puts body at level; false if the queue refused it.
func (p *prioSim) publish(level int, body string) bool {
	if p.cfg.Overflow != DropHead && overLimits(&p.cfg, p.loads(), 1, int64(len(body))) {
		return false
	}
	p.lanes[level].pub(body)
	for overLimits(&p.cfg, p.loads(), 0, 0) {
		dropped := false
		for i := len(p.lanes) - 1; i >= 0 && !dropped; i-- {
			l := p.lanes[i]
			for {
				st := l.c.trimHead(l.now, l.readableEnd())
				l.perform()
				if st != needRead {
					dropped = st == took
					break
				}
			}
		}
		if !dropped {
			break
		}
	}
	return true
}

type laneFake struct {
	*fakeConsumer
	p     *prioSim
	level int
}

func (lc *laneFake) Reserve() bool {
	for _, l := range lc.p.lanes[lc.level+1:] {
		if r, _, _ := l.c.counts(); r > 0 {
			return false
		}
	}
	return lc.fakeConsumer.Reserve()
}

// consume attaches one consumer with credit to every level and
// dispatches from the top level down, as lanes running dry wake the
// lanes below them.
func (p *prioSim) consume(credit int) string {
	f := &fakeConsumer{name: "c", credit: credit}
	var ids []uint64
	for i, l := range p.lanes {
		id, err := l.c.addConsumer(&laneFake{fakeConsumer: f, p: p, level: i}, ConsumerOptions{}, l.now)
		if err != nil {
			p.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var out []string
	for i := len(p.lanes) - 1; i >= 0; i-- {
		l := p.lanes[i]
		l.dispatch()
		for _, g := range l.got {
			out = append(out, fmt.Sprintf("p%d:%s", i, g.body))
		}
		l.got = nil
	}
	for i, l := range p.lanes {
		l.c.removeConsumer(ids[i], l.now)
	}
	return strings.Join(out, " ")
}

func (p *prioSim) deadLetters() string {
	var out []string
	for i, l := range p.lanes {
		for _, d := range l.dead {
			out = append(out, fmt.Sprintf("p%d:%s/%s", i, d.Message.Body, d.Reason))
		}
		l.dead = nil
	}
	return strings.Join(out, " ")
}

func TestCorePriorityLengthLimits(t *testing.T) {
	t.Run("drop-head drops the head: the oldest of the highest level", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLength = 3
		p := newPrioSim(t, cfg, 2)
		p.publish(0, "a")
		p.publish(0, "b")
		p.publish(2, "c")
		p.publish(1, "d") // four ready: c, the head, goes
		expect(t, "dropped", p.deadLetters(), "p2:c/maxlen")
		p.publish(2, "e") // d is now below e; e is the head and goes
		expect(t, "dropped", p.deadLetters(), "p2:e/maxlen")
		expect(t, "delivered", p.consume(10), "p1:d p0:a p0:b")
	})
	t.Run("bytes over all levels", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLengthBytes = 4
		p := newPrioSim(t, cfg, 1)
		p.publish(0, "aa")
		p.publish(1, "bb")
		p.publish(0, "cc") // 6 bytes: b (level 1) goes, then 4 fit
		expect(t, "dropped", p.deadLetters(), "p1:bb/maxlen")
		expect(t, "delivered", p.consume(10), "p0:aa p0:cc")
	})
	t.Run("reject-publish counts every level", func(t *testing.T) {
		cfg := NoLimits()
		cfg.MaxLength = 2
		cfg.Overflow = RejectPublish
		p := newPrioSim(t, cfg, 2)
		if !p.publish(0, "a") || !p.publish(2, "b") {
			t.Fatal("refused under the limit")
		}
		if p.publish(1, "c") {
			t.Fatal("a third message was taken")
		}
		expect(t, "delivered", p.consume(1), "p2:b")
		if !p.publish(1, "c") { // b is unacked, not ready
			t.Fatal("refused with room")
		}
		expect(t, "delivered", p.consume(10), "p1:c p0:a")
	})
}

// TestCoreDeadLetterRetry: while the dead-letter exchange fails, an
// expired head is tried once a second, not in a loop, and is never
// delivered.
func TestCoreDeadLetterRetry(t *testing.T) {
	cfg := NoLimits()
	cfg.MessageTTL = 0
	s := newSim(t, cfg, true)
	s.dlxFail = true
	s.consume("c1", 10, ConsumerOptions{})
	s.pub("a")
	for range 3 {
		s.dispatch()
		s.advance(100 * time.Millisecond)
	}
	expect(t, "delivered", s.took(), "")
	if s.dlxTries != 1 {
		t.Fatalf("%d dead-letter attempts within the retry interval, want 1", s.dlxTries)
	}
	if want := t0.Add(deadLetterRetry); !s.wake.Equal(want) {
		t.Fatalf("wake %v, want %v", s.wake, want)
	}
	s.counts(1, 0)
	s.dlxFail = false
	s.advance(deadLetterRetry - 300*time.Millisecond)
	s.dispatch()
	expect(t, "after the retry", s.deadLetters(), "a/expired")
	s.counts(0, 0)
}
