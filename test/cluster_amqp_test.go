package test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterAMQPDefinitions: exchanges, bindings, vhosts and queue
// definitions made through one node are seen by the others (amqp091-go
// against three server processes). A classic queue lives on the node that
// declared it: the others bind to it and delete it, refuse to make a
// second queue of its name, say where it lives, and refuse (basic.nack)
// a message routed through them to it.
func TestClusterAMQPDefinitions(t *testing.T) {
	nodes := startCluster(t, 3)
	dial := func(b *broker, vhost string) *amqp.Connection {
		t.Helper()
		url := b.amqpURL()
		if vhost != "" {
			url = strings.TrimSuffix(url, "/") + "/" + vhost
		}
		c, err := amqp.Dial(url)
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	channel := func(c *amqp.Connection) *amqp.Channel {
		t.Helper()
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	c1, c2, c3 := dial(nodes[0], ""), dial(nodes[1], ""), dial(nodes[2], "")
	ch1, ch2 := channel(c1), channel(c2)

	if err := ch1.ExchangeDeclare("orders", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("on-1", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch1.QueueBind("on-1", "k1", "orders", false, nil); err != nil {
		t.Fatal(err)
	}
	// The exchange reaches node 2 through the metadata group.
	waitFor(t, 20*time.Second, "node 2 to see exchange 'orders'", func() bool {
		ch := channel(c2)
		defer ch.Close()
		return ch.ExchangeDeclarePassive("orders", "direct", true, false, false, false, nil) == nil
	})
	if _, err := ch2.QueueDeclare("on-2", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch2.QueueBind("on-2", "k2", "orders", false, nil); err != nil {
		t.Fatal(err)
	}

	publish := func(ch *amqp.Channel, key, body string) bool {
		t.Helper()
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "orders", key, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	get := func(ch *amqp.Channel, q string) string {
		t.Helper()
		m, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatalf("get %s: %v", q, err)
		}
		if !ok {
			return ""
		}
		return string(m.Body)
	}

	// An exchange declared on node 1 routes on node 2 to node 2's queue,
	// and on node 1 to node 1's.
	pch2, pch1 := channel(c2), channel(c1)
	if !publish(pch2, "k2", "via-2") {
		t.Fatal("publish through node 2 to its own queue was nacked")
	}
	if got := get(ch2, "on-2"); got != "via-2" {
		t.Fatalf("on-2 holds %q, want via-2", got)
	}
	if !publish(pch1, "k1", "via-1") {
		t.Fatal("publish through node 1 to its own queue was nacked")
	}
	if got := get(ch1, "on-1"); got != "via-1" {
		t.Fatalf("on-1 holds %q, want via-1", got)
	}

	// Node 2 knows on-1, lives on node 1: declared through node 2 it is
	// node 1's (no second queue of its name), with node 1's counts.
	waitFor(t, 20*time.Second, "node 2 to know queue 'on-1'", func() bool {
		ch := channel(c2)
		defer ch.Close()
		_, err := ch.QueueDeclarePassive("on-1", true, false, false, false, nil)
		return err == nil
	})
	{
		if !publish(channel(c1), "k1", "counted") {
			t.Fatal("publish through node 1 nacked")
		}
		q, err := channel(c2).QueueDeclare("on-1", true, false, false, false, nil)
		if err != nil || q.Messages != 1 {
			t.Fatalf("declaring node 1's queue through node 2: %+v, %v; want it with 1 message", q, err)
		}
		_, err = channel(c2).QueueDeclare("on-1", false, false, false, false, nil)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
			t.Fatalf("an inequivalent declaration through node 2: %v, want 406", err)
		}
		// basic.get through node 2, acked there.
		gch := channel(c2)
		m, ok, err := gch.Get("on-1", false)
		if err != nil || !ok || string(m.Body) != "counted" {
			t.Fatalf("basic.get of node 1's queue through node 2: %q %v %v", m.Body, ok, err)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the ack through node 2 to settle the message on node 1", func() bool {
			q, err := ch1.QueueDeclarePassive("on-1", true, false, false, false, nil)
			return err == nil && q.Messages == 0
		})
		// Purged through node 2: node 1's queue loses its message.
		if !publish(channel(c1), "k1", "purged") {
			t.Fatal("publish through node 1 nacked")
		}
		if n, err := channel(c2).QueuePurge("on-1", false); err != nil || n != 1 {
			t.Fatalf("purging node 1's queue through node 2: %d, %v; want 1 purged", n, err)
		}
		// Not empty: an if-empty delete through node 2 is refused.
		if !publish(channel(c1), "k1", "kept") {
			t.Fatal("publish through node 1 nacked")
		}
		_, err = channel(c2).QueueDelete("on-1", false, true, false)
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
			t.Fatalf("an if-empty delete of node 1's non-empty queue through node 2: %v, want 406", err)
		}
		if n, err := channel(c2).QueuePurge("on-1", false); err != nil || n != 1 {
			t.Fatalf("purging node 1's queue through node 2: %d, %v; want 1 purged", n, err)
		}
		// Node 2's management API lists node 1's queue, on node 1.
		if !publish(channel(c1), "k1", "listed") {
			t.Fatal("publish through node 1 nacked")
		}
		self := decodeJSON[map[string]any](t, nodes[0].api(t, "GET", "/api/overview", nil, 200))["node"]
		var listed map[string]any
		for _, q := range decodeJSON[[]map[string]any](t, nodes[1].api(t, "GET", "/api/queues/%2F", nil, 200)) {
			if q["name"] == "on-1" {
				listed = q
			}
		}
		if listed == nil || listed["node"] != self || listed["messages"] != float64(1) {
			t.Fatalf("node 2's /api/queues/%%2F shows on-1 as %v; want it on %v with 1 message", listed, self)
		}
		one := decodeJSON[map[string]any](t, nodes[1].api(t, "GET", "/api/queues/%2F/on-1", nil, 200))
		if one["node"] != self || one["messages_ready"] != float64(1) {
			t.Fatalf("node 2's /api/queues/%%2F/on-1: %v", one)
		}
		if n, err := channel(c2).QueuePurge("on-1", false); err != nil || n != 1 {
			t.Fatalf("purging node 1's queue through node 2: %d, %v", n, err)
		}
	}
	// A message routed through node 2 to node 1's queue is forwarded
	// there, confirmed once durable there, and messages keep their order.
	fwd := channel(c2)
	if err := fwd.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var confirms []*amqp.DeferredConfirmation
	for i := range n {
		dc, err := fwd.PublishWithDeferredConfirm("orders", "k1", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ok, err := dc.WaitContext(ctx)
		cancel()
		if err != nil || !ok {
			t.Fatalf("message %d published through node 2 to node 1's queue: ack %v, err %v", i, ok, err)
		}
	}
	// Consumed through node 3 with a prefetch of 10 and manual acks: every
	// message, in order; one left unacked comes back redelivered.
	cch := channel(c3)
	if err := cch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := cch.Consume("on-1", "through-3", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consuming node 1's queue through node 3: %v", err)
	}
	for i := range n {
		select {
		case d := <-deliveries:
			if string(d.Body) != strconv.Itoa(i) {
				t.Fatalf("delivery %d through node 3 is %q: lost or out of order", i, d.Body)
			}
			if i == n-1 {
				break // left unacked
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("delivery %d through node 3 did not come", i)
		}
	}
	if err := cch.Close(); err != nil { // the unacked one goes back
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the unacked delivery to come back on node 1", func() bool {
		m, ok, err := ch1.Get("on-1", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok && (string(m.Body) != strconv.Itoa(n-1) || !m.Redelivered) {
			t.Fatalf("after the consumer's channel closed, node 1's queue gave %q redelivered=%v", m.Body, m.Redelivered)
		}
		return ok
	})
	if q, err := ch1.QueueDeclarePassive("on-1", true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("node 1's queue after consuming through node 3: %+v %v, want empty", q, err)
	}
	// Through node 3, to queues on both other nodes at once (amq.fanout).
	if err := ch1.QueueBind("on-1", "", "amq.fanout", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch2.QueueBind("on-2", "", "amq.fanout", false, nil); err != nil {
		t.Fatal(err)
	}
	fan3 := channel(c3)
	if err := fan3.Confirm(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "node 3 to route amq.fanout to both queues", func() bool {
		dc, err := fan3.PublishWithDeferredConfirm("amq.fanout", "", true, false, amqp.Publishing{Body: []byte("both")})
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatal("a fanout through node 3 to queues on nodes 1 and 2 was nacked")
		}
		a, b := get(ch1, "on-1"), get(ch2, "on-2")
		if a == "both" && b == "" || a == "" && b == "both" { // the other binding not seen yet by node 3
			return false
		}
		if a != "both" || b != "both" {
			t.Fatalf("fanout through node 3: on-1 got %q, on-2 got %q", a, b)
		}
		return true
	})
	if err := ch1.QueueUnbind("on-1", "", "amq.fanout", nil); err != nil {
		t.Fatal(err)
	}
	if err := ch2.QueueUnbind("on-2", "", "amq.fanout", nil); err != nil {
		t.Fatal(err)
	}

	// A queue deleted through another node is gone on its own.
	if _, err := channel(c3).QueueDelete("on-1", false, false, false); err != nil {
		t.Fatalf("deleting node 1's queue through node 3: %v", err)
	}
	waitFor(t, 20*time.Second, "node 1 to delete queue 'on-1'", func() bool {
		ch := channel(c1)
		_, err := ch.QueueDeclarePassive("on-1", true, false, false, false, nil)
		var ae *amqp.Error
		return errors.As(err, &ae) && ae.Code == amqp.NotFound
	})

	// An exchange deleted through node 3 is gone everywhere.
	waitFor(t, 20*time.Second, "node 3 to see exchange 'orders'", func() bool {
		ch := channel(c3)
		defer ch.Close()
		return ch.ExchangeDeclarePassive("orders", "direct", true, false, false, false, nil) == nil
	})
	if err := channel(c3).ExchangeDelete("orders", false, false); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*amqp.Connection{c1, c2} {
		waitFor(t, 20*time.Second, "exchange 'orders' to go from node "+string(rune('1'+i)), func() bool {
			ch := channel(c)
			err := ch.ExchangeDeclarePassive("orders", "direct", true, false, false, false, nil)
			var ae *amqp.Error
			return errors.As(err, &ae) && ae.Code == amqp.NotFound
		})
	}
	// A binding made through node 1 routes on node 2: node 2's queue
	// bound to amq.fanout through node 1.
	if err := channel(c1).QueueBind("on-2", "", "amq.fanout", false, nil); err != nil {
		t.Fatal(err)
	}
	fch := channel(c2)
	if err := fch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the binding made through node 1 to route on node 2", func() bool {
		if err := fch.Publish("amq.fanout", "", false, false, amqp.Publishing{Body: []byte("fan")}); err != nil {
			t.Fatal(err)
		}
		return get(ch2, "on-2") == "fan"
	})

	// A policy set through node 1 applies to node 2's queue.
	nodes[0].api(t, "PUT", "/api/policies/%2F/one-deep", map[string]any{"pattern": "^on-2$", "apply-to": "queues", "definition": map[string]any{"max-length": 1}}, 201)
	waitFor(t, 20*time.Second, "the policy set through node 1 to cap node 2's queue", func() bool {
		for _, body := range []string{"a", "b"} { // each confirmed before the count
			dc, err := fch.PublishWithDeferredConfirm("amq.fanout", "", false, false, amqp.Publishing{Body: []byte(body)})
			if err != nil {
				t.Fatal(err)
			}
			dc.Wait()
		}
		q, err := ch2.QueueDeclarePassive("on-2", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch2.QueuePurge("on-2", false); err != nil {
			t.Fatal(err)
		}
		return q.Messages == 1
	})

	// A vhost made through node 1's management API is usable through
	// node 3.
	nodes[0].api(t, "PUT", "/api/vhosts/shop", nil, 201)
	nodes[0].api(t, "PUT", "/api/permissions/shop/guest", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	waitFor(t, 20*time.Second, "node 3 to accept connections to vhost 'shop'", func() bool {
		c, err := amqp.Dial(strings.TrimSuffix(nodes[2].amqpURL(), "/") + "/shop")
		if err != nil {
			return false
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return false
		}
		_, err = ch.QueueDeclare("in-shop", false, false, true, false, nil)
		return err == nil
	})
	// Deleted through node 2's management API, it is gone through node 3.
	nodes[1].api(t, "DELETE", "/api/vhosts/shop", nil, 204)
	waitFor(t, 20*time.Second, "node 3 to refuse vhost 'shop'", func() bool {
		c, err := amqp.Dial(strings.TrimSuffix(nodes[2].amqpURL(), "/") + "/shop")
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	// With node 2 down, a message routed through node 3 to node 2's queue
	// is refused (basic.nack), not lost.
	sch := channel(c3)
	if err := sch.QueueBind("on-2", "k9", "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
	wch := channel(c3)
	cancels := wch.NotifyCancel(make(chan string, 1))
	if _, err := wch.Consume("on-2", "watching", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	nodes[1].Kill()
	select {
	case tag := <-cancels:
		if tag != "watching" {
			t.Fatalf("cancelled consumer %q", tag)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a consumer through node 3 of a queue on a dead node was not cancelled")
	}
	waitFor(t, 30*time.Second, "node 3 to refuse a message for a queue on a dead node", func() bool {
		if err := sch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		dc, err := sch.PublishWithDeferredConfirm("amq.direct", "k9", false, false, amqp.Publishing{Body: []byte("to-dead")})
		if err != nil {
			t.Fatal(err)
		}
		return !dc.Wait()
	})
}

// TestClusterPika: pika (Debian's python3-pika) uses a queue living on one
// node through the two others: publishes with confirms through one,
// consumes and gets through the other.
func TestClusterPika(t *testing.T) {
	needPythonModule(t, "pika")
	nodes := startCluster(t, 3)
	script, err := filepath.Abs(filepath.Join("python", "pika_cluster.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 90*time.Second, "", python3Path, script, nodes[0].AMQP, nodes[1].AMQP, nodes[2].AMQP).must(t, nodes[0], "pika against the cluster")
	t.Logf("%s", r.Stdout)
}

// TestClusterForwardedConfirmsSurviveKill9: a publisher in confirm mode on
// node 2 publishes to a queue living on node 1, which is killed with
// SIGKILL while messages are in flight and then restarted: every message
// node 2 confirmed is in the queue afterwards, in order, once; the ones in
// flight at the kill are nacked, not left waiting.
func TestClusterForwardedConfirmsSurviveKill9(t *testing.T) {
	nodes := startCluster(t, 3)
	c1 := nodes[0].dial(t)
	ch1, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("safe", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	c2 := nodes[1].dial(t)
	waitForQueue(t, c2, "safe")
	pub, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	type sent struct {
		id int
		dc *amqp.DeferredConfirmation
	}
	inflight := make(chan sent, 256) // the confirm window
	var confirmed []int
	var nConfirmed atomic.Int64
	nacked := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range inflight {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			ok, err := s.dc.WaitContext(ctx)
			cancel()
			switch {
			case err != nil:
				t.Errorf("confirm of message %d: %v", s.id, err)
			case ok:
				confirmed = append(confirmed, s.id)
				nConfirmed.Add(1)
			default:
				nacked++
			}
		}
	}()
	killed := make(chan struct{})
	go func() {
		// Kill node 1 once a few hundred messages are confirmed; the
		// publisher keeps a window of more in flight. (Counting what has
		// reached node 1's queue was not enough: on a loaded machine the
		// confirms, which wait for node 1's fsync and come back through
		// node 2, trailed by a few hundred, and the test found too few
		// confirmed to say anything.)
		waitFor(t, 60*time.Second, "300 messages confirmed through node 2", func() bool {
			return nConfirmed.Load() >= 300
		})
		nodes[0].Kill()
		close(killed)
	}()
	for id := 0; ; id++ {
		select {
		case <-killed:
		default:
			dc, err := pub.PublishWithDeferredConfirm("", "safe", false, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(id))})
			if err != nil {
				t.Fatal(err)
			}
			inflight <- sent{id, dc}
			continue
		}
		break
	}
	// A few more after the kill: refused, not confirmed.
	for id := -1; id >= -20; id-- {
		dc, err := pub.PublishWithDeferredConfirm("", "safe", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(id))})
		if err != nil {
			t.Fatal(err)
		}
		inflight <- sent{id, dc}
	}
	close(inflight)
	<-done
	if len(confirmed) < 100 {
		t.Fatalf("only %d messages confirmed", len(confirmed))
	}
	for _, id := range confirmed {
		if id < 0 {
			t.Fatalf("message %d, published after node 1 was killed, was confirmed", id)
		}
	}
	t.Logf("%d confirmed, %d nacked around the kill", len(confirmed), nacked)

	nodes[0].Restart()
	c1 = nodes[0].dial(t)
	ch1, err = c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for {
		m, ok, err := ch1.Get("safe", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		id, err := strconv.Atoi(string(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	// Every confirmed message, once, in order; unconfirmed ones may be
	// there too (durable before the kill, answer lost).
	seen := map[int]int{}
	for i, id := range got {
		seen[id]++
		if i > 0 && id <= got[i-1] {
			t.Fatalf("queue order broken after the kill: %d after %d", id, got[i-1])
		}
	}
	for _, id := range confirmed {
		if seen[id] != 1 {
			t.Fatalf("confirmed message %d is in the queue %d times after kill -9 and restart (%d messages there)", id, seen[id], len(got))
		}
	}
	t.Logf("after the restart the queue holds %d messages, every confirmed one among them", len(got))
}

// TestClusterConsumerRidesOutItsNodeLoss: a consumer connected to node 2
// of a queue living on node 1 loses node 2 (kill -9) in the middle of the
// queue; it reconnects to node 3, as an application's reconnect loop does,
// and receives every message published (confirmed) before: node 1 puts
// back what it had sent through node 2 and was not acked.
func TestClusterConsumerRidesOutItsNodeLoss(t *testing.T) {
	nodes := startCluster(t, 3)
	ch1, err := nodes[0].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("work", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	c3 := nodes[2].dial(t)
	waitForQueue(t, c3, "work")
	pub, err := c3.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 500
	var dcs []*amqp.DeferredConfirmation
	for i := range n {
		dc, err := pub.PublishWithDeferredConfirm("", "work", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for i, dc := range dcs {
		if !dc.Wait() {
			t.Fatalf("message %d published through node 3 was nacked", i)
		}
	}

	seen := map[string]int{}
	// consume takes deliveries through b until upTo distinct messages are
	// in, then calls atEnd with the connection still open.
	consume := func(b *broker, upTo int, atEnd func()) {
		c, err := amqp.Dial(b.amqpURL())
		if err != nil {
			t.Fatalf("dial node %s: %v", b.AMQP, err)
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Qos(20, 0, false); err != nil {
			t.Fatal(err)
		}
		ds, err := ch.Consume("work", "", false, false, false, false, nil)
		if err != nil {
			t.Fatalf("consume through %s: %v", b.AMQP, err)
		}
		for len(seen) < upTo {
			select {
			case d := <-ds:
				seen[string(d.Body)]++
				if len(seen) < upTo {
					d.Ack(false)
				} // the last one stays unacked, with what else is in flight
			case <-time.After(30 * time.Second):
				t.Fatalf("no delivery through %s for 30 s; %d of %d seen", b.AMQP, len(seen), n)
			}
		}
		atEnd()
	}
	// Through node 2 until 200 are in; then node 2 dies under the
	// consumer, its channel open with deliveries unacked.
	consume(nodes[1], 200, nodes[1].Kill)
	// The application reconnects to another node and carries on.
	consume(nodes[2], n, func() {})
	for i := range n {
		if seen[strconv.Itoa(i)] == 0 {
			t.Fatalf("message %d, confirmed, was never delivered", i)
		}
	}
	again := 0
	for _, k := range seen {
		again += k - 1
	}
	t.Logf("all %d confirmed messages delivered across the loss of the consumer's node; %d redelivered", n, again)
}

// waitForQueue waits until queue name, declared through another node, can
// be declared passively through c (the metadata group has carried it).
func waitForQueue(t *testing.T, c *amqp.Connection, name string) {
	t.Helper()
	waitFor(t, 20*time.Second, "queue '"+name+"' to be known through "+c.RemoteAddr().String(), func() bool {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
		return err == nil
	})
}
