package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPowerLossKeepsAcknowledgedData is the data-safety promise under power
// loss, for both protocols at once. kill -9 on the real file system keeps
// the page cache, so it cannot show that an fsync was skipped; here the
// server is a faultinject build with SLUICE_FAULT_VOLATILE=1, whose storage
// logs run on storage.NewVolatileFS: every write not yet fsynced lives in
// the process's memory and dies with it. (The metadata log and queues' ack
// records do not go through storage: they keep kill -9 semantics.)
//
// Each iteration runs, against one server life:
//
//   - two franz-go producers with acks=all (one idempotent, one not) on a
//     topic with 2 partitions, recording every acknowledged record at its
//     offset;
//   - two amqp091-go publishers in confirm mode (persistent messages on a
//     durable queue), recording every confirmed message;
//   - one manual-ack consumer, starting a little late, acking nineteen
//     deliveries in twenty and leaving the twentieth unacked;
//
// then kills the server with SIGKILL, once both protocols have had
// something acknowledged, at a random moment 300-800ms in, restarts it
// and checks:
//
//   - Kafka: every record acknowledged in this iteration (and, again, in
//     the one before) is at its acknowledged offset with its value;
//     duplicates (a retry of the non-idempotent producer) are counted;
//   - AMQP: the queue is drained; every message confirmed and not acked by
//     the consumer comes back; an acked one may come back (at-least-once:
//     acks are recorded without fsync) and counts as a duplicate.
//
// Lost must be 0. SLUICE_POWERLOSS_ITERATIONS sets the number of
// iterations (default 3).
func TestPowerLossKeepsAcknowledgedData(t *testing.T) { runPowerLoss(t) }

// TestPowerLossUnderTinyFileHandleBudget is the same with a file handle
// budget of 16 descriptors: the logs' and ack records' files are closed
// and reopened all the time, across rolls, retention and kills.
func TestPowerLossUnderTinyFileHandleBudget(t *testing.T) {
	runPowerLoss(t, "--file-handles", "16")
}

func runPowerLoss(t *testing.T, extra ...string) {
	iterations := iterationsKnob(t, 3, "SLUICE_POWERLOSS_ITERATIONS")
	// The server process inherits the environment at each start.
	t.Setenv("SLUICE_FAULT_VOLATILE", "1")
	start := time.Now()
	// Small segments: kills also hit rolls. Retention runs often (a life
	// lasts about a second) and deletes segments under the kills too.
	b := startFaultBroker(t, append([]string{"--disk-free-limit", "0", "--segment-bytes", "262144", "--retention-check-interval", "250ms"}, extra...)...)
	if st := b.fault(t, "status", ""); !strings.Contains(st, `"volatile":true`) {
		t.Fatalf("the server does not run on the volatile file system: status %q", st)
	}
	// Bounded so that a long run does not fill the disk; far above what
	// two iterations write (a few MB), which is what each verification
	// reads.
	retention := strconv.Itoa(64 << 20)
	b.createTopic(t, plTopic, plPartitions, map[string]*string{"retention.bytes": &retention})
	{
		conn, err := amqp.Dial(b.amqpURL())
		if err != nil {
			t.Fatal(err)
		}
		ch, err := conn.Channel()
		if err == nil {
			_, err = ch.QueueDeclare(plQueue, true, false, false, false, nil)
		}
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	kt := &plKafka{t: t}
	at := &plAMQP{t: t, msgs: map[string]*plMsg{}}
	var total plStats
	for it := range iterations {
		itStart := time.Now()
		if err := kt.begin(b, it); err != nil {
			t.Fatalf("iteration %d: %v", it, err)
		}
		at.begin(it)
		killedAfter := plRunUntilKill(t, b, kt, at, it)
		b.Restart()
		var s plStats
		kt.verify(b, it, &s)
		at.drain(b, it, &s)
		total.add(s)
		t.Logf("iteration %d: killed after %v; kafka: %d acked, %d read back, %d lost, %d duplicated; "+
			"amqp: %d confirmed (%d acked by the consumer), %d to read back, %d read back, %d lost, %d duplicated; %v",
			it, killedAfter.Round(time.Millisecond), s.kAcked, s.kRead, s.kLost, s.kDup,
			s.aConfirmed, s.aAcked, s.aWanted, s.aRead, s.aLost, s.aDup, time.Since(itStart).Round(time.Millisecond))
		if t.Failed() {
			if prev := b.PrevLogs(); prev != "" {
				if len(prev) > 8000 {
					prev = "..." + prev[len(prev)-8000:]
				}
				t.Logf("server log before the kill:\n%s", prev)
			}
			logs := b.Logs()
			if len(logs) > 8000 {
				logs = "..." + logs[len(logs)-8000:]
			}
			t.Logf("server log:\n%s", logs)
			t.FailNow()
		}
	}
	t.Logf("%d power losses in %v: kafka: %d acked, %d read back, %d lost, %d duplicated; "+
		"amqp: %d confirmed (%d acked by the consumer), %d to read back, %d read back, %d lost, %d duplicated",
		iterations, time.Since(start).Round(time.Millisecond), total.kAcked, total.kRead, total.kLost, total.kDup,
		total.aConfirmed, total.aAcked, total.aWanted, total.aRead, total.aLost, total.aDup)
	if total.kAcked < iterations*10 || total.aConfirmed < iterations*10 {
		t.Fatalf("only %d records and %d messages acknowledged over %d iterations: the test did not exercise much",
			total.kAcked, total.aConfirmed, iterations)
	}
}

const (
	plTopic      = "powerloss"
	plPartitions = 2
	plQueue      = "powerloss"
	plWindow     = 64 // unconfirmed publishes in flight per AMQP publisher
)

// plStats are one iteration's counts (or the sum of all).
type plStats struct {
	kAcked, kRead, kLost, kDup                      int
	aConfirmed, aAcked, aWanted, aRead, aLost, aDup int
}

func (s *plStats) add(o plStats) {
	s.kAcked += o.kAcked
	s.kRead += o.kRead
	s.kLost += o.kLost
	s.kDup += o.kDup
	s.aConfirmed += o.aConfirmed
	s.aAcked += o.aAcked
	s.aWanted += o.aWanted
	s.aRead += o.aRead
	s.aLost += o.aLost
	s.aDup += o.aDup
}

// plRunUntilKill runs the producers, publishers and consumer of iteration
// it and kills the server once both protocols have acknowledged something,
// at a random moment 300-800ms after the start. It returns when every
// client has settled what it had in flight.
func plRunUntilKill(t *testing.T, b *broker, kt *plKafka, at *plAMQP, it int) time.Duration {
	t.Helper()
	start := time.Now()
	killAt := start.Add(time.Duration(300+rand.IntN(501)) * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	at.killed.Store(false)
	var wg sync.WaitGroup
	var producers []*kgo.Client
	for c := range 2 {
		opts := []kgo.Opt{
			kgo.SeedBrokers(b.Kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
			kgo.RecordRetries(3), kgo.RequestRetries(2), kgo.RetryTimeout(3 * time.Second),
		}
		if c == 1 {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		prod, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		producers = append(producers, prod)
		for p := range plPartitions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kt.produce(ctx, prod, it, c, p)
			}()
		}
	}
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at.publish(ctx, b, it, p)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-time.After(time.Duration(rand.IntN(200)) * time.Millisecond):
			at.consume(b, it)
		case <-ctx.Done():
		}
	}()
	waitFor(t, 20*time.Second, "acknowledged traffic of both protocols", func() bool {
		return kt.ackedNow() > 0 && at.confirmedNow() > 0
	})
	if d := time.Until(killAt); d > 0 {
		time.Sleep(d)
	} else {
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
	}
	at.killed.Store(true)
	killedAfter := time.Since(start)
	b.Kill()
	cancel()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		for _, prod := range producers {
			prod.Close() // fails whatever was still buffered
		}
		kt.settled.Wait() // every produce callback has run
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("iteration %d: clients did not settle within 30s of the kill", it)
	}
	return killedAfter
}

// plKafka tracks the Kafka side. Only the current and the previous
// iteration's acknowledgements are kept: each is verified after its own
// kill and again after the next one.
type plKafka struct {
	t       *testing.T
	mu      sync.Mutex
	iters   []*plKafkaIter
	settled sync.WaitGroup // produce calls whose callback has not run
}

type plKafkaIter struct {
	from  [plPartitions]int64            // end offsets when the iteration began
	acked [plPartitions]map[int64]string // offset -> value
	n     int
}

// plAdmin is a kadm client closed by the caller (the test makes one per
// iteration, so not left to t.Cleanup).
func plAdmin(b *broker) (*kadm.Client, func(), error) {
	c, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(c), c.Close, nil
}

func plEndOffsets(b *broker) ([plPartitions]int64, error) {
	var out [plPartitions]int64
	adm, closeAdm, err := plAdmin(b)
	if err != nil {
		return out, err
	}
	defer closeAdm()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, plTopic)
	if err != nil {
		return out, err
	}
	for p := range out {
		e, ok := ends.Lookup(plTopic, int32(p))
		if !ok || e.Err != nil {
			return out, fmt.Errorf("end offset of partition %d: %v", p, e.Err)
		}
		out[p] = e.Offset
	}
	return out, nil
}

func (kt *plKafka) begin(b *broker, it int) error {
	from, err := plEndOffsets(b)
	if err != nil {
		return err
	}
	ki := &plKafkaIter{from: from}
	for p := range ki.acked {
		ki.acked[p] = map[int64]string{}
	}
	kt.mu.Lock()
	kt.iters = append(kt.iters, ki)
	if it >= 2 {
		kt.iters[it-2] = nil // verified twice
	}
	kt.mu.Unlock()
	return nil
}

func (kt *plKafka) ackedNow() int {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	return kt.iters[len(kt.iters)-1].n
}

// produce sends records to partition p until ctx ends, recording those
// acknowledged.
func (kt *plKafka) produce(ctx context.Context, prod *kgo.Client, it, c, p int) {
	ki := kt.iters[it]
	for seq := 0; ctx.Err() == nil; seq++ {
		value := fmt.Sprintf("it%d-c%d-p%d-%d", it, c, p, seq)
		kt.settled.Add(1)
		prod.Produce(ctx, &kgo.Record{Topic: plTopic, Partition: int32(p), Value: []byte(value)}, func(r *kgo.Record, err error) {
			defer kt.settled.Done()
			if err != nil {
				return
			}
			kt.mu.Lock()
			defer kt.mu.Unlock()
			if prev, ok := ki.acked[p][r.Offset]; ok && prev != value {
				kt.t.Errorf("iteration %d: offset %d/%d acknowledged twice: %q then %q", it, p, r.Offset, prev, value)
			}
			ki.acked[p][r.Offset] = value
			ki.n++
		})
		if seq%64 == 63 {
			time.Sleep(time.Millisecond) // let batches form
		}
	}
}

// verify reads both partitions from the start of the previous iteration
// and checks every record acknowledged in it and in this one.
func (kt *plKafka) verify(b *broker, it int, s *plStats) {
	t := kt.t
	t.Helper()
	kt.mu.Lock()
	defer kt.mu.Unlock()
	check := []*plKafkaIter{kt.iters[it]}
	if it > 0 {
		check = append([]*plKafkaIter{kt.iters[it-1]}, check...)
	}
	from := check[0].from
	ends, err := plEndOffsets(b)
	if err != nil {
		t.Fatalf("iteration %d after the restart: %v", it, err)
	}
	got := make([]map[int64]string, plPartitions)
	offsets := map[int32]kgo.Offset{}
	want := 0
	for p := range plPartitions {
		got[p] = map[int64]string{}
		if ends[p] > from[p] {
			offsets[int32(p)] = kgo.NewOffset().At(from[p])
			want += int(ends[p] - from[p])
		}
	}
	if want > 0 {
		c, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{plTopic: offsets}),
			kgo.FetchMaxBytes(16<<20))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range consumeN(t, c, want, 60*time.Second) {
			got[r.Partition][r.Offset] = string(r.Value)
		}
		c.Close()
	}
	prefix := fmt.Sprintf("it%d-", it)
	seen := map[string]bool{}
	for p := range plPartitions {
		for _, v := range got[p] {
			if strings.HasPrefix(v, prefix) {
				if seen[v] {
					s.kDup++
				}
				seen[v] = true
			}
		}
	}
	var lost []string
	for i, ki := range check {
		current := i == len(check)-1
		for p := range plPartitions {
			for off, v := range ki.acked[p] {
				ok := got[p][off] == v
				switch {
				case ok && current:
					s.kRead++
				case !ok:
					s.kLost++ // of this iteration, or of the one before, checked again
					lost = append(lost, fmt.Sprintf("%s at %d/%d (found %q, end %d)", v, p, off, got[p][off], ends[p]))
				}
			}
		}
		if current {
			s.kAcked += ki.n
		}
	}
	if n := len(lost); n > 0 {
		more := ""
		if n > 20 {
			more, lost = fmt.Sprintf(" (and %d more)", n-20), lost[:20]
		}
		t.Errorf("iteration %d: %d acknowledged Kafka records lost: %s%s", it, n, strings.Join(lost, ", "), more)
	}
}

// plMsg is what the test knows about one AMQP message of the current or
// the previous iteration.
type plMsg struct {
	it        int
	confirmed bool // the publisher got basic.ack
	delivered bool // delivered before the kill
	acked     bool // the consumer acked it (or tried to) before the kill
	back      bool // delivered by the drain after the restart
}

// plAMQP tracks the AMQP side.
type plAMQP struct {
	t         *testing.T
	killed    atomic.Bool
	mu        sync.Mutex
	msgs      map[string]*plMsg // id -> message, current and previous iteration
	confirmed int               // in the current iteration
}

// plBody is the body of publisher p's message seq in iteration it: its id,
// a space and padding that follows from the id, so a body is checked whole.
func plBody(it, p, seq int) string {
	id := fmt.Sprintf("it%d-q%d-%d", it, p, seq)
	return id + " " + strings.Repeat(string(rune('a'+seq%26)), (seq*7919+p*131)%700)
}

// plParse returns the id and iteration of a well-formed body.
func plParse(body string) (id string, it int, ok bool) {
	id, _, _ = strings.Cut(body, " ")
	var p, seq int
	if _, err := fmt.Sscanf(id, "it%d-q%d-%d", &it, &p, &seq); err != nil || plBody(it, p, seq) != body {
		return "", 0, false
	}
	return id, it, true
}

func (at *plAMQP) begin(it int) {
	at.mu.Lock()
	defer at.mu.Unlock()
	for id, m := range at.msgs {
		if m.it < it-1 {
			delete(at.msgs, id)
		}
	}
	at.confirmed = 0
}

func (at *plAMQP) confirmedNow() int {
	at.mu.Lock()
	defer at.mu.Unlock()
	return at.confirmed
}

// fail reports an error unless the kill explains it.
func (at *plAMQP) fail(format string, args ...any) {
	if !at.killed.Load() {
		at.t.Errorf(format, args...)
	}
}

// publish runs one confirm-mode publisher until ctx ends, with up to
// plWindow publishes awaiting their confirm. Confirms read after the kill
// count: the server sent them before it died.
func (at *plAMQP) publish(ctx context.Context, b *broker, it, p int) {
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		at.fail("iteration %d publisher %d: dial: %v", it, p, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		at.fail("iteration %d publisher %d: channel: %v", it, p, err)
		return
	}
	type inFlight struct {
		dc *amqp.DeferredConfirmation
		m  *plMsg
	}
	var pending []inFlight
	settle := func(f inFlight) {
		if f.dc.Acked() {
			at.mu.Lock()
			f.m.confirmed = true
			at.confirmed++
			at.mu.Unlock()
		}
	}
	for seq := 0; ctx.Err() == nil && !conn.IsClosed(); seq++ {
		if len(pending) >= plWindow {
			select {
			case <-pending[0].dc.Done():
			case <-ctx.Done():
				continue
			}
			settle(pending[0])
			pending = pending[1:]
		}
		body := plBody(it, p, seq)
		id, _, _ := strings.Cut(body, " ")
		m := &plMsg{it: it}
		at.mu.Lock()
		at.msgs[id] = m // recorded before it is sent
		at.mu.Unlock()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", plQueue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, MessageId: id, Body: []byte(body),
		})
		if err != nil {
			if ctx.Err() == nil {
				at.fail("iteration %d publisher %d: publish: %v", it, p, err)
			}
			break
		}
		pending = append(pending, inFlight{dc, m})
	}
	timeout := time.After(20 * time.Second)
	for _, f := range pending {
		select {
		case <-f.dc.Done():
		case <-timeout:
			at.t.Errorf("iteration %d publisher %d: confirms not settled 20s after the kill", it, p)
			return
		}
		settle(f)
	}
}

// consume runs the manual-ack consumer until the connection dies: it acks
// nineteen deliveries in twenty, one by one, and leaves the twentieth
// unacked (with prefetch 500 it stalls after 10000); after the kill signal
// it acks nothing more.
func (at *plAMQP) consume(b *broker, it int) {
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		at.fail("iteration %d consumer: dial: %v", it, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Qos(500, 0, false)
	}
	if err != nil {
		at.fail("iteration %d consumer: channel: %v", it, err)
		return
	}
	deliveries, err := ch.Consume(plQueue, "", false, false, false, false, nil)
	if err != nil {
		at.fail("iteration %d consumer: consume: %v", it, err)
		return
	}
	n := 0
	for d := range deliveries {
		id, _, ok := plParse(string(d.Body))
		at.mu.Lock()
		m := at.msgs[id]
		switch {
		case !ok:
			at.t.Errorf("iteration %d before the kill: delivered %.60q: never published, or corrupt", it, d.Body)
		case m == nil || m.it != it:
			// A message of an earlier iteration whose drain ack was lost.
		case m.delivered:
			at.t.Errorf("iteration %d before the kill: %s delivered twice", it, id)
		default:
			m.delivered = true
		}
		n++
		ack := ok && n%20 != 0 && !at.killed.Load()
		if ack && m != nil && m.it == it {
			m.acked = true
		}
		at.mu.Unlock()
		if ack {
			if err := d.Ack(false); err != nil {
				at.fail("iteration %d consumer: ack: %v", it, err)
			}
		}
	}
}

// drain consumes everything after the restart, until the queue is empty
// and nothing arrived for a quiet period, acking all, and checks it
// against what happened before the kill.
func (at *plAMQP) drain(b *broker, it int, s *plStats) {
	t := at.t
	t.Helper()
	drainAfterRestart(t, b, it, plQueue, 1000, func(d amqp.Delivery) {
		id, mit, ok := plParse(string(d.Body))
		at.mu.Lock()
		m := at.msgs[id]
		switch {
		case !ok:
			t.Errorf("iteration %d after the restart: delivered %.60q: never published, or corrupt", it, d.Body)
		case d.MessageId != id:
			t.Errorf("iteration %d after the restart: %s has message-id %q", it, id, d.MessageId)
		case mit < it || m == nil:
			s.aDup++ // drained and acked after an earlier restart: that ack was lost
		case m.back:
			t.Errorf("iteration %d after the restart: %s delivered twice", it, id)
		default:
			m.back = true
			if m.acked {
				s.aDup++
			}
		}
		at.mu.Unlock()
	})
	at.mu.Lock()
	defer at.mu.Unlock()
	var lost []string
	for id, m := range at.msgs {
		if m.it != it {
			continue
		}
		if m.confirmed {
			s.aConfirmed++
		}
		if m.acked {
			s.aAcked++
		}
		if !m.confirmed || m.acked {
			continue
		}
		s.aWanted++
		if m.back {
			s.aRead++
			continue
		}
		s.aLost++
		lost = append(lost, fmt.Sprintf("%s (delivered before the kill: %v)", id, m.delivered))
	}
	if n := len(lost); n > 0 {
		more := ""
		if n > 20 {
			more, lost = fmt.Sprintf(" (and %d more)", n-20), lost[:20]
		}
		t.Errorf("iteration %d: %d confirmed AMQP messages lost: %s%s", it, n, strings.Join(lost, ", "), more)
	}
}
