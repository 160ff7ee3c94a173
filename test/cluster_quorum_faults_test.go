package test

// A fault-schedule test of quorum queues, the AMQP counterpart of
// TestClusterFaultSchedule: a quorum queue on a three-node cluster (the
// faultinject build, volatile storage: what is not fsynced dies with a
// killed process) under publish and consume load while randomFaults hits
// the nodes — kill -9 and restart, SIGSTOP / SIGCONT pauses, network
// partitions — then healed and drained, after which a checker looks for
// anomalies:
//
//   - lost: a message confirmed (basic.ack in confirm mode) never
//     delivered;
//   - phantom: a delivered body that no publisher ever published;
//   - reorder: one publisher's confirmed messages first delivered to a
//     consumer out of their publish order. Only a message's first
//     delivery (to any consumer) counts, and only one not flagged
//     redelivered: a message returned to the queue (its consumer's
//     connection died) goes back in front, as in RabbitMQ. Order is
//     checked per consumer: with two consumers the queue hands out one
//     sequence, but the times two clients receive their parts of it are
//     not ordered with each other.
//
// Duplicates are not anomalies: a publisher sends a message again when it
// is nacked, unconfirmed for 10 s or its connection dies, so a message may
// be stored twice, and an unacked delivery is delivered again. How many
// acked messages came again, and how long after each kill of the queue's
// leader the first message sent after it was confirmed, are reported.
//
// CI runs one trial of 12 s of faults; SLUICE_QUORUM_FAULT_SEED replays
// one trial's schedule of faults; SLUICE_CLUSTER_TRIALS (or
// SLUICE_QUORUM_FAULT_TRIALS, which wins) and SLUICE_CLUSTER_FAULT_SECONDS
// make longer campaigns.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestClusterQuorumFaultSchedule(t *testing.T) {
	trials := envInt(t, "SLUICE_CLUSTER_TRIALS", 1)
	if os.Getenv("SLUICE_QUORUM_FAULT_TRIALS") != "" {
		trials = envInt(t, "SLUICE_QUORUM_FAULT_TRIALS", 1)
	}
	seconds := envInt(t, "SLUICE_CLUSTER_FAULT_SECONDS", 12)
	bin := faultServerBin(t)
	t.Setenv("SLUICE_FAULT_VOLATILE", "1")
	total := 0
	for i := range trials {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		if v, err := strconv.ParseUint(os.Getenv("SLUICE_QUORUM_FAULT_SEED"), 10, 64); err == nil {
			seed = v // the same fault schedule again (the timing differs)
		}
		t.Run(fmt.Sprintf("trial-%d-seed-%d", i, seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed>>1))
			total += quorumFaultTrial(t, bin, rng, time.Duration(seconds)*time.Second)
		})
	}
	t.Logf("%d trials, %d anomalies", trials, total)
}

const (
	qfQueue          = "qfaults"
	qfPublishers     = 3
	qfConsumers      = 2
	qfPrefetch       = 20
	qfConfirmTimeout = 10 * time.Second
	qfDrain          = 90 * time.Second
)

// qfConfirm is a confirmed message: when the attempt that was confirmed
// was sent, when its basic.ack came, and through which node.
type qfConfirm struct {
	sent, at time.Time
	node     int
}

// qfDelivery is one delivery a consumer got.
type qfDelivery struct {
	body              string
	consumer, session int
	node              int
	redelivered       bool
	first             bool // no consumer had got the body before
	afterAck          bool // a consumer had acked the body before
	at                time.Time
}

// qfKill is a kill -9 of the node that led the queue, as the watcher saw
// it.
type qfKill struct {
	node int
	at   time.Time
}

// qfState is what the clients of one trial saw, shared under mu.
type qfState struct {
	nodes []*broker
	start time.Time

	mu         sync.Mutex
	published  map[string]int // body -> attempts
	confirmed  map[string]qfConfirm
	deliveries []qfDelivery
	delivered  map[string]int
	acked      map[string]bool
	nacks      int
	timeouts   int
	pubLosses  int // publisher connections lost or dropped
	subLosses  int // consumer sessions ended (connection, channel, cancel)
	cancels    int
	kills      []qfKill
	leaders    []string // the queue's leaders in the order seen
	events     []string // nodes killed, unresponsive, back, as the watcher saw them
	conns      map[*qfConn]bool
	closing    bool
}

// qfConn is a client connection and the socket under it, which the test
// closes itself to give up on a connection at once (amqp091's Close waits
// for the server's answer).
type qfConn struct {
	c    *amqp.Connection
	raw  net.Conn
	node int
}

// dial connects to node with bounded waits: 2 s to connect, 5 s for the
// handshake, then heartbeats every 2 s (a silent server is given up after
// 6 s).
func (s *qfState) dial(node int) (*qfConn, error) {
	var raw net.Conn
	cfg := amqp.Config{
		Heartbeat: 2 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, 2*time.Second)
			if err != nil {
				return nil, err
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			raw = c
			return c, nil
		},
	}
	c, err := amqp.DialConfig(s.nodes[node].amqpURL(), cfg)
	if err != nil {
		if raw != nil {
			raw.Close()
		}
		return nil, err
	}
	qc := &qfConn{c: c, raw: raw, node: node}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		raw.Close()
		return nil, fmt.Errorf("closing")
	}
	s.conns[qc] = true
	return qc, nil
}

// drop gives up on a connection.
func (s *qfState) drop(qc *qfConn) {
	qc.raw.Close()
	s.mu.Lock()
	delete(s.conns, qc)
	s.mu.Unlock()
}

// closeAll drops every connection, and any opened from now on.
func (s *qfState) closeAll() {
	s.mu.Lock()
	s.closing = true
	for qc := range s.conns {
		qc.raw.Close()
	}
	s.conns = map[*qfConn]bool{}
	s.mu.Unlock()
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// sleepOr sleeps d unless stop closes first; false if it did.
func sleepOr(stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

// publisher p publishes "p<p>-<seq>" in confirm mode, one at a time,
// through node p at first and, whenever its connection dies, through the
// next node. A message nacked, unconfirmed for qfConfirmTimeout or whose
// connection died is sent again (same seq). It ends at stop, once its
// message in flight has its outcome.
func (s *qfState) publisher(p int, stop <-chan struct{}) {
	node := p % len(s.nodes)
	var (
		qc     *qfConn
		ch     *amqp.Channel
		closes chan *amqp.Error
	)
	connect := func() bool {
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				node = (node + 1) % len(s.nodes)
				if !sleepOr(stop, 100*time.Millisecond) {
					return false
				}
			}
			if stopped(stop) {
				return false
			}
			c, err := s.dial(node)
			if err != nil {
				continue
			}
			// Opening the channel is bounded too.
			guard := time.AfterFunc(10*time.Second, func() { c.raw.Close() })
			closes = c.c.NotifyClose(make(chan *amqp.Error, 1))
			ch, err = c.c.Channel()
			if err == nil {
				err = ch.Confirm(false)
			}
			guard.Stop()
			if err != nil {
				s.drop(c)
				continue
			}
			qc = c
			return true
		}
	}
	lose := func() {
		s.drop(qc)
		qc = nil
		node = (node + 1) % len(s.nodes)
		s.mu.Lock()
		s.pubLosses++
		s.mu.Unlock()
	}
	for seq := 0; !stopped(stop); {
		if qc == nil && !connect() {
			return
		}
		body := fmt.Sprintf("p%d-%d", p, seq)
		s.mu.Lock()
		s.published[body]++
		s.mu.Unlock()
		sent := time.Now()
		c := qc
		timedOut := make(chan struct{})
		guard := time.AfterFunc(qfConfirmTimeout, func() { close(timedOut); c.raw.Close() })
		acked, gone := false, false
		dc, err := ch.PublishWithDeferredConfirm("", qfQueue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			gone = true
		} else {
			select {
			case <-dc.Done():
				acked = dc.Acked()
			case <-closes:
				gone = true
			case <-time.After(qfConfirmTimeout + 5*time.Second):
				gone = true
			}
			if gone { // an ack may have come just before the close
				select {
				case <-dc.Done():
					acked = dc.Acked()
				default:
				}
			}
		}
		guard.Stop()
		now := time.Now()
		switch {
		case acked:
			s.mu.Lock()
			if _, ok := s.confirmed[body]; !ok {
				s.confirmed[body] = qfConfirm{sent: sent, at: now, node: c.node}
			}
			s.mu.Unlock()
			seq++
		case stopped(timedOut):
			s.mu.Lock()
			s.timeouts++
			s.mu.Unlock()
			lose()
		case gone || c.c.IsClosed():
			lose()
		default: // nacked: no leader for a moment
			s.mu.Lock()
			s.nacks++
			s.mu.Unlock()
			sleepOr(stop, 50*time.Millisecond)
		}
	}
	if qc != nil {
		s.drop(qc)
	}
}

// consumer k consumes with manual acks through node first at first and,
// whenever its session ends (connection or channel closed, basic.cancel),
// through the next node that takes it; it acks and records every
// delivery, until stop.
func (s *qfState) consumer(k, first int, stop <-chan struct{}) {
	node := first
	for session := 0; !stopped(stop); session++ {
		if session > 0 {
			node = (node + 1) % len(s.nodes)
			if !sleepOr(stop, 100*time.Millisecond) {
				return
			}
		}
		qc, err := s.dial(node)
		if err != nil {
			continue
		}
		s.consumeSession(k, session, qc, stop)
		s.drop(qc)
		s.mu.Lock()
		s.subLosses++
		s.mu.Unlock()
	}
}

func (s *qfState) consumeSession(k, session int, qc *qfConn, stop <-chan struct{}) {
	guard := time.AfterFunc(10*time.Second, func() { qc.raw.Close() })
	ch, err := qc.c.Channel()
	if err != nil {
		guard.Stop()
		return
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels := ch.NotifyCancel(make(chan string, 1))
	if err := ch.Qos(qfPrefetch, 0, false); err != nil {
		guard.Stop()
		return
	}
	ds, err := ch.Consume(qfQueue, fmt.Sprintf("c%d-%d", k, session), false, false, false, false, nil)
	guard.Stop()
	if err != nil {
		return
	}
	for {
		select {
		case <-stop:
			return
		case <-closes:
			return
		case <-cancels:
			s.mu.Lock()
			s.cancels++
			s.mu.Unlock()
			return
		case d, ok := <-ds:
			if !ok {
				return
			}
			b := string(d.Body)
			s.mu.Lock()
			s.deliveries = append(s.deliveries, qfDelivery{
				body: b, consumer: k, session: session, node: qc.node,
				redelivered: d.Redelivered, first: s.delivered[b] == 0, afterAck: s.acked[b], at: time.Now(),
			})
			s.delivered[b]++
			s.mu.Unlock()
			if d.Ack(false) == nil {
				s.mu.Lock()
				s.acked[b] = true
				s.mu.Unlock()
			}
		}
	}
}

// watchLeader follows the queue's leader (/api/queues through any node
// that answers) and records each kill of it: its AMQP port refusing
// connections (a paused node's still accepts them, and does not answer
// /readyz). It also records when each node is seen killed, unresponsive
// or back (a partition is not visible from outside).
func (s *qfState) watchLeader(stop <-chan struct{}) {
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	leader := -1
	down := make([]bool, len(s.nodes))
	state := make([]string, len(s.nodes))
	for sleepOr(stop, 100*time.Millisecond) {
		for i, b := range s.nodes {
			c, err := net.DialTimeout("tcp", b.AMQP, 200*time.Millisecond)
			if c != nil {
				c.Close()
			}
			refused := err != nil && strings.Contains(err.Error(), "refused")
			if refused && !down[i] && i == leader {
				s.mu.Lock()
				s.kills = append(s.kills, qfKill{node: i, at: time.Now()})
				s.mu.Unlock()
			}
			down[i] = refused
			st := "up"
			if refused {
				st = "killed"
			} else if resp, err := hc.Get("http://" + b.HTTP + "/readyz"); err != nil {
				st = "unresponsive"
			} else {
				resp.Body.Close()
			}
			if st != state[i] && state[i] != "" {
				s.mu.Lock()
				s.events = append(s.events, fmt.Sprintf("node %d %s at +%.2fs", i+1, st, time.Since(s.start).Seconds()))
				s.mu.Unlock()
			}
			state[i] = st
		}
		for i, b := range s.nodes {
			if down[i] {
				continue
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+b.HTTP+"/api/queues/%2F/"+qfQueue, nil)
			req.SetBasicAuth("guest", "guest")
			resp, err := hc.Do(req)
			if err != nil {
				continue
			}
			var q struct {
				Leader string `json:"leader"`
			}
			err = json.NewDecoder(resp.Body).Decode(&q)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				continue
			}
			// "sluice-<id>@host"
			id, _, _ := strings.Cut(strings.TrimPrefix(q.Leader, "sluice-"), "@")
			n, err := strconv.Atoi(id)
			if err != nil || n < 1 || n > len(s.nodes) {
				continue
			}
			if n-1 != leader {
				leader = n - 1
				s.mu.Lock()
				s.leaders = append(s.leaders, fmt.Sprintf("node %d at +%.1fs", n, time.Since(s.start).Seconds()))
				s.mu.Unlock()
			}
			break
		}
	}
}

// quorumFaultTrial runs one trial and returns the anomalies it found
// (each also reported as a test error).
func quorumFaultTrial(t *testing.T, bin string, rng *rand.Rand, length time.Duration) int {
	nodes := startClusterOf(t, bin, 3, "--debug-pprof")
	s := &qfState{
		nodes: nodes, start: time.Now(),
		published: map[string]int{}, confirmed: map[string]qfConfirm{},
		delivered: map[string]int{}, acked: map[string]bool{}, conns: map[*qfConn]bool{},
	}
	t.Cleanup(func() {
		if t.Failed() {
			keepDataDirs(t, nodes)
			for i, b := range nodes {
				var lives []string
				for _, f := range b.prevLogs {
					data, _ := os.ReadFile(f)
					lives = append(lives, quorumLogLines(string(data)))
				}
				lives = append(lives, quorumLogLines(b.Logs()))
				t.Logf("node %d's log (quorum, leader, warnings and errors; %d lives):\n%s", i+1, len(lives),
					strings.Join(lives, "\n--- restarted ---\n"))
			}
		}
	})
	waitFor(t, 30*time.Second, "three registered nodes", func() bool { return len(clusterView(t, nodes[0])) == 3 })
	c1 := nodes[0].dial(t)
	ch1, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare(qfQueue, true, false, false, false, quorumArgs); err != nil {
		t.Fatal(err)
	}
	for _, b := range nodes[1:] {
		c := b.dial(t)
		waitForQueue(t, c, qfQueue)
		c.Close()
	}
	c1.Close()

	// Every client goroutine ends at the end of the test, however it
	// ends: stop, every connection closed, and a bounded wait.
	pubStop, subStop, watchStop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var pubs, subs, watch sync.WaitGroup
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			for _, c := range []chan struct{}{pubStop, subStop, watchStop} {
				if !stopped(c) {
					close(c)
				}
			}
			s.closeAll()
			if !waitGroupFor(&pubs, 30*time.Second) || !waitGroupFor(&subs, 30*time.Second) || !waitGroupFor(&watch, 30*time.Second) {
				t.Errorf("client goroutines still running 30 s after the end")
			}
		})
	}
	t.Cleanup(shutdown)
	watch.Add(1)
	go func() { defer watch.Done(); s.watchLeader(watchStop) }()
	for k := range qfConsumers {
		subs.Add(1)
		go func() { defer subs.Done(); s.consumer(k, 1+k, subStop) }()
	}
	for p := range qfPublishers {
		pubs.Add(1)
		go func() { defer pubs.Done(); s.publisher(p, pubStop) }()
	}

	// Faults start once messages flow both ways.
	waitFor(t, 60*time.Second, "messages confirmed and delivered before the faults", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.confirmed) >= 3 && len(s.deliveries) >= 1
	})
	faultsAt := time.Now()
	faults := randomFaults(t, rng, nodes, length)
	t.Logf("faults (from +%.1fs): %v", faultsAt.Sub(s.start).Seconds(), faults)

	// Heal: randomFaults ends each fault before the next; make sure
	// anyway that every node runs, unpaused and unblocked.
	for _, b := range nodes {
		b.cmd.Process.Signal(syscall.SIGCONT)
		clusterFault(t, b, "unblock")
	}
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 120*time.Second, "the cluster healed: three running, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
	healedAt := time.Now()

	close(pubStop)
	if !waitGroupFor(&pubs, 30*time.Second) {
		t.Errorf("publishers still running 30 s after they were stopped")
	}
	pubsDoneAt := time.Now()

	// Drain: until every confirmed message was delivered at least once.
	missing := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.undelivered())
	}
	drainBy := time.Now().Add(qfDrain)
	for missing() > 0 && time.Now().Before(drainBy) {
		time.Sleep(200 * time.Millisecond)
	}
	drained := time.Since(pubsDoneAt)
	stillMissing := missing()
	if stillMissing > 0 {
		for i, b := range nodes {
			code, body := b.httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/"+qfQueue, nil)
			var q map[string]any
			json.Unmarshal(body, &q)
			t.Logf("after the drain, node %d shows the queue (%d): leader %v members %v online %v messages %v ready %v unacked %v consumers %v",
				i+1, code, q["leader"], q["members"], q["online"], q["messages"], q["messages_ready"], q["messages_unacknowledged"], q["consumers"])
		}
		dumpGoroutines(t, nodes)
	}
	shutdown()
	lateFound := 0
	if stillMissing > 0 {
		lateFound = s.lateCheck(t)
	}
	for _, b := range nodes {
		b.Stop()
	}
	diverged := checkQueueReplicasAgree(t, nodes)

	s.mu.Lock()
	defer s.mu.Unlock()
	since := func(at time.Time) string { return fmt.Sprintf("+%.2fs", at.Sub(s.start).Seconds()) }
	anomalies := diverged

	// Lost.
	lost := s.undelivered()
	for i, b := range lost {
		anomalies++
		if i < 20 {
			c := s.confirmed[b]
			t.Errorf("lost: %s confirmed at %s (sent %s, through node %d, %d attempts) never delivered",
				b, since(c.at), since(c.sent), c.node+1, s.published[b])
		}
	}
	if len(lost) > 20 {
		t.Errorf("lost: %d more", len(lost)-20)
	}
	for _, r := range s.lostRuns(lost) {
		t.Logf("lost run: %s", r)
	}
	if len(lost) > 0 {
		t.Logf("of the lost, %d were delivered to a fresh consumer after the drain (still in the queue, not delivered in time)", lateFound)
		t.Logf("node events: %v", s.events)
	}

	// Phantom.
	phantoms := map[string]bool{}
	for _, d := range s.deliveries {
		if s.published[d.body] == 0 && !phantoms[d.body] {
			phantoms[d.body] = true
			anomalies++
			t.Errorf("phantom: %q delivered to consumer %d through node %d at %s, never published",
				d.body, d.consumer, d.node+1, since(d.at))
		}
	}

	// Reorder: per consumer and publisher, the first deliveries (not
	// flagged redelivered) of confirmed messages in seq order.
	type pos struct {
		seq int
		d   qfDelivery
	}
	last := map[string]pos{}
	for _, d := range s.deliveries {
		if _, ok := s.confirmed[d.body]; !ok || !d.first || d.redelivered {
			continue
		}
		pub, seqs, _ := strings.Cut(d.body, "-")
		seq, err := strconv.Atoi(seqs)
		if err != nil {
			continue
		}
		key := fmt.Sprintf("consumer %d/%s", d.consumer, pub)
		if prev, ok := last[key]; ok && seq < prev.seq {
			anomalies++
			t.Errorf("reorder: %s: %s first delivered at %s (session %d, node %d) after %s at %s (session %d, node %d)",
				key, d.body, since(d.at), d.session, d.node+1, prev.d.body, since(prev.d.at), prev.d.session, prev.d.node+1)
		}
		last[key] = pos{seq, d}
	}

	// Reported, not anomalies.
	redelivered, firstFlagged, again, unflagged, twice := 0, 0, 0, 0, 0
	for _, d := range s.deliveries {
		if d.redelivered {
			redelivered++
			if d.first {
				firstFlagged++
			}
		}
		if d.afterAck {
			again++
		}
		if !d.first && !d.redelivered && s.published[d.body] == 1 {
			unflagged++
		}
	}
	for _, n := range s.published {
		if n > 1 {
			twice++
		}
	}
	var killReport []string
	for _, k := range s.kills {
		var first time.Time
		for _, c := range s.confirmed {
			if !c.sent.Before(k.at) && (first.IsZero() || c.at.Before(first)) {
				first = c.at
			}
		}
		if first.IsZero() {
			killReport = append(killReport, fmt.Sprintf("leader node %d killed at %s: no confirm after it", k.node+1, since(k.at)))
		} else {
			killReport = append(killReport, fmt.Sprintf("leader node %d killed at %s: first confirm %.2fs later", k.node+1, since(k.at), first.Sub(k.at).Seconds()))
		}
	}
	sort.Strings(killReport)
	t.Logf("leaders seen: %v", s.leaders)
	t.Logf("kills of the leader: %v", killReport)
	t.Logf("healed at %s, publishers stopped at %s, drained in %.1fs",
		since(healedAt), since(pubsDoneAt), drained.Seconds())
	t.Logf("%d faults; %d published (%d sent more than once), %d confirmed, %d nacks, %d confirm timeouts, %d publisher reconnects; "+
		"%d deliveries of %d bodies, %d flagged redelivered (%d of them first deliveries), %d of acked messages, %d repeats of once-published messages not flagged redelivered; "+
		"%d consumer sessions ended (%d by basic.cancel); anomalies %d (lost %d, phantom %d, divergence %d)",
		len(faults), len(s.published), twice, len(s.confirmed), s.nacks, s.timeouts, s.pubLosses,
		len(s.deliveries), len(s.delivered), redelivered, firstFlagged, again, unflagged,
		s.subLosses, s.cancels, anomalies, len(lost), len(phantoms), diverged)
	if len(s.confirmed) == 0 {
		t.Errorf("nothing was confirmed: the trial tested nothing")
	}
	return anomalies
}

// lateCheck consumes the queue through a fresh connection for a few
// seconds, after the trial's consumers are gone, and returns how many
// confirmed messages never delivered during the trial come now.
func (s *qfState) lateCheck(t *testing.T) int {
	s.mu.Lock()
	want := map[string]bool{}
	for _, b := range s.undelivered() {
		want[b] = true
	}
	s.mu.Unlock()
	found := 0
	for node := range s.nodes {
		c, err := amqp.DialConfig(s.nodes[node].amqpURL(), amqp.Config{Heartbeat: 2 * time.Second, Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			continue
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			continue
		}
		ds, err := ch.Consume(qfQueue, "late", true, false, false, false, nil)
		if err != nil {
			continue
		}
		total := 0
		timeout := time.After(10 * time.Second)
		for {
			select {
			case d, ok := <-ds:
				if !ok {
					t.Logf("late check through node %d: %d deliveries, %d of the lost", node+1, total, found)
					return found
				}
				total++
				if want[string(d.Body)] {
					delete(want, string(d.Body))
					found++
				}
				continue
			case <-timeout:
			}
			break
		}
		t.Logf("late check through node %d: %d deliveries in 10 s, %d of the lost", node+1, total, found)
		return found
	}
	t.Logf("late check: no node took a consumer")
	return found
}

// lostRuns describes lost messages as runs of consecutive seqs of one
// publisher; s.mu held.
func (s *qfState) lostRuns(lost []string) []string {
	byPub := map[string][]int{}
	for _, b := range lost {
		pub, seqs, _ := strings.Cut(b, "-")
		n, _ := strconv.Atoi(seqs)
		byPub[pub] = append(byPub[pub], n)
	}
	var out []string
	for pub, seqs := range byPub {
		sort.Ints(seqs)
		for i := 0; i < len(seqs); {
			j := i
			for j+1 < len(seqs) && seqs[j+1] <= seqs[j]+3 {
				j++
			}
			a, b := s.confirmed[fmt.Sprintf("%s-%d", pub, seqs[i])], s.confirmed[fmt.Sprintf("%s-%d", pub, seqs[j])]
			out = append(out, fmt.Sprintf("%s-%d..%s-%d: %d lost, confirmed +%.2fs..+%.2fs through node %d..%d",
				pub, seqs[i], pub, seqs[j], j-i+1, a.at.Sub(s.start).Seconds(), b.at.Sub(s.start).Seconds(), a.node+1, b.node+1))
			i = j + 1
		}
	}
	sort.Strings(out)
	return out
}

// undelivered is the confirmed messages never delivered, sorted; s.mu
// held.
func (s *qfState) undelivered() []string {
	var out []string
	for b := range s.confirmed {
		if s.delivered[b] == 0 {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

// waitGroupFor waits for wg at most d; false if it did not end.
func waitGroupFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// dumpGoroutines saves every node's goroutines (the servers run with
// --debug-pprof) to files kept after the test, for a drain that did not
// finish: a group without a leader or a worker blocked shows there.
// SLUICE_TEST_ARTIFACTS names the directory (default the system's
// temporary directory).
// checkQueueReplicasAgree compares the quorum queue's log on every node's
// disk (the nodes stopped), batch by batch at the offsets the nodes both
// still hold: the members' log starts move separately (each deletes
// what is settled), their records never differ. It returns the number of
// pairs of nodes that differ.
func checkQueueReplicasAgree(t *testing.T, nodes []*broker) int {
	anomalies := 0
	var logs []map[int64][]byte
	var which []int
	for i, b := range nodes {
		dirs, _ := filepath.Glob(filepath.Join(b.DataDir, "topics", "__sluice_quorum_*-0"))
		if len(dirs) != 1 {
			anomalies++
			t.Errorf("node %d: %d quorum queue logs on disk, want 1", i+1, len(dirs))
			continue
		}
		batches, err := readBatches(dirs[0])
		if err != nil {
			anomalies++
			t.Errorf("node %d: reading the queue's log: %v", i+1, err)
			continue
		}
		m := map[int64][]byte{}
		for _, b := range batches {
			m[int64(binary.BigEndian.Uint64(b))] = b
		}
		logs = append(logs, m)
		which = append(which, i+1)
	}
	for i := 1; i < len(logs); i++ {
		common, differ, first := 0, 0, int64(-1)
		for off, b := range logs[0] {
			if o, ok := logs[i][off]; ok {
				common++
				if !bytes.Equal(o, b) {
					differ++
					if first < 0 || off < first {
						first = off
					}
				}
			}
		}
		if differ > 0 {
			anomalies++
			t.Errorf("divergence: the queue's log on node %d and node %d differs in %d of the %d batches both hold, the first at offset %d",
				which[0], which[i], differ, common, first)
		} else {
			t.Logf("the queue's log on node %d (%d batches) and node %d (%d) agree on the %d both hold", which[0], len(logs[0]), which[i], len(logs[i]), common)
		}
	}
	return anomalies
}

// keepDataDirs copies the nodes' data directories to artifactDir for
// after a failed trial.
func keepDataDirs(t *testing.T, nodes []*broker) {
	dir := filepath.Join(artifactDir(), fmt.Sprintf("sluice-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
	for i, b := range nodes {
		dst := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		if err := os.CopyFS(dst, os.DirFS(b.DataDir)); err != nil {
			t.Logf("keeping node %d's data directory: %v", i+1, err)
			return
		}
	}
	t.Logf("the nodes' data directories are kept in %s", dir)
}

func dumpGoroutines(t *testing.T, nodes []*broker) {
	dir := artifactDir()
	stamp := time.Now().UTC().Format("20060102T150405")
	for i, b := range nodes {
		resp, err := http.Get("http://" + b.HTTP + "/debug/pprof/goroutine?debug=2")
		if err != nil {
			t.Logf("node %d: goroutines: %v", i+1, err)
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		f := filepath.Join(dir, fmt.Sprintf("sluice-%s-%s-node%d-goroutines.txt", strings.ReplaceAll(t.Name(), "/", "_"), stamp, i+1))
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Logf("node %d: goroutines: %v", i+1, err)
			continue
		}
		t.Logf("node %d: goroutines in %s", i+1, f)
	}
}
