package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// freeBytes is what statfs says an unprivileged writer may still use on
// dir's file system; the broker's disk alarm measures the same.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// throttleSeen counts produce answers that carried a throttle time.
type throttleSeen struct{ n atomic.Int32 }

func (h *throttleSeen) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

func blockingEvent(t *testing.T, ch <-chan amqp.Blocking, timeout time.Duration, what string) amqp.Blocking {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatalf("%s: blocked-notification channel closed", what)
		}
		return b
	case <-time.After(timeout):
		t.Fatalf("no %s within %v", what, timeout)
	}
	return amqp.Blocking{}
}

// TestDiskAlarmBlocksPublishersAndLosesNothing fills the data directory's
// file system past the disk_free_limit for real (a preallocated file),
// then frees it: AMQP publishers get connection.blocked and their publish
// waits unconfirmed, a Kafka produce is held (and answered
// REQUEST_TIMED_OUT with a throttle, then retried by the client), while
// AMQP consumers and Kafka fetches keep working. After the file goes,
// connection.unblocked comes and every held message is confirmed and
// delivered exactly once.
func TestDiskAlarmBlocksPublishersAndLosesNothing(t *testing.T) {
	fillDir := t.TempDir()
	// The margins are 1 GiB either way: other processes writing or
	// deleting on the same file system must not raise or clear the
	// alarm by themselves while the test runs.
	const margin = 1 << 30
	free := freeBytes(t, fillDir)
	if free < 4*margin {
		t.Skipf("only %d bytes free on the temp file system", free)
	}
	b := startBroker(t, fmt.Sprintf("--disk-free-limit=%d", free-margin), "--resource-check-interval=50ms")

	// Before the alarm: a publisher (confirm mode), a backlog to drain
	// later, and a Kafka topic with one record.
	pubConn := b.dial(t)
	blocks := pubConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	pub, err := pubConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"held", "backlog"} {
		if _, err := pub.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t, 60*time.Second)
	for i := range 20 {
		dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", "backlog", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint("backlog ", i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("confirm before the alarm: %v %v", ok, err)
		}
	}
	b.createTopic(t, "alarm-topic", 1, nil)
	throttles := &throttleSeen{}
	producer := b.client(t, kgo.DefaultProduceTopic("alarm-topic"),
		kgo.ProduceRequestTimeout(time.Second), kgo.WithHooks(throttles))
	if err := producer.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Fill the file system below the limit.
	filler, err := os.Create(filepath.Join(fillDir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	if err := syscall.Fallocate(int(filler.Fd()), 0, 0, 2*margin); err != nil {
		t.Skipf("fallocate: %v", err)
	}
	removed := false
	defer func() {
		if !removed {
			os.Remove(filler.Name())
		}
	}()
	if bl := blockingEvent(t, blocks, 10*time.Second, "connection.blocked"); !bl.Active || bl.Reason != "low on disk" {
		t.Fatalf("got %+v, want blocked with reason \"low on disk\"", bl)
	}

	// While blocked: the publish is held, neither confirmed nor routed;
	// the Kafka produce is held too.
	held, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", "held", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("held message")})
	if err != nil {
		t.Fatal(err)
	}
	produced := make(chan kgo.ProduceResults, 1)
	go func() { produced <- producer.ProduceSync(ctx, kgo.StringRecord("held record")) }()

	// Consumers keep working: the backlog drains on another connection,
	// and a Kafka consumer fetches the record produced before.
	cons := b.channel(t)
	backlog, err := cons.Consume("backlog", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		m := recv(t, backlog, 5*time.Second)
		if string(m.Body) != fmt.Sprint("backlog ", i) {
			t.Fatalf("backlog %d: %q", i, m.Body)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	fetcher := b.client(t, kgo.ConsumeTopics("alarm-topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if rec := pollOne(t, fetcher, 10*time.Second); string(rec.Value) != "before" {
		t.Fatalf("fetched %q during the alarm, want \"before\"", rec.Value)
	}
	heldQ, err := cons.Consume("held", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The Kafka producer's 1s request timeout passes while held: the
	// broker answers REQUEST_TIMED_OUT with a throttle and the client
	// retries. Waiting for that also gives the held publish time to be
	// (wrongly) confirmed or delivered, which the checks below catch.
	waitFor(t, 10*time.Second, "a throttled produce answer", func() bool { return throttles.n.Load() > 0 })
	select {
	case <-held.Done():
		t.Fatal("a publish made while blocked was confirmed during the alarm")
	default:
	}
	noDelivery(t, heldQ, 200*time.Millisecond)
	select {
	case r := <-produced:
		t.Fatalf("produce completed during the alarm: %v", r.FirstErr())
	default:
	}

	// Free the space: unblocked, then the held messages go through.
	filler.Close() // an open file keeps its blocks after the unlink
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	removed = true
	if bl := blockingEvent(t, blocks, 10*time.Second, "connection.unblocked"); bl.Active {
		t.Fatalf("got %+v, want unblocked", bl)
	}
	if ok, err := held.WaitContext(ctx); !ok || err != nil {
		t.Fatalf("held publish after the alarm: ack=%v err=%v", ok, err)
	}
	if m := recv(t, heldQ, 5*time.Second); string(m.Body) != "held message" {
		t.Fatalf("delivered %q", m.Body)
	}
	noDelivery(t, heldQ, 100*time.Millisecond)
	select {
	case r := <-produced:
		if err := r.FirstErr(); err != nil {
			t.Fatalf("held produce: %v", err)
		}
		if r[0].Record.Offset != 1 {
			t.Fatalf("held record at offset %d, want 1", r[0].Record.Offset)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("held produce did not complete after the alarm cleared")
	}
	if rec := pollOne(t, fetcher, 10*time.Second); string(rec.Value) != "held record" || rec.Offset != 1 {
		t.Fatalf("fetched %q at %d, want \"held record\" at 1", rec.Value, rec.Offset)
	}
	if !strings.Contains(b.Logs(), "resource alarm raised") {
		t.Errorf("no alarm in the server log:\n%s", b.Logs())
	}
}

// pollOne fetches the next record.
func pollOne(t *testing.T, c *kgo.Client, timeout time.Duration) *kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		fs := c.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record within %v", timeout)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

// TestMemoryAlarmBlocksPublishers starts a broker whose memory watermark
// is below what any process uses (1 MiB of resident memory), so the
// memory alarm is raised from the first sample. Publishers are blocked
// with "low on memory"; a consumer-only connection still works. (Clearing
// is covered by the alarm package's unit tests: no honest way was found
// to make a live process's RSS drop on cue.)
func TestMemoryAlarmBlocksPublishers(t *testing.T) {
	b := startBroker(t, "--memory-high-watermark=1MiB", "--resource-check-interval=50ms")
	ctx := ctxT(t, 30*time.Second)

	cons := b.channel(t)
	if _, err := cons.QueueDeclare("mem", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := cons.Consume("mem", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Not b.dial: a connection paused on a publish does not read its
	// socket, so connection.close cannot be answered while blocked
	// (RabbitMQ alike); close with a deadline.
	pubConn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pubConn.CloseDeadline(time.Now().Add(time.Second)) })
	blocks := pubConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	pub, err := pubConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", "mem", false, false, amqp.Publishing{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if bl := blockingEvent(t, blocks, 10*time.Second, "connection.blocked"); !bl.Active || bl.Reason != "low on memory" {
		t.Fatalf("got %+v, want blocked with reason \"low on memory\"", bl)
	}
	// The consumer's connection still answers: a passive declare works
	// and shows the held message never reached the queue.
	q, err := cons.QueueDeclarePassive("mem", false, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Fatalf("passive declare during the alarm: %+v %v", q, err)
	}
	noDelivery(t, d, 300*time.Millisecond)
	select {
	case <-dc.Done():
		t.Fatal("publish confirmed while the memory alarm is raised")
	default:
	}

	// Operators see it: the management API's alarm check fails, the node
	// reports mem_alarm, and /metrics has sluice_alarm{resource="memory"} 1.
	health := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/health/checks/alarms", nil, 503))
	if al, _ := health["alarms"].([]any); len(al) != 1 || al[0].(map[string]any)["resource"] != "memory" {
		t.Errorf("alarms health check: %v", health)
	}
	nodes := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/nodes", nil, 200))
	if n := nodes[0]; n["mem_alarm"] != true || n["disk_free_alarm"] != false || n["mem_limit"] != float64(1<<20) {
		t.Errorf("node during a memory alarm: mem_alarm %v disk_free_alarm %v mem_limit %v", n["mem_alarm"], n["disk_free_alarm"], n["mem_limit"])
	}
	sc := b.scrape(t)
	for _, bad := range sc.mismatches([]expectation{
		{"sluice_alarm", []string{"resource=memory"}, 1},
		{"sluice_alarm", []string{"resource=disk"}, 0},
	}) {
		t.Error(bad)
	}
}
