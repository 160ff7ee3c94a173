package test

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAMQPCrashConfirmedMessagesSurvive is the AMQP side of the data-safety
// promise (see internal/broker/queue/doc.go): a publisher confirm (basic.ack)
// is sent only once the message is durable, so a confirmed persistent message
// on a durable queue is never lost, whatever happens to the server. Consumer
// acks are written without fsync, so a crash may forget one: that is a
// redelivery, which AMQP allows, and the test counts it instead of failing.
//
// Each iteration runs several confirm-mode publishers (persistent messages,
// up to 64 unconfirmed each) and one manual-ack consumer (prefetch 32, acking
// after recording) against one durable queue, kills the server with SIGKILL
// 50-500ms in, restarts it and drains the queue until it is empty and quiet.
// Then:
//
//   - every message confirmed to its publisher (any basic.ack the client
//     read, even from the socket after the kill: the server sent it before
//     dying), and every message delivered before the kill that the consumer
//     had not acked, was either acked by the consumer before the kill or is
//     delivered after the restart: no loss;
//   - nothing is delivered that was never published (bodies are checked
//     byte for byte), and nothing is delivered twice within one life of the
//     server;
//   - a message acked before the kill may come back, counted as a duplicate,
//     only if its ack could have been lost: sent to this iteration's server
//     less than amqpCrashAckGrace before the kill. Acks from earlier
//     iterations (processed before the drain's connection closed, then at
//     least 50ms before the next kill) must hold: SIGKILL keeps the page
//     cache, so an ack the broker wrote survives; only its ~5ms write-behind
//     buffer and acks still on the wire can be lost;
//   - each publisher's messages are delivered in publish order, before the
//     kill and after the restart (redelivered ones may come first: they are
//     checked as their own increasing sequence).
//
// Across iterations the same queue and data directory are kept rather than
// reset: data accumulates over all the crashes (tens of MB with the padded
// bodies, so 64MiB queue segments roll and drained ones are deleted, moving
// the log start; the ack record grows past 1MiB and is compacted), recovery
// replays an ever longer history, and the stale-ack check spans lives of the
// server. Every iteration ends with the queue drained, so each iteration
// starts from an empty queue and its checks concern only its own messages
// (plus any older one that wrongly comes back).
//
// SLUICE_AMQP_CRASH_ITERATIONS (else SLUICE_CRASH_ITERATIONS) sets the
// number of iterations; -short runs 2.
func TestAMQPCrashConfirmedMessagesSurvive(t *testing.T) {
	iterations := iterationsKnob(t, 20, "SLUICE_AMQP_CRASH_ITERATIONS", "SLUICE_CRASH_ITERATIONS")
	if testing.Short() {
		iterations = 2
	}
	start := time.Now()
	b := startBroker(t)
	{
		ch := b.channel(t)
		if _, err := ch.QueueDeclare(amqpCrashQueue, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	tr := &amqpCrashTracker{t: t, msgs: make([][]*amqpCrashMsg, amqpCrashPublishers)}
	for it := range iterations {
		// The server drained in iteration it-1 (or just started) runs on
		// into iteration it: no clean stop between a drain and the next
		// kill, so the drain's acks face that kill too.
		before := tr.stats
		itStart := time.Now()
		tr.runUntilKill(b, it)
		killedAfter := tr.killAt.Sub(itStart)
		b.Restart()
		tr.drain(b, it)
		s := &tr.stats
		t.Logf("iteration %d: killed after %v; %d published, %d confirmed, %d acked before the kill, %d duplicates, "+
			"%d delivered after the restart (%d unconfirmed), %d unconfirmed lost; oldest lost ack %v; %v",
			it, killedAfter.Round(time.Millisecond), s.published-before.published, s.confirmed-before.confirmed,
			s.ackedBeforeKill-before.ackedBeforeKill, s.duplicates-before.duplicates, s.deliveredAfter-before.deliveredAfter,
			s.unconfirmedSurvived-before.unconfirmedSurvived, s.unconfirmedLost-before.unconfirmedLost,
			tr.oldestLostAck.Round(100*time.Microsecond),
			time.Since(itStart).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("server log since the restart:\n%s", b.Logs())
			t.FailNow()
		}
	}
	// A clean stop fsyncs the ack record: after one more restart nothing
	// is left.
	b.Stop()
	b.Restart()
	ch := b.channel(t)
	q, err := ch.QueueDeclarePassive(amqpCrashQueue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("after a clean restart %d messages ready in a drained queue", q.Messages)
	}
	s := &tr.stats
	if s.confirmed < iterations*100 {
		t.Fatalf("only %d messages confirmed over %d iterations: the test did not exercise much", s.confirmed, iterations)
	}
	t.Logf("%d iterations in %v: %d published, %d confirmed (%d of them still queued at a kill), %d acked before a kill, "+
		"%d delivered but unacked at a kill, %d delivered after restarts, %d redelivered duplicates (acks lost in the crash), "+
		"%d unconfirmed survived, %d unconfirmed lost",
		iterations, time.Since(start).Round(time.Millisecond), s.published, s.confirmed, s.confirmedQueued, s.ackedBeforeKill,
		s.unackedAtKill, s.deliveredAfter, s.duplicates, s.unconfirmedSurvived, s.unconfirmedLost)
	t.Logf("queue storage at the end: %s", amqpCrashStorage(b.DataDir))
}

// amqpCrashStorage describes the queue's files: its log segments (named by
// base offset: a first one above 0 means the start moved) and the size of
// its ack record.
func amqpCrashStorage(dataDir string) string {
	var out []string
	filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "acks" {
			return nil
		}
		segs, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "log", "*.log"))
		for i, seg := range segs {
			base := strings.TrimLeft(strings.TrimSuffix(filepath.Base(seg), ".log"), "0")
			segs[i] = cmp.Or(base, "0")
		}
		var size int64
		if fi, err := d.Info(); err == nil {
			size = fi.Size()
		}
		out = append(out, fmt.Sprintf("%d segments based at %v, ack record %d bytes", len(segs), segs, size))
		return nil
	})
	return strings.Join(out, "; ")
}

const (
	amqpCrashQueue      = "crash"
	amqpCrashPublishers = 4
	amqpCrashWindow     = 64 // unconfirmed publishes in flight per publisher
	amqpCrashPrefetch   = 32
	// amqpCrashAckGrace bounds how long before a kill an ack can have been
	// sent and still be forgotten. The broker writes acks within ~5ms,
	// unsynced, and SIGKILL keeps the page cache; lost acks are normally a
	// few ms old. The bound is generous for the race detector and loaded
	// machines: an older lost ack means acks are not written as promised.
	amqpCrashAckGrace = 2 * time.Second
)

// amqpCrashMsg is what the test knows about one published message. The body
// (and message-id) is "p<publisher>-<seq>", seq counting on across
// iterations, so a message's position in msgs is its id.
type amqpCrashMsg struct {
	it        int  // iteration it was published in
	confirmed bool // the publisher got basic.ack for it
	// pending: delivered in the current life and not acked (yet).
	pending bool
	// acked: the consumer recorded it and sent (or tried to send) an ack,
	// in iteration ackIt, before that iteration's kill or in its drain.
	acked    bool
	ackIt    int
	ackDrain bool
	ackAt    time.Time
	// drainIt: the iteration whose drain (after the restart) delivered it.
	drainIt int
}

type amqpCrashTracker struct {
	t      *testing.T
	killed atomic.Bool // the current life's kill signal has been sent
	killAt time.Time   // when it was
	// oldestLostAck: the longest an ack was sent before the kill of the
	// current iteration and yet forgotten.
	oldestLostAck time.Duration
	mu            sync.Mutex
	msgs          [][]*amqpCrashMsg // publisher -> seq
	// last seq delivered per publisher in the current phase, by
	// redelivered flag: the FIFO check.
	last  [amqpCrashPublishers][2]int
	stats struct {
		published, confirmed, confirmedQueued, ackedBeforeKill, unackedAtKill int
		deliveredAfter, duplicates, unconfirmedSurvived, unconfirmedLost      int
	}
}

func (tr *amqpCrashTracker) resetOrder() {
	for p := range tr.last {
		tr.last[p] = [2]int{-1, -1}
	}
}

// amqpCrashBody is the body of publisher p's message seq: its id, a space
// and up to 1.5kB of padding whose length and letter follow from the id, so
// that the body can be checked whole and the queue's log is big enough to
// roll segments (64MiB) and move its start over a run.
func amqpCrashBody(p, seq int) string {
	id := fmt.Sprintf("p%d-%d", p, seq)
	return id + " " + strings.Repeat(string(rune('a'+seq%26)), (seq*7919+p*131)%1500)
}

// lookup finds the message a delivery's body names; callers hold mu.
func (tr *amqpCrashTracker) lookup(body string) (m *amqpCrashMsg, p, seq int, ok bool) {
	id, _, _ := strings.Cut(body, " ")
	var rest string
	if _, err := fmt.Sscanf(id, "p%d-%s", &p, &rest); err != nil || p < 0 || p >= len(tr.msgs) {
		return nil, 0, 0, false
	}
	seq, err := strconv.Atoi(rest)
	if err != nil || seq < 0 || seq >= len(tr.msgs[p]) || amqpCrashBody(p, seq) != body {
		return nil, 0, 0, false
	}
	return tr.msgs[p][seq], p, seq, true
}

// checkOrder: per publisher and redelivered flag, seqs increase.
func (tr *amqpCrashTracker) checkOrder(phase string, it, p, seq int, redelivered bool) {
	r := 0
	if redelivered {
		r = 1
	}
	if seq <= tr.last[p][r] {
		tr.t.Errorf("iteration %d %s: publisher %d message %d delivered after %d (redelivered=%v): not in publish order",
			it, phase, p, seq, tr.last[p][r], redelivered)
	}
	tr.last[p][r] = seq
}

// runUntilKill runs publishers and a consumer against a running server and
// kills it at a random moment; it returns once every client has seen the
// connection die and its confirms and deliveries are recorded.
func (tr *amqpCrashTracker) runUntilKill(b *broker, it int) {
	t := tr.t
	tr.killed.Store(false)
	tr.oldestLostAck = 0
	tr.mu.Lock()
	tr.resetOrder()
	tr.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for p := range amqpCrashPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.publish(ctx, b, it, p)
		}()
	}
	// The consumer sometimes starts late and sometimes acks in batches
	// (multiple=true), so that some kills find confirmed messages never
	// delivered and some find delivered ones not yet acked.
	consumerDelay := time.Duration(0)
	if rand.IntN(3) > 0 {
		consumerDelay = time.Duration(rand.IntN(300)) * time.Millisecond
	}
	ackEvery := []int{1, 1, 8}[rand.IntN(3)]
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-time.After(consumerDelay):
		case <-ctx.Done():
			return
		}
		tr.consume(b, it, ackEvery)
	}()
	time.Sleep(time.Duration(50+rand.IntN(451)) * time.Millisecond)
	tr.killed.Store(true)
	tr.killAt = time.Now()
	b.Kill()
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("iteration %d: clients did not notice the kill within 30s", it)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for p := range tr.msgs {
		for _, m := range tr.msgs[p] {
			if m.it == it && m.confirmed && !m.acked && !m.pending {
				tr.stats.confirmedQueued++
			}
			if m.pending {
				tr.stats.unackedAtKill++
			}
		}
	}
}

// publish runs one confirm-mode publisher until the kill, with up to
// amqpCrashWindow publishes awaiting their confirm.
func (tr *amqpCrashTracker) publish(ctx context.Context, b *broker, it, p int) {
	t := tr.t
	fail := func(format string, args ...any) {
		if !tr.killed.Load() {
			t.Errorf("iteration %d publisher %d: "+format, append([]any{it, p}, args...)...)
		}
	}
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		fail("dial: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		fail("channel: %v", err)
		return
	}
	if err := ch.Confirm(false); err != nil {
		fail("confirm.select: %v", err)
		return
	}
	type inFlight struct {
		dc  *amqp.DeferredConfirmation
		m   *amqpCrashMsg
		seq int
	}
	var pending []inFlight
	settle := func(f inFlight) {
		<-f.dc.Done()
		if !f.dc.Acked() {
			// A nack, or the connection died: the library nacks
			// what is outstanding when the channel closes.
			fail("publish of p%d-%d nacked before the kill", p, f.seq)
			return
		}
		tr.mu.Lock()
		f.m.confirmed = true
		tr.stats.confirmed++
		tr.mu.Unlock()
	}
	for ctx.Err() == nil && !conn.IsClosed() {
		if len(pending) >= amqpCrashWindow {
			select {
			case <-pending[0].dc.Done():
			case <-ctx.Done():
				continue
			}
			settle(pending[0])
			pending = pending[1:]
		}
		tr.mu.Lock()
		seq := len(tr.msgs[p])
		m := &amqpCrashMsg{it: it, ackIt: -1, drainIt: -1}
		tr.msgs[p] = append(tr.msgs[p], m) // recorded as sent before it is
		tr.stats.published++
		tr.mu.Unlock()
		body := amqpCrashBody(p, seq)
		id, _, _ := strings.Cut(body, " ")
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", amqpCrashQueue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, MessageId: id, Body: []byte(body),
		})
		if err != nil {
			if ctx.Err() == nil {
				fail("publish: %v", err)
			}
			break
		}
		pending = append(pending, inFlight{dc, m, seq})
	}
	// Confirms the server sent before it died may still be in the socket:
	// they count. The rest are nacked by the library once it sees the
	// connection close.
	timeout := time.After(20 * time.Second)
	for _, f := range pending {
		select {
		case <-f.dc.Done():
		case <-timeout:
			t.Errorf("iteration %d publisher %d: outstanding confirms not settled 20s after the kill", it, p)
			return
		}
		if f.dc.Acked() {
			tr.mu.Lock()
			f.m.confirmed = true
			tr.stats.confirmed++
			tr.mu.Unlock()
		}
	}
}

// consume runs the manual-ack consumer until the connection dies: each
// delivery is recorded, then acked (every ackEvery deliveries, with
// multiple=true). After the kill signal nothing more is acked, so what
// arrives late must come back after the restart.
func (tr *amqpCrashTracker) consume(b *broker, it, ackEvery int) {
	t := tr.t
	fail := func(format string, args ...any) {
		if !tr.killed.Load() {
			t.Errorf("iteration %d consumer: "+format, append([]any{it}, args...)...)
		}
	}
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		fail("dial: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		fail("channel: %v", err)
		return
	}
	if err := ch.Qos(amqpCrashPrefetch, 0, false); err != nil {
		fail("qos: %v", err)
		return
	}
	deliveries, err := ch.Consume(amqpCrashQueue, "", false, false, false, false, nil)
	if err != nil {
		fail("consume: %v", err)
		return
	}
	var batch []*amqpCrashMsg
	for d := range deliveries {
		body := string(d.Body)
		id, _, _ := strings.Cut(body, " ")
		tr.mu.Lock()
		m, p, seq, ok := tr.lookup(body)
		switch {
		case !ok:
			t.Errorf("iteration %d before the kill: delivered %.60q: never published, or corrupt", it, body)
		case m.acked && (m.ackIt < it || m.ackDrain):
			t.Errorf("iteration %d before the kill: %s delivered again, acked in iteration %d %s",
				it, id, m.ackIt, map[bool]string{true: "drain", false: "before its kill"}[m.ackDrain])
		case m.acked || m.pending:
			t.Errorf("iteration %d before the kill: %s delivered twice (acked=%v)", it, id, m.acked)
		default:
			tr.checkOrder("before the kill", it, p, seq, d.Redelivered)
			m.pending = true
			batch = append(batch, m)
		}
		if tr.killed.Load() || len(batch) < ackEvery {
			tr.mu.Unlock()
			continue
		}
		now := time.Now()
		for _, m := range batch {
			m.pending, m.acked, m.ackIt, m.ackDrain, m.ackAt = false, true, it, false, now
			tr.stats.ackedBeforeKill++
		}
		batch = batch[:0]
		tr.mu.Unlock()
		if err := d.Ack(true); err != nil {
			fail("ack: %v", err)
		}
	}
}

// drain consumes everything after the restart, until the queue is empty and
// nothing arrived for a quiet period, and checks it against what happened
// before the kill.
func (tr *amqpCrashTracker) drain(b *broker, it int) {
	t := tr.t
	t.Helper()
	tr.mu.Lock()
	tr.resetOrder()
	tr.mu.Unlock()
	drainAfterRestart(t, b, it, amqpCrashQueue, 256, func(d amqp.Delivery) {
		body := string(d.Body)
		id, _, _ := strings.Cut(body, " ")
		tr.mu.Lock()
		m, p, seq, known := tr.lookup(body)
		switch {
		case !known:
			t.Errorf("iteration %d after the restart: delivered %.60q: never published, or corrupt", it, body)
		case d.MessageId != id:
			t.Errorf("iteration %d after the restart: %s has message-id %q", it, id, d.MessageId)
		case m.drainIt == it:
			t.Errorf("iteration %d after the restart: %s delivered twice", it, id)
		case m.acked && m.ackIt == it && !m.ackDrain:
			// Acked before this kill: the ack was lost.
			tr.stats.duplicates++
			age := tr.killAt.Sub(m.ackAt)
			tr.oldestLostAck = max(tr.oldestLostAck, age)
			if age > amqpCrashAckGrace {
				t.Errorf("iteration %d after the restart: %s redelivered, its ack was sent %v before the kill",
					it, id, age.Round(time.Millisecond))
			}
		case m.acked:
			t.Errorf("iteration %d after the restart: %s redelivered, acked in iteration %d (%v before this kill)",
				it, id, m.ackIt, tr.killAt.Sub(m.ackAt).Round(time.Millisecond))
		case m.it < it:
			t.Errorf("iteration %d after the restart: %s from iteration %d was not in that iteration's drain but is back now",
				it, id, m.it)
		}
		if known {
			tr.checkOrder("after the restart", it, p, seq, d.Redelivered)
			if !m.confirmed && m.it == it && !m.acked {
				tr.stats.unconfirmedSurvived++
			}
			m.drainIt, m.pending = it, false
			m.acked, m.ackIt, m.ackDrain, m.ackAt = true, it, true, time.Now()
			tr.stats.deliveredAfter++
		}
		tr.mu.Unlock()
	})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var lost []string
	for p := range tr.msgs {
		for seq, m := range tr.msgs[p] {
			switch {
			case m.pending:
				lost = append(lost, fmt.Sprintf("p%d-%d (delivered before the kill, not acked)", p, seq))
			case m.it != it:
			case m.confirmed && !m.acked:
				lost = append(lost, fmt.Sprintf("p%d-%d (confirmed)", p, seq))
			case !m.confirmed && !m.acked:
				tr.stats.unconfirmedLost++
			}
		}
	}
	if len(lost) > 0 {
		more := ""
		if len(lost) > 20 {
			more, lost = fmt.Sprintf(" (and %d more)", len(lost)-20), lost[:20]
		}
		t.Errorf("iteration %d: %d messages lost in the crash: %s%s", it, len(lost), strings.Join(lost, ", "), more)
	}
}
