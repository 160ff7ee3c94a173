package test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The bridged paths against the single-protocol ones, on one server in
// one run (docs/benchmarks.md, "Bridged paths"). Skipped unless
// SLUICE_BRIDGE_BENCH is set; SLUICE_BRIDGE_RECORDS (default 200000) and
// SLUICE_BRIDGE_SIZE (bytes, default 256) size each path's load, and
// SLUICE_BRIDGE_BACKLOG (default 1000000; the figure is 10000000)
// the backlog a bound queue holds while the server's RSS is sampled.
//
//	SLUICE_BRIDGE_BENCH=1 go test -count=1 -v ./test/ -run TestBridgeThroughput
//
// Each path moves N records from producers to consumers running at once,
// and its rate is N over the time from the first send to the last
// receipt: publisher confirms and acks=all on (fsync before each
// answer, the default policy), consumers acking (AMQP, multiple acks of
// 100, prefetch 1000) or polling (Kafka).
func TestBridgeThroughput(t *testing.T) {
	if os.Getenv("SLUICE_BRIDGE_BENCH") == "" {
		t.Skip("set SLUICE_BRIDGE_BENCH=1 to measure the bridged paths")
	}
	n := envInt(t, "SLUICE_BRIDGE_RECORDS", 200000)
	size := envInt(t, "SLUICE_BRIDGE_SIZE", 256)
	backlog := envInt(t, "SLUICE_BRIDGE_BACKLOG", 1000000)
	b := startBroker(t)
	fatal := fatalIf(t)
	body := []byte(strings.Repeat("x", size))
	ch := b.channel(t)

	// Kafka → Kafka.
	b.createTopic(t, "single", 1, nil)
	kafkaRate := timeFlow(t, n, func(ctx context.Context) { kafkaProduce(t, b, ctx, "single", n, body) }, func(ctx context.Context, got *atomic.Int64) { kafkaConsume(t, b, ctx, "single", got) })
	// AMQP → queue → AMQP.
	_, err := ch.QueueDeclare("single.q", true, false, false, false, nil)
	fatal(err)
	amqpRate := timeFlow(t, n, func(ctx context.Context) { amqpPublish(t, b, ctx, "", "single.q", n, body) }, func(ctx context.Context, got *atomic.Int64) { amqpConsume(t, b, ctx, "single.q", got) })
	// AMQP exchange → topic → Kafka.
	b.createTopic(t, "bridged", 1, nil)
	b.api(t, "POST", "/api/bindings/%2F/e/amq.direct/t/bridged", map[string]any{"routing_key": "k"}, 201)
	toKafka := timeFlow(t, n, func(ctx context.Context) { amqpPublish(t, b, ctx, "amq.direct", "k", n, body) }, func(ctx context.Context, got *atomic.Int64) { kafkaConsume(t, b, ctx, "bridged", got) })
	// Kafka → topic → bound queue → AMQP.
	b.createTopic(t, "feeding", 1, nil)
	_, err = ch.QueueDeclare("bound.q", true, false, false, false, nil)
	fatal(err)
	fatal(ch.QueueBind("bound.q", "#", "feeding", false, nil))
	toAMQP := timeFlow(t, n, func(ctx context.Context) { kafkaProduce(t, b, ctx, "feeding", n, body) }, func(ctx context.Context, got *atomic.Int64) { amqpConsume(t, b, ctx, "bound.q", got) })

	t.Logf("records of %d bytes, %d per path, fsync always, confirms and acks=all", size, n)
	t.Logf("Kafka → topic → Kafka consumer:            %8.0f records/s", kafkaRate)
	t.Logf("AMQP → queue → AMQP consumer:              %8.0f records/s", amqpRate)
	t.Logf("AMQP exchange → topic → Kafka consumer:    %8.0f records/s (%.0f%% of Kafka, %.0f%% of AMQP)", toKafka, 100*toKafka/kafkaRate, 100*toKafka/amqpRate)
	t.Logf("Kafka → topic → bound queue → AMQP:        %8.0f records/s (%.0f%% of Kafka, %.0f%% of AMQP)", toAMQP, 100*toAMQP/kafkaRate, 100*toAMQP/amqpRate)

	// Memory while a bound queue holds a backlog: no consumer.
	b.createTopic(t, "backlog", 4, nil)
	_, err = ch.QueueDeclare("backlog.q", true, false, false, false, nil)
	fatal(err)
	fatal(ch.QueueBind("backlog.q", "#", "backlog", false, nil))
	t.Logf("RSS before the backlog: %d MiB", rssMiB(t, b))
	small := []byte(strings.Repeat("x", 100))
	step := max(backlog/5, 1)
	for done := 0; done < backlog; done += step {
		kafkaProduce(t, b, context.Background(), "backlog", min(step, backlog-done), small)
		want := done + min(step, backlog-done)
		waitFor(t, 10*time.Minute, fmt.Sprintf("%d records in backlog.q", want), func() bool { return queueDepth(t, ch, "backlog.q") >= want })
		t.Logf("backlog %9d records of 100 bytes in the bound queue: RSS %d MiB", want, rssMiB(t, b))
	}
}

// rssMiB is the server process's resident set size.
func rssMiB(t *testing.T, b *broker) int {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(s), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}

// timeFlow runs send and receive at once until n records were received
// and returns the records per second from the start to the last receipt.
func timeFlow(t *testing.T, n int, send func(context.Context), receive func(context.Context, *atomic.Int64)) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var got atomic.Int64
	start := time.Now()
	go receive(ctx, &got)
	go send(ctx)
	for got.Load() < int64(n) {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d records received", got.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds()
}

func kafkaProduce(t *testing.T, b *broker, ctx context.Context, topic string, n int, body []byte) {
	kc := b.client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(100000))
	defer kc.Close()
	for i := range n {
		kc.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: body}, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	kc.Flush(ctx)
}

func kafkaConsume(t *testing.T, b *broker, ctx context.Context, topic string, got *atomic.Int64) {
	kc := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer kc.Close()
	for ctx.Err() == nil {
		fs := kc.PollFetches(ctx)
		got.Add(int64(fs.NumRecords()))
	}
}

func amqpPublish(t *testing.T, b *broker, ctx context.Context, exchange, key string, n int, body []byte) {
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		t.Error(err)
		return
	}
	const window = 1000
	var pending []*amqp.DeferredConfirmation
	for range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
		if err != nil {
			if ctx.Err() == nil {
				t.Error(err)
			}
			return
		}
		pending = append(pending, dc)
		if len(pending) == window {
			pending[0].WaitContext(ctx)
			pending = pending[1:]
		}
	}
	for _, dc := range pending {
		dc.WaitContext(ctx)
	}
}

func amqpConsume(t *testing.T, b *broker, ctx context.Context, queue string, got *atomic.Int64) {
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Qos(1000, 0, false)
	}
	if err != nil {
		t.Error(err)
		return
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Error(err)
		return
	}
	i := 0
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-ds:
			if !ok {
				return
			}
			if i++; i%100 == 0 {
				d.Ack(true)
			}
			got.Add(1)
		}
	}
}
