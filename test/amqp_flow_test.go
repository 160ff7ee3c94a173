package test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Credit flow (docs/amqp-compatibility.md, "Flow control"): fast
// publishers feeding a queue whose consumer lags are held back (their
// connections show state "flow", as in RabbitMQ), so the queue's backlog
// stays bounded; nothing confirmed is lost or delivered twice; and a
// publisher to another queue is never held.
//
// The bound is 64 ready messages here, so that a consumer taking a
// thousand or two a second (half a bound in well under 100 ms: fast enough
// to be waited for) still lags three publishers, also under the race
// detector.
func TestAMQPCreditFlowHoldsPublishersOfALaggingQueue(t *testing.T) {
	b := startBroker(t, "--queue-flow-backlog", "64")
	const (
		publishers = 3
		perPub     = 8000
		total      = publishers * perPub
		// The bound is reached in a moment, and the publishers' windows
		// of 512 unconfirmed come on top; the publishers, at up to
		// 100,000 a second here, run on while the consumer takes its
		// first half bound. Without credit flow the backlog here
		// reaches most of total.
		maxBacklog = 3 * 2048
	)
	setup := b.channel(t)
	for _, q := range []string{"flow-slow", "flow-other"} {
		if _, err := setup.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}

	// A consumer that takes its time over each message.
	cons := consumeLagging(t, b.channel(t), "flow-slow", 20, total, func() time.Duration { return 100 * time.Microsecond })

	// publish sends n messages with ids from base on a connection of
	// its own named name, in confirm mode with up to 512 in flight, and
	// returns the number confirmed (acked).
	publish := func(name, queue string, base uint64, n int) (int, error) {
		conn, err := amqp.DialConfig(b.amqpURL(), amqp.Config{Properties: amqp.Table{"connection_name": name}})
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return 0, err
		}
		if err := ch.Confirm(false); err != nil {
			return 0, err
		}
		window := make(chan *amqp.DeferredConfirmation, 512)
		acked := 0
		var perr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			for dc := range window {
				ok, err := dc.WaitContext(context.Background())
				if err != nil && perr == nil {
					perr = err
				}
				if ok {
					acked++
				}
			}
		}()
		body := make([]byte, 256)
		for i := 0; i < n; i++ {
			binary.BigEndian.PutUint64(body, base+uint64(i))
			dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", queue, false, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
			if err != nil {
				close(window)
				<-done
				return acked, err
			}
			window <- dc
		}
		close(window)
		<-done
		return acked, perr
	}

	// Watch the management API: connection states and the backlog.
	type connJSON struct {
		State      string         `json:"state"`
		ClientProp map[string]any `json:"client_properties"`
	}
	var (
		flowSeen   = map[string]bool{}
		maxReady   int
		stopWatch  = make(chan struct{})
		watchDone  = make(chan struct{})
		watchMu    sync.Mutex
		watchError error
	)
	// The watcher runs until the test ends; it must not call t's fatal
	// methods, so it reports errors through watchError.
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			default:
			}
			var conns []connJSON
			var q struct {
				Ready int `json:"messages_ready"`
			}
			err := getJSON(b, "/api/connections", &conns)
			if err == nil {
				err = getJSON(b, "/api/queues/%2F/flow-slow", &q)
			}
			watchMu.Lock()
			if err != nil {
				watchError = err
				watchMu.Unlock()
				return
			}
			for _, c := range conns {
				if name, _ := c.ClientProp["connection_name"].(string); name != "" && c.State == "flow" {
					flowSeen[name] = true
				}
			}
			maxReady = max(maxReady, q.Ready)
			watchMu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(stopWatch)
			<-watchDone
		}
	}
	t.Cleanup(stop)

	var wg sync.WaitGroup
	results := make([]int, publishers)
	errs := make([]error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[p], errs[p] = publish(fmt.Sprintf("fast-%d", p), "flow-slow", uint64(p*perPub), perPub)
		}()
	}
	// The queue must go into flow before the other publisher starts, so
	// that it publishes while the slow queue's publishers are held.
	waitFor(t, 60*time.Second, "a publisher of the lagging queue in state flow", func() bool {
		watchMu.Lock()
		defer watchMu.Unlock()
		return len(flowSeen) > 0 || watchError != nil
	})
	otherAcked, otherErr := publish("other", "flow-other", 1<<40, 2000)
	wg.Wait()
	cons.wait(t)
	stop()

	if watchError != nil {
		t.Fatal(watchError)
	}
	for p := range publishers {
		if errs[p] != nil || results[p] != perPub {
			t.Errorf("publisher %d: %d of %d confirmed, err %v", p, results[p], perPub, errs[p])
		}
	}
	if otherErr != nil || otherAcked != 2000 {
		t.Errorf("publisher to the other queue: %d of 2000 confirmed, err %v", otherAcked, otherErr)
	}
	if flowSeen["other"] {
		t.Error("the publisher to the other queue was held in flow")
	}
	if maxReady > maxBacklog {
		t.Errorf("backlog of the lagging queue reached %d ready messages, want at most %d", maxReady, maxBacklog)
	}
	// Every confirmed message delivered exactly once (publisher p's
	// ids are p*perPub onwards).
	cons.eachOnce(t)
	// The other queue holds all its messages.
	q := decodeJSON[struct {
		Messages int `json:"messages"`
	}](t, b.api(t, "GET", "/api/queues/%2F/flow-other", nil, 200))
	if q.Messages != 2000 {
		t.Errorf("flow-other holds %d messages, want 2000", q.Messages)
	}
	t.Logf("max backlog %d; connections seen in flow: %v", maxReady, flowSeen)
}

// getJSON decodes the guest's GET of path on b's management API into v.
func getJSON(b *broker, path string, v any) error {
	req, err := http.NewRequest("GET", "http://"+b.HTTP+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// A connection that publishes to a queue in flow and consumes from it on
// another channel, acking on the same connection, is slowed, never
// deadlocked: while its reads are held its acks are not read either, and
// the wait ends after a moment whatever the queue does.
func TestAMQPCreditFlowPublisherThatAlsoConsumes(t *testing.T) {
	b := startBroker(t, "--queue-flow-backlog", "64") // a bound its consumer is fast for
	const total = 6000
	conn, err := amqp.DialConfig(b.amqpURL(), amqp.Config{Properties: amqp.Table{"connection_name": "both"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.QueueDeclare("flow-self", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cons, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	lagging := consumeLagging(t, cons, "flow-self", 50, total, func() time.Duration { return 50 * time.Microsecond })
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := pub.NotifyPublish(make(chan amqp.Confirmation, total))
	publishNumbered(t, pub, "flow-self", total, nil)
	awaitConfirms(t, confirms, total)
	lagging.wait(t)
	lagging.eachOnce(t)
	// The situation the test is about arose: the connection was held.
	var flowWaits float64
	waitFor(t, 10*time.Second, "the flow wait counted on /metrics", func() bool {
		flowWaits, _ = b.scrape(t).value("sluice_amqp_flow_waits_total")
		return flowWaits > 0
	})
	t.Logf("flow waits: %v", flowWaits)
}

// A queue of big messages is held to a backlog in bytes (1 MiB ready
// here), far below its count bound of 2048 messages: 64 KiB messages from
// three publishers to a consumer that lags (about 12 MiB/s, fast for a
// 1 MiB bound) stay at a couple of hundred ready at most, and every
// confirmed message is delivered once.
func TestAMQPCreditFlowBoundsTheBytesOfBigMessages(t *testing.T) {
	b := startBroker(t, "--queue-flow-backlog-bytes", "1048576")
	const (
		publishers = 3
		perPub     = 256
		total      = publishers * perPub
		size       = 64 << 10
		// 1 MiB is 16 messages; the publishers' windows (32 each) come
		// on top. Without the byte bound the backlog reaches most of
		// total.
		maxBacklog = 200
	)
	setup := b.channel(t)
	if _, err := setup.QueueDeclare("flow-big", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cons := consumeLagging(t, b.channel(t), "flow-big", 4, total, func() time.Duration { return 5 * time.Millisecond })

	var (
		maxReady  atomic.Int64
		stopWatch = make(chan struct{})
		watchDone = make(chan struct{})
	)
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var q struct {
				Ready int64 `json:"messages_ready"`
			}
			if getJSON(b, "/api/queues/%2F/flow-big", &q) == nil && q.Ready > maxReady.Load() {
				maxReady.Store(q.Ready)
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make([]error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = func() error {
				conn, err := amqp.Dial(b.amqpURL())
				if err != nil {
					return err
				}
				defer conn.Close()
				ch, err := conn.Channel()
				if err != nil {
					return err
				}
				if err := ch.Confirm(false); err != nil {
					return err
				}
				window := make(chan *amqp.DeferredConfirmation, 32)
				werr := make(chan error, 1)
				go func() {
					var first error
					for dc := range window {
						if ok, err := dc.WaitContext(context.Background()); !ok && first == nil {
							first = fmt.Errorf("message nacked or lost: %v", err)
						}
					}
					werr <- first
				}()
				body := make([]byte, size)
				for i := range perPub {
					binary.BigEndian.PutUint64(body, uint64(p*perPub+i))
					dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "flow-big", false, false,
						amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
					if err != nil {
						close(window)
						<-werr
						return err
					}
					window <- dc
				}
				close(window)
				return <-werr
			}()
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Errorf("publisher %d: %v", p, err)
		}
	}
	cons.wait(t)
	close(stopWatch)
	<-watchDone
	cons.eachOnce(t)
	if m := maxReady.Load(); m > maxBacklog || m == 0 {
		t.Errorf("backlog of 64 KiB messages reached %d ready, want between 1 and %d", m, maxBacklog)
	}
	t.Logf("max backlog %d messages of 64 KiB", maxReady.Load())
}

// A burst against a slow consumer is absorbed, not held: the consumer,
// busy with earlier messages when the burst comes, takes about 200
// messages a second, far less than half the default bound (1024) in
// 100 ms, so its queue lets the backlog grow past the bound and its
// publisher is never held (no flow wait, never in state flow), as
// RabbitMQ's queues absorb what slow consumers have not taken yet. Every
// confirmed message is delivered once, after the burst.
func TestAMQPCreditFlowLeavesASlowConsumerABacklog(t *testing.T) {
	b := startBroker(t)
	const (
		before = 300 // keep the consumer busy at its pace
		total  = before + 6000
	)
	setup := b.channel(t)
	if _, err := setup.QueueDeclare("flow-absorb", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var slow atomic.Bool
	slow.Store(true)
	cons := consumeLagging(t, b.channel(t), "flow-absorb", 10, total, func() time.Duration {
		if slow.Load() {
			return 5 * time.Millisecond
		}
		return 0
	})

	conn, err := amqp.DialConfig(b.amqpURL(), amqp.Config{Properties: amqp.Table{"connection_name": "burst"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, total))
	var flowSeen atomic.Bool
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var conns []struct {
				State string `json:"state"`
			}
			if getJSON(b, "/api/connections", &conns) == nil {
				for _, c := range conns {
					if c.State == "flow" {
						flowSeen.Store(true)
					}
				}
			}
		}
	}()
	publishNumbered(t, ch, "flow-absorb", total, func(i int) {
		if i == before {
			waitFor(t, 30*time.Second, "the consumer busy at its pace", func() bool { return cons.received.Load() >= 20 })
		}
	})
	awaitConfirms(t, confirms, total)
	close(stopWatch)
	<-watchDone
	// The burst is in the queue, past the bound, before the consumer
	// has worked it off.
	var q struct {
		Ready int `json:"messages_ready"`
	}
	if err := getJSON(b, "/api/queues/%2F/flow-absorb", &q); err != nil {
		t.Fatal(err)
	}
	if q.Ready <= 2048 {
		t.Errorf("%d ready once the burst was confirmed, want more than the bound of 2048: the burst was absorbed", q.Ready)
	}
	if flowSeen.Load() {
		t.Error("the publisher to a slow consumer's queue was seen in state flow")
	}
	if waits, _ := b.scrape(t).value("sluice_amqp_flow_waits_total"); waits != 0 {
		t.Errorf("sluice_amqp_flow_waits_total = %v, want 0", waits)
	}
	slow.Store(false) // work the backlog off
	cons.wait(t)
	cons.eachOnce(t)
}

// publishNumbered publishes total persistent messages of 512 bytes to
// queue through ch, message i carrying i in its first 8 bytes; at, if set,
// runs before each.
func publishNumbered(t *testing.T, ch *amqp.Channel, queue string, total int, at func(i int)) {
	t.Helper()
	body := make([]byte, 512)
	for i := range total {
		if at != nil {
			at(i)
		}
		binary.BigEndian.PutUint64(body, uint64(i))
		if err := ch.PublishWithContext(context.Background(), "", queue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
}

// awaitConfirms waits for n confirms, each an ack.
func awaitConfirms(t *testing.T, confirms <-chan amqp.Confirmation, n int) {
	t.Helper()
	for i := range n {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish %d nacked", c.DeliveryTag)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of %d confirmed", i, n)
		}
	}
}

// laggingConsumer takes the messages of a queue, each after a lag, acking
// each, and counts them by the id in their first 8 bytes.
type laggingConsumer struct {
	total                 int
	mu                    sync.Mutex
	seen                  map[uint64]int
	received, redelivered atomic.Int64
	done                  chan struct{}
}

// consumeLagging consumes queue on ch with prefetch until total messages
// are received, sleeping lag() (if not 0) before each ack.
func consumeLagging(t *testing.T, ch *amqp.Channel, queue string, prefetch, total int, lag func() time.Duration) *laggingConsumer {
	t.Helper()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		t.Fatal(err)
	}
	dels, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &laggingConsumer{total: total, seen: make(map[uint64]int, total), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for d := range dels {
			c.mu.Lock()
			c.seen[binary.BigEndian.Uint64(d.Body)]++
			c.mu.Unlock()
			if d.Redelivered {
				c.redelivered.Add(1)
			}
			if l := lag(); l > 0 {
				time.Sleep(l)
			}
			if d.Ack(false) != nil {
				return
			}
			if c.received.Add(1) == int64(total) {
				return
			}
		}
	}()
	return c
}

// wait waits until the consumer has received every message.
func (c *laggingConsumer) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(120 * time.Second):
		t.Fatalf("the consumer received %d of %d", c.received.Load(), c.total)
	}
}

// eachOnce checks that ids 0 to total-1 were each delivered once and
// nothing else, none redelivered.
func (c *laggingConsumer) eachOnce(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range uint64(c.total) {
		if n := c.seen[id]; n != 1 {
			t.Fatalf("message %d delivered %d times", id, n)
		}
	}
	if len(c.seen) != c.total || c.redelivered.Load() != 0 {
		t.Errorf("%d distinct messages delivered (want %d), %d redelivered", len(c.seen), c.total, c.redelivered.Load())
	}
}
