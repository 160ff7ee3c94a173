package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The web console in a real browser: headless Chromium (Debian's chromium
// package) driven by playwright-core through test/browser/console.spec.mjs,
// against a real server holding real state made with amqp091-go and
// franz-go. The script saves screenshots of the main pages (to
// docs/screenshots/ with SLUICE_SCREENSHOTS=1).

// bulkQueues is how many extra queues the console must list (and page)
// without trouble.
const bulkQueues = 1500

func requireBrowser(t *testing.T) (node string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI (.ci/run installs it)", what)
		}
		t.Skipf("%s missing", what)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing("/usr/bin/chromium (apt-get install chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node (apt-get install nodejs npm)")
	}
	if _, err := os.Stat("browser/node_modules/playwright-core/package.json"); err != nil {
		missing("playwright-core (cd test/browser && npm ci)")
	}
	return node
}

func TestConsoleInBrowser(t *testing.T) {
	node := requireBrowser(t)
	b := startBroker(t)
	waitFor(t, 20*time.Second, "HTTP port serving the console", func() bool {
		resp, err := http.Get("http://" + b.HTTP + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// AMQP state: queues with known contents, an exchange bound to one, and
	// a bulk of queues for the list to page through.
	ch := b.channel(t)
	declare := func(name string) {
		t.Helper()
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"orders", "payments", "inbox", "scratch", "ticks"} {
		declare(q)
	}
	if err := ch.ExchangeDeclare("orders.x", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("orders", "order.#", "orders.x", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish := func(key, body string) {
		t.Helper()
		c, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "", key, false, false,
			amqp.Publishing{Body: []byte(body), ContentType: "text/plain", DeliveryMode: amqp.Persistent})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(ctxT(t, 10*time.Second)); err != nil || !ok {
			t.Fatalf("publish to %s not confirmed: %v", key, err)
		}
	}
	for i := 1; i <= 5; i++ {
		publish("orders", fmt.Sprintf("order-%d", i))
	}
	for i := 1; i <= 3; i++ {
		publish("payments", fmt.Sprintf("payment-%d", i))
	}
	start := time.Now()
	for i := range bulkQueues {
		declare(fmt.Sprintf("bulk-%04d", i))
	}
	t.Logf("declared %d bulk queues in %v", bulkQueues, time.Since(start).Round(time.Millisecond))

	// Kafka state: topic "events" with 100 records in each of 3
	// partitions, and group "billing" (one live member) that committed
	// 40, 50 and 60: a lag of 60 + 50 + 40 = 150.
	b.createTopic(t, "events", 3, nil)
	b.createTopic(t, "clicks", 2, nil)
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range 3 {
		for i := range 100 {
			recs = append(recs, &kgo.Record{Topic: "events", Partition: int32(p), Value: []byte(fmt.Sprintf("event-%d-%d", p, i))})
		}
	}
	if err := prod.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	billing := b.client(t, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.ClientID("billing-1"))
	for n := 0; n < 300; {
		fs := billing.PollRecords(ctxT(t, 15*time.Second), 500)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	var commitErr error
	billing.CommitOffsetsSync(ctxT(t, 10*time.Second), map[string]map[int32]kgo.EpochOffset{
		"events": {0: {Epoch: -1, Offset: 40}, 1: {Epoch: -1, Offset: 50}, 2: {Epoch: -1, Offset: 60}},
	}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
	})
	if commitErr != nil {
		t.Fatal(commitErr)
	}

	// Live traffic for the rate charts, bounded in time and stopped with
	// the test: AMQP publish, deliver and ack on "ticks"; Kafka produce to
	// "clicks" and a group that reads and commits it.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	tickPub, tickSub := b.channel(t), b.channel(t)
	deliveries, err := tickSub.Consume("ticks", "console-test", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			tickPub.PublishWithContext(ctx, "", "ticks", false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("tick-%d", i))})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				d.Ack(false)
			}
		}
	}()
	clicks := b.client(t, kgo.ConsumerGroup("clicks-reader"), kgo.ConsumeTopics("clicks"), kgo.AutoCommitInterval(time.Second))
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			prod.Produce(ctx, &kgo.Record{Topic: "clicks", Partition: int32(i % 2), Value: []byte("click")}, nil)
			if i%10 == 0 {
				clicks.PollRecords(ctx, 1000)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()

	// Screenshots go to a temporary directory, or with
	// SLUICE_SCREENSHOTS=1 to docs/screenshots, to refresh the docs.
	shots := t.TempDir()
	if os.Getenv("SLUICE_SCREENSHOTS") == "1" {
		var err error
		if shots, err = filepath.Abs("../docs/screenshots"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "browser/console.spec.mjs")
	cmd.Env = append(os.Environ(),
		"SLUICE_URL=http://"+b.HTTP+"/",
		"SLUICE_SHOTS="+shots,
		// The topics' partitions are listed as stream queues too
		// (docs/bridge.md): events-0..2, clicks-0..1; and their
		// exchanges' bindings to them.
		fmt.Sprintf("SLUICE_QUEUES=%d", bulkQueues+5+5),
		"SLUICE_BINDINGS=6",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("console.spec.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("browser checks failed: %v", err)
	}
	if !strings.Contains(string(out), "0 failed") {
		t.Fatalf("browser script did not report its results")
	}

	// What the browser did, checked from here through the API too.
	// orders was purged, then got one message published through orders.x.
	got := decodeJSON[[]map[string]any](t, b.api(t, "POST", "/api/queues/%2F/orders/get",
		map[string]any{"count": 10, "ackmode": "ack_requeue_true", "encoding": "auto"}, 200))
	if len(got) != 1 || got[0]["payload"] != "routed through orders.x" {
		t.Errorf("orders after the console's purge and publish: %v, want only the message sent through orders.x", got)
	}
	if code, _ := b.httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/scratch", nil); code != 404 {
		t.Errorf("scratch after deleting in the console: status %d, want 404", code)
	}
	q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/payments", nil, 200))
	if q["messages_ready"] != float64(3) {
		t.Errorf("payments (only peeked at): %v ready, want 3", q["messages_ready"])
	}
}

// TestConsoleShowsFailedLogs: a partition log whose fsync fails is shown
// on the console's overview in a real browser until the broker reopens it.
func TestConsoleShowsFailedLogs(t *testing.T) {
	node := requireBrowser(t)
	b := startFaultBroker(t, "--disk-free-limit", "0")
	b.createTopic(t, "broken", 1, nil)
	b.fault(t, "fail-sync", "/topics/")
	prod := b.client(t, kgo.RecordRetries(0), kgo.RequestRetries(0))
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "broken", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("produce acknowledged through a failing fsync")
	}
	waitFor(t, 10*time.Second, "the failed log in the alarms check", func() bool { return len(b.storageAlarms(t)) == 1 })

	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "browser/failed-logs.spec.mjs")
	cmd.Env = append(os.Environ(), "SLUICE_URL=http://"+b.HTTP+"/")
	out, err := cmd.CombinedOutput()
	t.Logf("failed-logs.spec.mjs:\n%s", out)
	if err != nil || !strings.Contains(string(out), "0 failed") {
		t.Fatalf("browser checks failed: %v", err)
	}
	if n := len(b.storageAlarms(t)); n != 0 {
		t.Errorf("%d failed logs after the console saw the box go", n)
	}
}
