package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// quorumArgs declares a quorum queue.
var quorumArgs = amqp.Table{"x-queue-type": "quorum"}

// TestClusterQuorumQueueFailover: a quorum queue declared through node 1
// (which leads it first) on three real processes; four amqp091-go
// publishers in confirm mode publish through nodes 2 and 3, a consumer
// with manual acks consumes through node 3; node 1 is killed with
// SIGKILL while they run. Every confirmed message must be delivered
// (duplicates allowed only for what was not acked), each publisher's
// messages first arrive in the order published, and the consumer keeps
// its subscription across the failover (no basic.cancel). Repeated
// SLUICE_QUORUM_TRIALS times (default 1).
func TestClusterQuorumQueueFailover(t *testing.T) {
	trials := 1
	if s := os.Getenv("SLUICE_QUORUM_TRIALS"); s != "" {
		trials, _ = strconv.Atoi(s)
	}
	for trial := range trials {
		t.Run(fmt.Sprintf("trial-%d", trial), func(t *testing.T) { quorumFailoverTrial(t) })
	}
}

func quorumFailoverTrial(t *testing.T) {
	nodes := startQuorumCluster(t)
	c1 := nodes[0].dial(t)
	ch1, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("qq", true, false, false, false, quorumArgs); err != nil {
		t.Fatal(err)
	}
	c2, c3 := nodes[1].dial(t), nodes[2].dial(t)
	waitForQueue(t, c2, "qq")
	waitForQueue(t, c3, "qq")

	// The consumer, through node 3.
	cch, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(50, 0, false); err != nil {
		t.Fatal(err)
	}
	cancels := cch.NotifyCancel(make(chan string, 1))
	ds, err := cch.Consume("qq", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	const publishers, perPublisher = 4, 250
	var (
		mu        sync.Mutex
		confirmed = map[string]bool{}
		killedAt  time.Time
		firstConf time.Time // first confirm of a message sent after the kill
	)
	kill := make(chan struct{})
	var wg sync.WaitGroup
	for p := range publishers {
		via := nodes[1+p%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ch *amqp.Channel
			var conf chan amqp.Confirmation
			open := func() bool {
				c, err := amqp.Dial(via.amqpURL())
				if err != nil {
					return false
				}
				t.Cleanup(func() { c.Close() })
				if ch, err = c.Channel(); err != nil {
					return false
				}
				if err := ch.Confirm(false); err != nil {
					return false
				}
				conf = ch.NotifyPublish(make(chan amqp.Confirmation, 1))
				return true
			}
			for !open() {
				time.Sleep(100 * time.Millisecond)
			}
			deadline := time.Now().Add(90 * time.Second)
			for seq := 0; seq < perPublisher; {
				if time.Now().After(deadline) {
					t.Errorf("publisher %d: message %d not confirmed in 90 s", p, seq)
					return
				}
				body := fmt.Sprintf("p%d-%d", p, seq)
				mu.Lock()
				sentAfterKill := !killedAt.IsZero()
				mu.Unlock()
				err := ch.Publish("", "qq", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
				ok := false
				if err == nil {
					select {
					case c, open := <-conf:
						ok = open && c.Ack
						if !open {
							err = amqp.ErrClosed
						}
					case <-time.After(15 * time.Second):
						err = fmt.Errorf("no confirm in 15 s")
					}
				}
				if err != nil {
					for !open() {
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				if !ok {
					time.Sleep(20 * time.Millisecond) // nacked: no leader yet; again
					continue
				}
				mu.Lock()
				confirmed[body] = true
				if sentAfterKill && firstConf.IsZero() {
					firstConf = time.Now()
				}
				n := len(confirmed)
				mu.Unlock()
				if n == publishers*perPublisher/3 {
					close(kill)
				}
				seq++
			}
		}()
	}
	go func() {
		<-kill
		mu.Lock()
		killedAt = time.Now()
		mu.Unlock()
		nodes[0].Kill()
	}()

	seen := map[string]int{}
	last := map[string]int{} // publisher -> the last sequence number first seen
	order := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	pubsDone := false
	for {
		if pubsDone {
			mu.Lock()
			missing := 0
			for b := range confirmed {
				if seen[b] == 0 {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				break
			}
		}
		select {
		case <-done:
			pubsDone = true
			done = nil
		case tag := <-cancels:
			t.Fatalf("the consumer was cancelled (%s) across the failover", tag)
		case d, ok := <-ds:
			if !ok {
				t.Fatal("the consumer's channel closed across the failover")
			}
			b := string(d.Body)
			if seen[b] == 0 {
				pub, seq, _ := strings.Cut(b, "-")
				n, _ := strconv.Atoi(seq)
				if prev, ok := last[pub]; ok && n < prev {
					order++
					t.Errorf("%s first delivered after %s-%d", b, pub, prev)
				}
				last[pub] = n
			}
			seen[b]++
			d.Ack(false)
		case <-time.After(60 * time.Second):
			mu.Lock()
			missing := 0
			for b := range confirmed {
				if seen[b] == 0 {
					missing++
				}
			}
			mu.Unlock()
			t.Fatalf("no delivery for 60 s; %d confirmed messages not delivered", missing)
		}
	}
	dups := 0
	for _, k := range seen {
		dups += k - 1
	}
	mu.Lock()
	defer mu.Unlock()
	if killedAt.IsZero() {
		t.Fatal("the leader was never killed")
	}
	t.Logf("%d confirmed messages all delivered across the kill of the leader; %d delivered again; the first message sent after the kill confirmed %.2f s after it",
		len(confirmed), dups, firstConf.Sub(killedAt).Seconds())
}

// quorumLogLines keeps the lines of a server log worth reading after a
// failed quorum queue test.
func quorumLogLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "quorum") || strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") || strings.Contains(l, "leader") {
			out = append(out, l)
		}
	}
	if len(out) > 200 {
		out = out[len(out)-200:]
	}
	return strings.Join(out, "\n")
}

// TestClusterQuorumQueueOperations: a quorum queue of two members (nodes
// 1 and 2, x-quorum-initial-group-size) used entirely through node 3,
// which holds no copy: declare, publish (forwarded to a member), consume
// and basic.get (from the leader, through node 3), counts, purge. Its
// first leader, node 1, is then stopped: with one of two members left a
// publish is refused; node 1 restarted, the consumer on node 3, still
// subscribed, gets what is published next. Deleting the queue through
// node 3 removes it, and its log, everywhere.
func TestClusterQuorumQueueOperations(t *testing.T) {
	nodes := startQuorumCluster(t)
	ch1, err := nodes[0].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	args := amqp.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(2)}
	if _, err := ch1.QueueDeclare("q2", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	c3 := nodes[2].dial(t)
	waitForQueue(t, c3, "q2")
	// The management API shows it as RabbitMQ does: type, members,
	// leader (known to its members).
	waitFor(t, 10*time.Second, "/api/queues to show q2's leader and members", func() bool {
		code, body := nodes[0].httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/q2", nil)
		var q struct {
			Type    string   `json:"type"`
			Leader  string   `json:"leader"`
			Members []string `json:"members"`
			Online  []string `json:"online"`
			State   string   `json:"state"`
		}
		if code != 200 || json.Unmarshal(body, &q) != nil {
			return false
		}
		return q.Type == "quorum" && q.Leader != "" && len(q.Members) == 2 && len(q.Online) == 2 && q.State == "running"
	})
	ch3, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch3.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// publish sends n messages through ch3 and waits for their confirms,
	// sending a nacked one again (no leader for a moment).
	publish := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			publishUntilConfirmed(t, ch3, "q2", fmt.Sprintf("%s-%d", prefix, i))
		}
	}
	publish("a", 100)
	waitFor(t, 10*time.Second, "100 messages counted through node 3", func() bool {
		q, err := ch3.QueueDeclarePassive("q2", true, false, false, false, args)
		return err == nil && q.Messages == 100
	})
	gch, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	d, ok, err := gch.Get("q2", false)
	if err != nil || !ok || string(d.Body) != "a-0" {
		t.Fatalf("basic.get through node 3: %q %v %v", d.Body, ok, err)
	}
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	n, err := gch.QueuePurge("q2", false)
	if err != nil || n != 100 {
		t.Fatalf("purge through node 3: %d %v, want 100", n, err)
	}

	cch, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	cancels := cch.NotifyCancel(make(chan string, 1))
	ds, err := cch.Consume("q2", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	want := func(prefix string, n int) {
		t.Helper()
		for missing := n; missing > 0; {
			select {
			case d, ok := <-ds:
				if !ok {
					t.Fatal("consumer channel closed")
				}
				if strings.HasPrefix(string(d.Body), prefix+"-") && !seen[string(d.Body)] {
					missing--
				}
				seen[string(d.Body)] = true
				d.Ack(false)
			case tag := <-cancels:
				t.Fatalf("consumer cancelled (%s)", tag)
			case <-time.After(30 * time.Second):
				t.Fatalf("%d of the %q messages not delivered through node 3 in 30 s", missing, prefix)
			}
		}
	}
	publish("b", 200)
	want("b", 200)
	// Without node 1 the queue's two members have no majority: a
	// publish is refused (basic.nack), as RabbitMQ refuses it; once node
	// 1 is back, the queue goes on with the consumer still subscribed.
	nodes[0].Stop()
	dc, err := ch3.PublishWithDeferredConfirm("", "q2", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("x-0")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-dc.Done():
		if dc.Acked() {
			t.Fatal("a publish confirmed with one of the queue's two members down")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to a publish with one of the queue's two members down in 30 s")
	}
	nodes[0].Restart()
	publish("c", 200)
	want("c", 200)

	if _, err := ch3.QueueDelete("q2", false, false, false); err != nil {
		t.Fatal(err)
	}
	c2 := nodes[1].dial(t)
	waitFor(t, 20*time.Second, "the queue gone from node 2", func() bool {
		ch, err := c2.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive("q2", true, false, false, false, args)
		return err != nil
	})
	// Its log (an internal topic) is gone with it.
	waitFor(t, 20*time.Second, "the queue's log deleted", func() bool {
		md, err := nodes[1].admin(t).ListTopicsWithInternal(context.Background())
		if err != nil {
			return false
		}
		for name := range md {
			if strings.HasPrefix(name, "__sluice_quorum_") {
				return false
			}
		}
		return true
	})
}

// TestClusterQuorumQueueDeliveryLimit: a quorum queue declared without
// x-delivery-limit takes RabbitMQ 4's default of 20: a message returned
// 21 times (basic.get and basic.nack with requeue, through a node that
// does not lead the queue) is dead-lettered with reason delivery_limit.
func TestClusterQuorumQueueDeliveryLimit(t *testing.T) {
	nodes := startQuorumCluster(t)
	ch1, err := nodes[0].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("dead", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("limited", true, false, false, false, amqp.Table{
		"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}); err != nil {
		t.Fatal(err)
	}
	if err := ch1.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch1.PublishWithDeferredConfirm("", "limited", false, false, amqp.Publishing{Body: []byte("poison")})
	if err != nil || !dc.Wait() {
		t.Fatalf("publish: %v", err)
	}
	c2 := nodes[1].dial(t)
	waitForQueue(t, c2, "limited")
	ch2, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, err := ch2.Get("limited", false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if n := queueDepth(t, ch1, "dead"); n == 1 {
				break
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		deliveries++
		if deliveries > 1 && !d.Redelivered {
			t.Fatalf("delivery %d not flagged redelivered", deliveries)
		}
		if err := d.Nack(false, true); err != nil {
			t.Fatal(err)
		}
	}
	if deliveries != 21 {
		t.Fatalf("the message was delivered %d times before it was dead-lettered, want 21 (RabbitMQ 4's limit of 20 returns)", deliveries)
	}
	d, ok, err := ch1.Get("dead", true)
	if err != nil || !ok {
		t.Fatalf("get from dead: %v %v", ok, err)
	}
	deaths, _ := d.Headers["x-death"].([]any)
	if len(deaths) != 1 {
		t.Fatalf("x-death %v", d.Headers["x-death"])
	}
	if death, _ := deaths[0].(amqp.Table); death["reason"] != "delivery_limit" || death["queue"] != "limited" {
		t.Fatalf("x-death %v, want reason delivery_limit from queue limited", deaths[0])
	}
}

// TestClusterQuorumPika: pika (Debian's python3-pika) with a quorum queue
// on three real processes: it publishes with confirms through node 2,
// consumes through node 3, kills node 3 under its own consumer and
// reconnects to another node, and gets every confirmed message
// (test/python/pika_quorum.py).
func TestClusterQuorumPika(t *testing.T) {
	needPythonModule(t, "pika")
	nodes := startQuorumCluster(t)
	script, err := filepath.Abs(filepath.Join("python", "pika_quorum.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 120*time.Second, "", python3Path, script, nodes[0].AMQP, nodes[1].AMQP, nodes[2].AMQP,
		strconv.Itoa(nodes[2].cmd.Process.Pid)).must(t, nodes[0], "pika with a quorum queue on the cluster")
	nodes[2].Kill() // killed by the script: reaped here, not reported as a failed stop
	t.Logf("%s", r.Stdout)
}

// TestClusterStreamQueueReplicated: a stream queue declared through node 1
// of a cluster is a replicated log on the three nodes, in the Kafka vhost
// ("/", a topic of its name) and in any other (a topic of its own): written
// through node 2 with confirms, read through node 3 from the first offset;
// after node 1 is killed it takes more writes, and a reader through node 3
// finds everything confirmed, in order, once.
func TestClusterStreamQueueReplicated(t *testing.T) {
	nodes := startQuorumCluster(t)
	nodes[0].api(t, "PUT", "/api/vhosts/logs", nil, 201)
	nodes[0].api(t, "PUT", "/api/permissions/logs/guest", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	dial := func(b *broker, vhost string) *amqp.Connection {
		t.Helper()
		url := b.amqpURL()
		if vhost != "/" {
			url = strings.TrimSuffix(url, "/") + "/" + vhost
		}
		var c *amqp.Connection
		waitFor(t, 20*time.Second, "a connection to "+url, func() bool {
			var err error
			c, err = amqp.Dial(url)
			return err == nil
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	type side struct {
		vhost    string
		pub, sub *amqp.Connection
		pubCh    *amqp.Channel
	}
	sides := []*side{{vhost: "/"}, {vhost: "logs"}}
	for _, sd := range sides {
		ch1, err := dial(nodes[0], sd.vhost).Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch1.QueueDeclare("events", true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
			t.Fatal(err)
		}
		sd.pub, sd.sub = dial(nodes[1], sd.vhost), dial(nodes[2], sd.vhost)
		waitForQueue(t, sd.pub, "events")
		waitForQueue(t, sd.sub, "events")
		if sd.pubCh, err = sd.pub.Channel(); err != nil {
			t.Fatal(err)
		}
		if err := sd.pubCh.Confirm(false); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(sd *side, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			publishUntilConfirmed(t, sd.pubCh, "events", strconv.Itoa(i))
		}
	}
	// read reads the stream through node 3 from its first offset and
	// checks it holds 0..n-1 in order.
	read := func(sd *side, n int) {
		t.Helper()
		ch, err := sd.sub.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if err := ch.Qos(100, 0, false); err != nil {
			t.Fatal(err)
		}
		ds, err := ch.Consume("events", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			select {
			case d := <-ds:
				if string(d.Body) != strconv.Itoa(i) {
					t.Fatalf("vhost %s: entry %d of the stream read through node 3 is %q", sd.vhost, i, d.Body)
				}
				d.Ack(false)
			case <-time.After(20 * time.Second):
				t.Fatalf("vhost %s: read %d of %d through node 3", sd.vhost, i, n)
			}
		}
	}
	for _, sd := range sides {
		publish(sd, 0, 200)
		read(sd, 200)
	}
	nodes[0].Kill()
	for _, sd := range sides {
		publish(sd, 200, 300)
		read(sd, 300)
	}
}

// TestClusterQuorumQueueRestart: a quorum queue's messages and acks
// survive a stop and restart of the whole cluster: of 100 confirmed
// messages, the 40 acked before the stop are not delivered again, the 60
// others are, in order.
func TestClusterQuorumQueueRestart(t *testing.T) {
	nodes := startQuorumCluster(t)
	c1 := nodes[0].dial(t)
	ch, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("kept", true, false, false, false, quorumArgs); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		dc, err := ch.PublishWithDeferredConfirm("", "kept", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(i))})
		if err != nil || !dc.Wait() {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for i := range 40 {
		d, ok, err := ch.Get("kept", false)
		if err != nil || !ok || string(d.Body) != strconv.Itoa(i) {
			t.Fatalf("get %d: %q %v %v", i, d.Body, ok, err)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	// The acks are replicated entries: wait until the count says so
	// before the stop (acks are not confirmed in AMQP).
	waitFor(t, 10*time.Second, "60 messages left", func() bool {
		q, err := ch.QueueDeclarePassive("kept", true, false, false, false, quorumArgs)
		return err == nil && q.Messages == 60
	})
	time.Sleep(500 * time.Millisecond) // let the last ack entry commit on every member
	c1.Close()
	for _, b := range nodes {
		b.Stop()
	}
	for _, b := range nodes {
		b.launch()
	}
	for _, b := range nodes {
		b.waitReady()
	}
	c2 := nodes[1].dial(t)
	waitForQueue(t, c2, "kept")
	ch2, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for i := 40; i < 100; i++ {
		var d amqp.Delivery
		waitFor(t, 30*time.Second, fmt.Sprintf("message %d after the restart", i), func() bool {
			var ok bool
			d, ok, err = ch2.Get("kept", false)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		})
		if string(d.Body) != strconv.Itoa(i) {
			t.Fatalf("after the restart got %q, want %d (acked messages come back, or one is lost)", d.Body, i)
		}
		d.Ack(false)
	}
	if d, ok, _ := ch2.Get("kept", false); ok {
		t.Fatalf("an extra message after the restart: %q", d.Body)
	}
}

// startQuorumCluster starts three nodes and waits until all are
// registered (so that a quorum queue gets three members); the quorum
// lines of their logs are shown if the test fails.
func startQuorumCluster(t *testing.T) []*broker {
	t.Helper()
	nodes := startCluster(t, 3)
	t.Cleanup(func() {
		if t.Failed() {
			for i, b := range nodes {
				t.Logf("node %d's log:\n%s", i+1, quorumLogLines(b.Logs()))
			}
		}
	})
	waitFor(t, 30*time.Second, "three registered nodes", func() bool { return len(clusterView(t, nodes[0])) == 3 })
	return nodes
}

// TestClusterQuorumConsumerNodeKilledAndBack: the node a consumer reads a
// quorum queue through is killed while messages flow to it and restarted
// within a second, before the queue's leader would give up on it: what
// the leader was sending there must go back to the queue, not round and
// round to a consumer that is no more (which once spent every message's
// delivery limit and dropped them). Every confirmed message is delivered
// through another node afterwards.
func TestClusterQuorumConsumerNodeKilledAndBack(t *testing.T) {
	nodes := startQuorumCluster(t)
	ch1, err := nodes[0].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("flow", true, false, false, false, quorumArgs); err != nil {
		t.Fatal(err)
	}
	if err := ch1.Confirm(false); err != nil {
		t.Fatal(err)
	}
	c3, err := amqp.Dial(nodes[2].amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	waitForQueue(t, c3, "flow")
	cch, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(20, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("flow", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var mu sync.Mutex
	go func() {
		for d := range ds {
			mu.Lock()
			seen[string(d.Body)] = true
			mu.Unlock()
			d.Ack(false)
		}
	}()
	const n = 3000
	killed := false
	for i := range n {
		publishUntilConfirmed(t, ch1, "flow", strconv.Itoa(i))
		if i == n/3 && !killed {
			killed = true
			nodes[2].Kill()
			go func() {
				time.Sleep(time.Second)
				nodes[2].Restart()
			}()
		}
	}
	ch2, err := nodes[1].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch2.Qos(100, 0, false); err != nil {
		t.Fatal(err)
	}
	ds2, err := ch2.Consume("flow", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		m := 0
		for i := range n {
			if !seen[strconv.Itoa(i)] {
				m++
			}
		}
		return m
	}
	deadline := time.After(60 * time.Second)
	for missing() > 0 {
		select {
		case d := <-ds2:
			mu.Lock()
			seen[string(d.Body)] = true
			mu.Unlock()
			d.Ack(false)
		case <-deadline:
			t.Fatalf("%d of %d confirmed messages never delivered after the consumer's node came back", missing(), n)
		}
	}
}

// publishUntilConfirmed publishes body (persistent) to queue q through ch, in
// confirm mode, and sends it again while it is nacked (no leader for a
// moment, or a leader change seen: allowed answers), up to 100 times.
func publishUntilConfirmed(t *testing.T, ch *amqp.Channel, q, body string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		dc, err := ch.PublishWithDeferredConfirm("", q, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			t.Fatalf("publish %s: %v", body, err)
		}
		if dc.Wait() {
			return
		}
		if attempt == 100 {
			t.Fatalf("%s nacked 100 times", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterQuorumExclusiveConsumer: an exclusive consumer of a quorum
// queue holds it whichever node its client is connected to: a second
// consumer through a node that does not lead the queue is refused with
// 403 ACCESS_REFUSED, as through the leader and as in RabbitMQ (the
// registration with the leader is made before basic.consume-ok).
func TestClusterQuorumExclusiveConsumer(t *testing.T) {
	nodes := startQuorumCluster(t)
	ch1, err := nodes[0].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("solo", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, n := range clusterView(t, nodes[0]) {
		names[n.Name] = int(n.NodeID)
	}
	leader := 0
	waitFor(t, 20*time.Second, "the queue's leader", func() bool {
		code, body := nodes[0].httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/solo", nil)
		var q struct {
			Leader string `json:"leader"`
		}
		if code != 200 || json.Unmarshal(body, &q) != nil {
			return false
		}
		leader = names[q.Leader]
		return leader != 0
	})
	others := []int{}
	for i := 1; i <= 3; i++ {
		if i != leader {
			others = append(others, i)
		}
	}
	// The exclusive consumer through one follower, the second attempt
	// through the other.
	ca := nodes[others[0]-1].dial(t)
	waitForQueue(t, ca, "solo")
	cha, err := ca.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cha.Consume("solo", "holder", false, true, false, false, nil); err != nil {
		t.Fatalf("the exclusive consumer through node %d: %v", others[0], err)
	}
	cb := nodes[others[1]-1].dial(t)
	waitForQueue(t, cb, "solo")
	for _, exclusive := range []bool{false, true} {
		chb, err := cb.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = chb.Consume("solo", "second", false, exclusive, false, false, nil)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
			t.Fatalf("a second consumer (exclusive %v) through node %d while node %d's client holds the queue: %v, want 403",
				exclusive, others[1], others[0], err)
		}
	}
	// Once the holder goes, a consumer through the other follower is taken.
	cha.Close()
	waitFor(t, 20*time.Second, "a consumer taken once the exclusive one went", func() bool {
		chb, err := cb.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chb.Consume("solo", "next", false, true, false, false, nil); err != nil {
			return false
		}
		return true
	})
}

// TestClusterConnectionsListed: /api/connections on any node of a cluster
// lists the AMQP connections of every node, each with the node it is on,
// as RabbitMQ's does (rabbitmqadmin list connections); a vhost's list
// (/api/vhosts/{vhost}/connections) likewise. Any node shows, closes and
// counts (message_stats) a connection or channel of any node, lists every
// node's consumers, and counts every node's in its overview.
func TestClusterConnectionsListed(t *testing.T) {
	nodes := startQuorumCluster(t)
	names := map[uint64]string{}
	for _, n := range clusterView(t, nodes[0]) {
		names[n.NodeID] = n.Name
	}
	clients := make([]*amqp.Connection, len(nodes))
	for i, b := range nodes {
		c, err := amqp.DialConfig(b.amqpURL(), amqp.Config{Properties: amqp.Table{"connection_name": fmt.Sprintf("client-of-%d", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Channel(); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	type conn struct {
		Name   string         `json:"name"`
		Node   string         `json:"node"`
		Vhost  string         `json:"vhost"`
		Client map[string]any `json:"client_properties"`
	}
	connName := map[string]string{} // client-of-k: the connection's name
	for _, path := range []string{"/api/connections", "/api/vhosts/%2F/connections"} {
		for i, b := range nodes {
			var seen map[string]string
			waitFor(t, 20*time.Second, fmt.Sprintf("%s on node %d to list the three clients with their nodes", path, i+1), func() bool {
				code, body := b.httpDo(t, "guest", "guest", "GET", path, nil)
				var cs []conn
				if code != 200 || json.Unmarshal(body, &cs) != nil {
					return false
				}
				seen = map[string]string{}
				for _, c := range cs {
					if name, _ := c.Client["connection_name"].(string); strings.HasPrefix(name, "client-of-") {
						seen[name] = c.Node
						connName[name] = c.Name
					}
				}
				return len(seen) == 3
			})
			for k := 1; k <= 3; k++ {
				if got := seen[fmt.Sprintf("client-of-%d", k)]; got != names[uint64(k)] {
					t.Fatalf("%s on node %d: client-of-%d on %q, want %q", path, i+1, k, got, names[uint64(k)])
				}
			}
		}
	}

	// Any node shows any connection, and its channels, wherever it is.
	for i, b := range nodes {
		for k := 1; k <= 3; k++ {
			name := connName[fmt.Sprintf("client-of-%d", k)]
			code, body := b.httpDo(t, "guest", "guest", "GET", "/api/connections/"+url.PathEscape(name), nil)
			var c conn
			if code != 200 || json.Unmarshal(body, &c) != nil || c.Name != name || c.Node != names[uint64(k)] {
				t.Fatalf("GET /api/connections/%s on node %d: %d %s", name, i+1, code, body)
			}
			code, body = b.httpDo(t, "guest", "guest", "GET", "/api/connections/"+url.PathEscape(name)+"/channels", nil)
			var chans []map[string]any
			if code != 200 || json.Unmarshal(body, &chans) != nil || len(chans) != 1 {
				t.Fatalf("GET /api/connections/%s/channels on node %d: %d %s", name, i+1, code, body)
			}
		}
	}
	// and /api/channels lists every node's channels, each found by name.
	for i, b := range nodes {
		code, body := b.httpDo(t, "guest", "guest", "GET", "/api/channels", nil)
		var chans []struct {
			Name string `json:"name"`
			Node string `json:"node"`
		}
		if code != 200 || json.Unmarshal(body, &chans) != nil {
			t.Fatalf("GET /api/channels on node %d: %d %s", i+1, code, body)
		}
		got := map[string]string{}
		for _, ch := range chans {
			got[ch.Name] = ch.Node
		}
		for k := 1; k <= 3; k++ {
			name := connName[fmt.Sprintf("client-of-%d", k)] + " (1)"
			if got[name] != names[uint64(k)] {
				t.Fatalf("GET /api/channels on node %d: %q on %q, want %q (all: %v)", i+1, name, got[name], names[uint64(k)], got)
			}
			if code, body := b.httpDo(t, "guest", "guest", "GET", "/api/channels/"+url.PathEscape(name), nil); code != 200 {
				t.Fatalf("GET /api/channels/%s on node %d: %d %s", name, i+1, code, body)
			}
		}
	}
	if code, _ := nodes[0].httpDo(t, "guest", "guest", "GET", "/api/connections/"+url.PathEscape("no such connection"), nil); code != 404 {
		t.Fatalf("an unknown connection: %d, want 404", code)
	}

	// Message stats and consumers of every node, through any node:
	// client-of-k publishes 5k messages on its channel and consumes from a
	// queue of its own with the tag "tag-k".
	for k, c := range clients {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf("stats-q-%d", k+1)
		if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for range 5 * (k + 1) {
			if err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte("m")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ch.Consume(q, fmt.Sprintf("tag-%d", k+1), false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	publishes := func(m map[string]any) float64 {
		st, _ := m["message_stats"].(map[string]any)
		n, _ := st["publish"].(float64)
		return n
	}
	for i, b := range nodes {
		for k := 1; k <= 3; k++ {
			name := connName[fmt.Sprintf("client-of-%d", k)]
			waitFor(t, 20*time.Second, fmt.Sprintf("node %d to show %d publishes of %s and of its channel", i+1, 5*k, name), func() bool {
				code, body := b.httpDo(t, "guest", "guest", "GET", "/api/connections/"+url.PathEscape(name)+"?msg_rates_age=60&msg_rates_incr=5", nil)
				var c map[string]any
				if code != 200 || json.Unmarshal(body, &c) != nil || publishes(c) != float64(5*k) {
					return false
				}
				if st, _ := c["message_stats"].(map[string]any); st["publish_details"] == nil {
					return false
				}
				code, body = b.httpDo(t, "guest", "guest", "GET", "/api/channels/"+url.PathEscape(name+" (2)"), nil)
				var ch map[string]any
				return code == 200 && json.Unmarshal(body, &ch) == nil && publishes(ch) == float64(5*k)
			})
		}
		waitFor(t, 20*time.Second, fmt.Sprintf("/api/consumers on node %d to list the three consumers with their nodes", i+1), func() bool {
			code, body := b.httpDo(t, "guest", "guest", "GET", "/api/consumers", nil)
			var cs []struct {
				Tag string `json:"consumer_tag"`
				Ch  struct {
					Node string `json:"node"`
				} `json:"channel_details"`
			}
			if code != 200 || json.Unmarshal(body, &cs) != nil {
				return false
			}
			seen := map[string]string{}
			for _, c := range cs {
				seen[c.Tag] = c.Ch.Node
			}
			for k := 1; k <= 3; k++ {
				if seen[fmt.Sprintf("tag-%d", k)] != names[uint64(k)] {
					return false
				}
			}
			return true
		})
	}
	// /api/overview on any node counts every node's connections, channels
	// and publishes (5 + 10 + 15), as RabbitMQ's does.
	for i, b := range nodes {
		waitFor(t, 20*time.Second, fmt.Sprintf("/api/overview on node %d to count 3 connections, 6 channels and 30 publishes", i+1), func() bool {
			code, body := b.httpDo(t, "guest", "guest", "GET", "/api/overview?msg_rates_age=60&msg_rates_incr=5", nil)
			var o struct {
				Totals map[string]float64 `json:"object_totals"`
				Stats  map[string]any     `json:"message_stats"`
			}
			if code != 200 || json.Unmarshal(body, &o) != nil {
				return false
			}
			d, _ := o.Stats["publish_details"].(map[string]any)
			return o.Totals["connections"] == 3 && o.Totals["channels"] == 6 && publishes(map[string]any{"message_stats": o.Stats}) == 30 && d != nil
		})
	}

	// Closing client-of-3's connection through node 1: node 3 closes it
	// with 320 and the reason, as RabbitMQ does.
	closed := clients[2].NotifyClose(make(chan *amqp.Error, 1))
	name := connName["client-of-3"]
	req, err := http.NewRequest("DELETE", "http://"+nodes[0].HTTP+"/api/connections/"+url.PathEscape(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("X-Reason", "moving to another node")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE /api/connections/%s on node 1: %s", name, resp.Status)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced || !strings.Contains(e.Reason, "moving to another node") {
			t.Fatalf("client-of-3 closed with %v, want 320 and the reason", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client-of-3 was not closed")
	}
	waitFor(t, 10*time.Second, "the closed connection gone from node 2's view", func() bool {
		code, _ := nodes[1].httpDo(t, "guest", "guest", "GET", "/api/connections/"+url.PathEscape(name), nil)
		return code == 404
	})
	if clients[0].IsClosed() || clients[1].IsClosed() {
		t.Fatal("closing client-of-3 closed another connection")
	}
}
