package test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message rates in the management API, as monitoring scripts read them:
// a load generator publishes at a known pace with confirms and a consumer
// acks everything; /api/overview, /api/queues and rabbitmqadmin report
// the rates the generator drives.

// rateGen publishes to queue at perSecond (paced from its start, so it
// catches up after a stall) on a confirm-mode channel until ctx ends, and
// consumes with manual acks.
type rateGen struct {
	published, confirmed, acked atomic.Int64
	start                       time.Time
}

func runRateGen(t *testing.T, b *broker, ctx context.Context, queue string, perSecond int) (*rateGen, *sync.WaitGroup) {
	t.Helper()
	g := &rateGen{}
	pub := b.channel(t)
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := pub.NotifyPublish(make(chan amqp.Confirmation, 1024))
	sub := b.channel(t)
	deliveries, err := sub.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for c := range confirms {
			if c.Ack {
				g.confirmed.Add(1)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				d.Ack(false)
				g.acked.Add(1)
			case <-ctx.Done():
				return
			}
		}
	}()
	g.start = time.Now()
	go func() {
		defer wg.Done()
		defer pub.Close()
		every := time.Second / time.Duration(perSecond)
		for i := 0; ; i++ {
			if d := time.Until(g.start.Add(time.Duration(i) * every)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			if err := pub.Publish("", queue, false, false, amqp.Publishing{Body: []byte("tick " + strconv.Itoa(i))}); err != nil {
				return
			}
			g.published.Add(1)
		}
	}()
	return g, &wg
}

// ratePath reads a number at a dotted path in a decoded JSON object.
func ratePath(m map[string]any, path string) float64 {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := cur.(map[string]any)
		if !ok {
			return math.NaN()
		}
		cur = o[k]
	}
	f, ok := cur.(float64)
	if !ok {
		return math.NaN()
	}
	return f
}

func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

func TestMgmtMessageRates(t *testing.T) {
	requireRabbitmqadmin(t)
	b := startBroker(t)
	b.api(t, "PUT", "/api/queues/%2F/metered", map[string]any{"durable": true}, 201)
	const rate = 200
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	g, wg := runRateGen(t, b, ctx, "metered", rate)

	// The sampler takes a sample every 5 s: once two samples fall inside
	// the load (at most 10 s in), the rates are the generator's. Each
	// rate is compared with what the generator achieved, within 20%.
	fields := []string{"publish", "confirm", "deliver", "deliver_get", "ack"}
	var last string
	waitFor(t, 20*time.Second, "overview and queue rates within 20% of the generator's", func() bool {
		achieved := float64(g.published.Load()) / time.Since(g.start).Seconds()
		ov := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/overview", nil, 200))
		q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/metered", nil, 200))
		ok := within(achieved, rate, 0.2)
		last = fmt.Sprintf("generator %.0f/s;", achieved)
		for _, f := range fields {
			r := ratePath(ov, "message_stats."+f+"_details.rate")
			last += fmt.Sprintf(" overview %s %.1f", f, r)
			ok = ok && within(r, achieved, 0.2)
		}
		for _, f := range []string{"publish", "deliver", "deliver_get", "ack"} {
			r := ratePath(q, "message_stats."+f+"_details.rate")
			last += fmt.Sprintf(" queue %s %.1f", f, r)
			ok = ok && within(r, achieved, 0.2)
		}
		return ok
	})
	t.Log(last)

	// rabbitmqadmin, as a runbook lists queues with their rates.
	out := rabbitmqadmin(t, b, "-f", "tsv", "list", "queues", "name", "messages", "message_stats.publish_details.rate")
	found := false
	for _, line := range splitLines(out) {
		f := strings.Split(line, "\t")
		if len(f) == 3 && f[0] == "metered" {
			found = true
			if r, err := strconv.ParseFloat(f[2], 64); err != nil || !within(r, rate, 0.2) {
				t.Errorf("rabbitmqadmin publish rate %q, want about %d", f[2], rate)
			}
		}
	}
	if !found {
		t.Errorf("rabbitmqadmin list queues: no metered row in\n%s", out)
	}

	// The other objects carry message_stats too.
	var chanPublish, chanAck float64
	for _, ch := range decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/channels", nil, 200)) {
		chanPublish += ratePath(ch, "message_stats.publish_details.rate")
		chanAck += ratePath(ch, "message_stats.ack_details.rate")
	}
	if !within(chanPublish, rate, 0.2) || !within(chanAck, rate, 0.2) {
		t.Errorf("channels: publish rate %.1f ack rate %.1f, want about %d", chanPublish, chanAck, rate)
	}
	var connPublish float64
	for _, c := range decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/connections", nil, 200)) {
		connPublish += ratePath(c, "message_stats.publish_details.rate")
	}
	if !within(connPublish, rate, 0.2) {
		t.Errorf("connections: publish rate %.1f, want about %d", connPublish, rate)
	}
	vh := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/vhosts/%2F", nil, 200))
	if r := ratePath(vh, "message_stats.deliver_get_details.rate"); !within(r, rate, 0.2) {
		t.Errorf("vhost: deliver_get rate %.1f, want about %d", r, rate)
	}
	x := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/exchanges/%2F/amq.default", nil, 200))
	if in, out := ratePath(x, "message_stats.publish_in_details.rate"), ratePath(x, "message_stats.publish_out_details.rate"); !within(in, rate, 0.2) || !within(out, rate, 0.2) {
		t.Errorf("default exchange: publish_in rate %.1f publish_out %.1f, want about %d", in, out, rate)
	}

	// A window asks for samples: the last 30 s at 5 s, newest first (as
	// many as the broker has taken since it started, every 5 s).
	var ov, det map[string]any
	var samples []any
	waitFor(t, 20*time.Second, "3 samples in a 30 s window", func() bool {
		ov = decodeJSON[map[string]any](t, b.api(t, "GET", "/api/overview?msg_rates_age=30&msg_rates_incr=5&lengths_age=30&lengths_incr=5", nil, 200))
		det, _ = ov["message_stats"].(map[string]any)["publish_details"].(map[string]any)
		samples, _ = det["samples"].([]any)
		return len(samples) >= 3
	})
	s0, s1 := samples[0].(map[string]any), samples[1].(map[string]any)
	if s0["timestamp"].(float64)-s1["timestamp"].(float64) != 5000 || s0["sample"].(float64) < s1["sample"].(float64) {
		t.Errorf("samples not newest first at 5 s: %v", samples)
	}
	if r := ratePath(det, "avg_rate"); !(r > 0) {
		t.Errorf("avg_rate %v", r)
	}
	if _, ok := ov["queue_totals"].(map[string]any)["messages_details"].(map[string]any)["samples"]; !ok {
		t.Errorf("queue_totals.messages_details without samples: %v", ov["queue_totals"])
	}
	b.api(t, "GET", "/api/overview?msg_rates_age=30", nil, 400)

	cancel()
	wg.Wait()
	// Totals agree with what the clients counted.
	waitFor(t, 10*time.Second, "totals equal to the clients' counts", func() bool {
		q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/metered", nil, 200))
		ov := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/overview", nil, 200))
		pub := float64(g.published.Load())
		return ratePath(q, "message_stats.publish") == pub && ratePath(ov, "message_stats.publish") == pub &&
			ratePath(ov, "message_stats.confirm") == float64(g.confirmed.Load()) &&
			ratePath(ov, "message_stats.ack") == float64(g.acked.Load()) && ratePath(q, "message_stats.ack") == float64(g.acked.Load())
	})
	q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/metered", nil, 200))
	if m := ratePath(q, "memory"); !(m > 0 && m < 1<<20) {
		t.Errorf("queue memory %v, want a small positive number of bytes", q["memory"])
	}
}

// Each message_stats counter counts what RabbitMQ's does, on the channel,
// its connection, the vhost (overview) and the queue.
func TestMgmtMessageStatsCounters(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/queues/%2F/counted", map[string]any{"durable": true}, 201)
	conn := b.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	must := fatalIf(t)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	must(ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 8))
	publish := func(key string, mandatory bool) {
		must(ch.Publish("", key, mandatory, false, amqp.Publishing{Body: []byte(key)}))
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish to %q nacked", key)
		}
	}
	for range 3 {
		publish("counted", false)
	}
	publish("nowhere", true) // returned
	<-returns
	publish("nowhere", false) // dropped

	// basic.get with ack, then nack it back: it comes again redelivered.
	d, ok, err := ch.Get("counted", false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	must(d.Nack(false, true))
	d, ok, err = ch.Get("counted", false)
	if err != nil || !ok || !d.Redelivered {
		t.Fatalf("get after nack: %v %v redelivered %v", ok, err, d.Redelivered)
	}
	must(d.Ack(false))
	if _, ok, _ := ch.Get("counted", true); !ok { // get with no-ack
		t.Fatal("get no-ack: empty")
	}
	// A no-ack consumer takes the last one; then get-empty.
	msgs, err := ch.Consume("counted", "", true, false, false, false, nil)
	must(err)
	recv(t, msgs, 5*time.Second)
	waitFor(t, 5*time.Second, "queue empty", func() bool {
		q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/counted", nil, 200))
		return q["messages"] == float64(0)
	})
	if _, ok, _ := ch.Get("counted", false); ok {
		t.Fatal("get: not empty")
	}

	want := map[string]float64{
		"publish": 5, "confirm": 5, "return_unroutable": 1, "drop_unroutable": 1,
		"get": 2, "get_no_ack": 1, "get_empty": 1, "deliver": 0, "deliver_no_ack": 1,
		"deliver_get": 4, "ack": 1, "redeliver": 1,
	}
	check := func(what string, m map[string]any, want map[string]float64) {
		t.Helper()
		st, _ := m["message_stats"].(map[string]any)
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s: %s = %v, want %v", what, k, st[k], v)
			}
			if _, ok := st[k+"_details"].(map[string]any)["rate"].(float64); !ok {
				t.Errorf("%s: %s_details has no rate: %v", what, k, st[k+"_details"])
			}
		}
	}
	chans := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/channels", nil, 200))
	if len(chans) != 1 {
		t.Fatalf("channels: %v", chans)
	}
	check("channel", chans[0], want)
	connName := chans[0]["connection_details"].(map[string]any)["name"].(string)
	check("connection", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/connections/"+urlPathEscape(connName), nil, 200)), want)
	check("overview", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/overview", nil, 200)), want)
	check("vhost", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/vhosts/%2F", nil, 200)), want)
	// The queue counts what reached it and left it.
	check("queue", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/counted", nil, 200)), map[string]float64{
		"publish": 3, "get": 2, "get_no_ack": 1, "deliver": 0, "deliver_no_ack": 1, "deliver_get": 4, "ack": 1, "redeliver": 1,
	})
	check("default exchange", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/exchanges/%2F/amq.default", nil, 200)), map[string]float64{
		"publish_in": 5, "publish_out": 3,
	})

	// Closing the channel keeps its counts in the connection and vhost.
	must(ch.Close())
	waitFor(t, 5*time.Second, "the channel closed", func() bool {
		return len(decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/channels", nil, 200))) == 0
	})
	check("connection after the channel closed", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/connections/"+urlPathEscape(connName), nil, 200)), map[string]float64{"publish": 5})
	conn.Close()
	check("overview after the connection closed", decodeJSON[map[string]any](t, b.api(t, "GET", "/api/overview", nil, 200)), map[string]float64{"publish": 5, "ack": 1})
}
