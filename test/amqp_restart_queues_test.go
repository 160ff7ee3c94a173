package test

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestRestartKeepsEveryQueueState: a broker with many durable queues in
// different states (empty, with messages, some acked, some unacked when it
// stops, a priority queue, a length-limited one, one whose messages expire
// into a dead-letter queue, a stream, one with x-expires, an exclusive and
// a transient one) restarts; amqp091-go and the management API then see
// what they saw before: the same queues and counts, the unacked messages
// back and flagged redelivered, priorities in order, the length limit
// kept, the expired messages dead-lettered although nothing touched their
// queue after the restart, exclusive and transient queues gone. (Durable
// queues open on first use after a start, the rest in the background.)
func TestRestartKeepsEveryQueueState(t *testing.T) {
	const plain = 200
	b := startBroker(t)
	conn := b.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	declare := func(name string, durable, exclusive bool, args amqp.Table) {
		t.Helper()
		if _, err := ch.QueueDeclare(name, durable, false, exclusive, false, args); err != nil {
			t.Fatalf("declare %s: %v", name, err)
		}
	}
	publish := func(queue, body string, prio uint8) {
		t.Helper()
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Priority: prio, Body: []byte(body),
		})
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatalf("publish to %s nacked", queue)
		}
	}

	// plain-i holds i%4 messages; in every third the first is acked, in
	// every fifth one is taken and left unacked when the broker stops.
	held := conn // its unacked messages stay unacked until the stop
	hch, err := held.Channel()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	unackedAtStop := map[string]bool{}
	for i := 0; i < plain; i++ {
		q := "plain-" + strconv.Itoa(i)
		declare(q, true, false, nil)
		n := i % 4
		for k := 0; k < n; k++ {
			publish(q, fmt.Sprintf("%s/%d", q, k), 0)
		}
		if i%3 == 0 && n > 0 {
			m, ok, err := ch.Get(q, false)
			if err != nil || !ok {
				t.Fatalf("get %s: %v %v", q, ok, err)
			}
			m.Ack(false)
			n--
		}
		if i%5 == 0 && n > 0 {
			if _, ok, err := hch.Get(q, false); err != nil || !ok {
				t.Fatalf("get %s: %v %v", q, ok, err)
			}
			unackedAtStop[q] = true
		}
		want[q] = n
	}
	declare("prio", true, false, amqp.Table{"x-max-priority": int32(5)})
	for _, p := range []uint8{1, 5, 3} {
		publish("prio", "p"+strconv.Itoa(int(p)), p)
	}
	declare("maxlen", true, false, amqp.Table{"x-max-length": int32(2)})
	publish("maxlen", "a", 0)
	publish("maxlen", "b", 0)
	declare("dlx-target", true, false, nil)
	declare("ttl", true, false, amqp.Table{
		"x-message-ttl": int32(300), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlx-target",
	})
	declare("expiring", true, false, amqp.Table{"x-expires": int32(600_000)})
	publish("expiring", "e", 0)
	declare("stream", true, false, amqp.Table{"x-queue-type": "stream"})
	for k := 0; k < 3; k++ {
		publish("stream", "s"+strconv.Itoa(k), 0)
	}
	declare("exclusive", true, true, nil)
	declare("transient", false, false, nil)
	// The TTL queue's messages go last: they may expire before the stop or
	// while the broker is down; either way they are dead-lettered.
	publish("ttl", "t1", 0)
	publish("ttl", "t2", 0)
	b.Stop()
	b.Restart()

	// Nothing has touched "ttl" since the restart: its expired messages
	// reach the dead-letter queue by themselves, at least once (a copy
	// made while the broker stopped is made again after the restart, as
	// after a crash: the original is settled only once the broker knows
	// its copy is stored).
	waitFor(t, 30*time.Second, "the expired messages in dlx-target", func() bool {
		n, _ := b.queueJSON(t, "dlx-target")["messages"].(float64)
		return n >= 2
	})
	// The originals are settled once their copies are durable.
	waitFor(t, 10*time.Second, "ttl to be empty", func() bool {
		return b.queueJSON(t, "ttl")["messages"] == float64(0)
	})

	// The management API lists every durable queue with its counts.
	type queueInfo struct {
		Name     string `json:"name"`
		Messages int    `json:"messages"`
		Ready    int    `json:"messages_ready"`
		Unacked  int    `json:"messages_unacknowledged"`
	}
	list := decodeJSON[[]queueInfo](t, b.api(t, "GET", "/api/queues/%2F", nil, 200))
	got := map[string]queueInfo{}
	for _, q := range list {
		got[q.Name] = q
	}
	for q, n := range want {
		if g, ok := got[q]; !ok || g.Messages != n || g.Ready != n || g.Unacked != 0 {
			t.Errorf("%s after the restart: %+v (listed %v), want %d ready", q, g, ok, n)
		}
	}
	for q, n := range map[string]int{"prio": 3, "maxlen": 2, "ttl": 0, "expiring": 1} {
		if g, ok := got[q]; !ok || g.Messages != n {
			t.Errorf("%s after the restart: %+v (listed %v), want %d messages", q, g, ok, n)
		}
	}
	if _, ok := got["stream"]; !ok {
		t.Error("the stream is not listed after the restart")
	}
	for _, q := range []string{"exclusive", "transient"} {
		if _, ok := got[q]; ok {
			t.Errorf("%s survived the restart", q)
		}
		if code, _ := b.httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/"+url.PathEscape(q), nil); code != 404 {
			t.Errorf("GET %s after the restart: %d, want 404", q, code)
		}
	}
	if len(got) != plain+6 {
		t.Errorf("%d queues listed after the restart, want %d", len(got), plain+6)
	}

	// basic.get: the unacked come back first, flagged redelivered.
	ch2 := b.channel(t)
	for i := 0; i < plain; i++ {
		q := "plain-" + strconv.Itoa(i)
		var n int
		for {
			m, ok, err := ch2.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if n == 0 && m.Redelivered != unackedAtStop[q] {
				t.Errorf("%s: first message %q redelivered %v, want %v", q, m.Body, m.Redelivered, unackedAtStop[q])
			}
			n++
		}
		if n != want[q] {
			t.Errorf("%s: got %d messages after the restart, want %d", q, n, want[q])
		}
	}
	if got := bodies(t, ch2, "prio"); fmt.Sprint(got) != "[p5 p3 p1]" {
		t.Errorf("priority queue after the restart: %v, want [p5 p3 p1]", got)
	}
	// The length limit holds after the restart: c pushes a out.
	ch3 := b.channel(t)
	if err := ch3.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch3.PublishWithDeferredConfirm("", "maxlen", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	if !dc.Wait() {
		t.Fatal("publish to maxlen nacked")
	}
	if got := bodies(t, ch2, "maxlen"); fmt.Sprint(got) != "[b c]" {
		t.Errorf("x-max-length 2 after the restart: %v, want [b c]", got)
	}
	dead := map[string]int{}
	for _, body := range bodies(t, ch2, "dlx-target") {
		dead[body]++
	}
	if len(dead) != 2 || dead["t1"] == 0 || dead["t2"] == 0 {
		t.Errorf("dead-lettered after the restart: %v, want t1 and t2", dead)
	}
}
