package test

// Black-box tests of the admin commands (queue, exchange, binding,
// connection, user, vhost, permissions, definitions, status): the real
// binary against a real server's management HTTP API, cross-checked with
// amqp091-go and franz-go.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// adminCLI runs `sluice ARGS --http http://b.HTTP` with env added to the
// environment, bounded by a minute.
func adminCLI(t *testing.T, b *broker, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, append(args, "--http", "http://"+b.HTTP)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustAdmin is adminCLI as guest, failing the test on a non-zero exit.
func mustAdmin(t *testing.T, b *broker, args ...string) string {
	t.Helper()
	out, errOut, err := adminCLI(t, b, nil, args...)
	if err != nil {
		t.Fatalf("sluice %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// failAdmin runs a command that must fail with "error: ..." containing
// want on standard error.
func failAdmin(t *testing.T, b *broker, env []string, want string, args ...string) {
	t.Helper()
	out, errOut, err := adminCLI(t, b, env, args...)
	if err == nil {
		t.Fatalf("sluice %s succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), out)
	}
	if !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, want) {
		t.Fatalf("sluice %s: stderr %q, want \"error: ...%s...\"", strings.Join(args, " "), errOut, want)
	}
}

// adminJSON runs a command with --output json and decodes its output.
func adminJSON[T any](t *testing.T, b *broker, args ...string) T {
	t.Helper()
	out := mustAdmin(t, b, append(args, "--output", "json")...)
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("sluice %s --output json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// queueReady is the ready count of a queue according to `queue list --output json`.
func queueReady(t *testing.T, b *broker, vhost, name string) float64 {
	t.Helper()
	for _, q := range adminJSON[[]map[string]any](t, b, "queue", "list", "--vhost", vhost) {
		if q["name"] == name {
			return q["messages_ready"].(float64)
		}
	}
	t.Fatalf("queue %s not in the list", name)
	return 0
}

// publishConfirmedTo publishes bodies to exchange with key and waits for
// each confirm.
func publishConfirmedTo(t *testing.T, ch *amqp.Channel, exchange, key string, bodies ...string) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, body := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), exchange, key, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
			t.Fatalf("publish %q not confirmed: %v %v", body, ok, err)
		}
	}
}

func TestCLIAdminQueuesExchangesBindings(t *testing.T) {
	b := startBroker(t)
	if out := mustAdmin(t, b, "exchange", "declare", "cli-orders", "--type", "topic"); !strings.Contains(out, "declared exchange cli-orders") {
		t.Fatalf("exchange declare: %q", out)
	}
	if out := mustAdmin(t, b, "queue", "declare", "cli-billing", "--argument", "x-max-length=100"); !strings.Contains(out, "declared queue cli-billing") {
		t.Fatalf("queue declare: %q", out)
	}
	if out := mustAdmin(t, b, "queue", "declare", "cli-billing", "--argument", "x-max-length=100"); !strings.Contains(out, "already exists") {
		t.Fatalf("queue redeclare: %q", out)
	}
	failAdmin(t, b, nil, "x-max-length", "queue", "declare", "cli-billing", "--argument", "x-max-length=5")
	mustAdmin(t, b, "binding", "declare", "cli-orders", "cli-billing", "--routing-key", "order.*")

	out := mustAdmin(t, b, "exchange", "list")
	if !hasLineFields(out, "cli-orders", "topic", "true", "false", "false") || !hasLineFields(out, "amq.topic", "topic") {
		t.Fatalf("exchange list:\n%s", out)
	}
	out = mustAdmin(t, b, "binding", "list")
	if !hasLineFields(out, "cli-orders", "cli-billing", "queue", "order.*") || !hasLineFields(out, "(default)", "cli-billing", "queue", "cli-billing") {
		t.Fatalf("binding list:\n%s", out)
	}
	bindings := adminJSON[[]map[string]any](t, b, "binding", "list")
	found := false
	for _, bd := range bindings {
		found = found || (bd["source"] == "cli-orders" && bd["destination"] == "cli-billing" && bd["routing_key"] == "order.*")
	}
	if !found {
		t.Fatalf("binding list --output json lacks the binding: %v", bindings)
	}

	// What the CLI declared routes AMQP publishes.
	ch := b.channel(t)
	publishConfirmedTo(t, ch, "cli-orders", "order.created", "one", "two", "three")
	publishConfirmedTo(t, ch, "cli-orders", "invoice.created", "unrouted")
	out = mustAdmin(t, b, "queue", "list")
	// NAME TYPE DURABLE READY UNACKED CONSUMERS
	if !hasLineFields(out, "cli-billing", "classic", "true", "3", "0", "0") {
		t.Fatalf("queue list after 3 publishes:\n%s", out)
	}
	qs := adminJSON[[]map[string]any](t, b, "queue", "list")
	if len(qs) != 1 || qs[0]["name"] != "cli-billing" || qs[0]["messages_ready"].(float64) != 3 {
		t.Fatalf("queue list --output json: %v", qs)
	}

	// get peeks (requeues) by default.
	out = mustAdmin(t, b, "queue", "get", "cli-billing", "--count", "2")
	if !strings.Contains(out, "one") || !strings.Contains(out, "two") || strings.Contains(out, "three") || !strings.Contains(out, "order.created") {
		t.Fatalf("queue get:\n%s", out)
	}
	if n := queueReady(t, b, "/", "cli-billing"); n != 3 {
		t.Fatalf("after a requeueing get the queue has %v ready, want 3", n)
	}
	msgs := adminJSON[[]map[string]any](t, b, "queue", "get", "cli-billing", "--ack")
	if len(msgs) != 1 || msgs[0]["payload"] != "one" || msgs[0]["redelivered"] != true {
		t.Fatalf("queue get --ack --output json: %v", msgs)
	}
	if n := queueReady(t, b, "/", "cli-billing"); n != 2 {
		t.Fatalf("after get --ack the queue has %v ready, want 2", n)
	}

	if out := mustAdmin(t, b, "queue", "purge", "cli-billing"); !strings.Contains(out, "purged queue cli-billing") {
		t.Fatalf("purge: %q", out)
	}
	q, err := ch.QueueDeclarePassive("cli-billing", true, false, false, false, amqp.Table{"x-max-length": int64(100)})
	if err != nil || q.Messages != 0 {
		t.Fatalf("after purge AMQP sees %d messages (%v), want 0", q.Messages, err)
	}

	// Unbinding stops the routing.
	failAdmin(t, b, nil, "no binding", "binding", "delete", "cli-orders", "cli-billing", "--routing-key", "nope")
	mustAdmin(t, b, "binding", "delete", "cli-orders", "cli-billing", "--routing-key", "order.*")
	publishConfirmedTo(t, ch, "cli-orders", "order.created", "after-unbind")
	if n := queueReady(t, b, "/", "cli-billing"); n != 0 {
		t.Fatalf("after unbinding the queue got %v messages", n)
	}

	failAdmin(t, b, nil, "Not Found", "queue", "delete", "no-such-queue")
	mustAdmin(t, b, "queue", "delete", "cli-billing")
	mustAdmin(t, b, "exchange", "delete", "cli-orders")
	if _, err := ch.QueueDeclarePassive("cli-billing", true, false, false, false, nil); amqpErrCode(err) != 404 {
		t.Fatalf("deleted queue still there for AMQP: %v", err)
	}
	if out := mustAdmin(t, b, "queue", "list"); len(splitLines(out)) != 1 {
		t.Fatalf("queue list after delete:\n%s", out)
	}
	failAdmin(t, b, nil, "--output", "queue", "list", "--output", "yaml")
}

func TestCLIAdminUsersVhostsPermissions(t *testing.T) {
	b := startBroker(t)
	mustAdmin(t, b, "vhost", "add", "cli-team", "--description", "the team")
	// --password is the new user's; the CLI authenticates as guest.
	if out := mustAdmin(t, b, "user", "add", "bob", "--password", "b0b", "--tags", "monitoring"); !strings.Contains(out, "created user bob") {
		t.Fatalf("user add: %q", out)
	}
	mustAdmin(t, b, "permissions", "set", "bob", "--vhost", "cli-team", "--configure", "^bob-", "--write", ".*", "--read", ".*")

	if out := mustAdmin(t, b, "vhost", "list"); !hasLineFields(out, "cli-team", "0", "0", "0", "the", "team") {
		t.Fatalf("vhost list:\n%s", out)
	}
	if out := mustAdmin(t, b, "user", "list"); !hasLineFields(out, "bob", "monitoring") || !hasLineFields(out, "guest", "administrator") {
		t.Fatalf("user list:\n%s", out)
	}
	if out := mustAdmin(t, b, "permissions", "list"); !hasLineFields(out, "bob", "cli-team", "^bob-", ".*", ".*") {
		t.Fatalf("permissions list:\n%s", out)
	}
	perms := adminJSON[[]map[string]any](t, b, "permissions", "list")
	if len(perms) != 2 {
		t.Fatalf("permissions list --output json: %v", perms)
	}

	url := "amqp://bob:b0b@" + b.AMQP + "/cli-team"
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("bob cannot log in: %v", err)
	}
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("bob-jobs", true, false, false, false, nil); err != nil {
		t.Fatalf("declare inside the configure pattern: %v", err)
	}
	if _, err := ch.QueueDeclare("alice-jobs", true, false, false, false, nil); amqpErrCode(err) != 403 {
		t.Fatalf("declare outside the configure pattern: %v, want 403", err)
	}
	conn.Close()
	if out := mustAdmin(t, b, "queue", "list", "--vhost", "cli-team"); !hasLineFields(out, "bob-jobs", "classic") {
		t.Fatalf("queue list --vhost cli-team:\n%s", out)
	}

	// bob (monitoring) may read, not administer; the CLI says why.
	bobEnv := []string{"SLUICE_USER=bob", "SLUICE_PASSWORD=b0b"}
	if out, errOut, err := adminCLI(t, b, bobEnv, "status"); err != nil {
		t.Fatalf("status as a monitoring user: %v\n%s%s", err, out, errOut)
	}
	failAdmin(t, b, bobEnv, "", "user", "list")
	failAdmin(t, b, []string{"SLUICE_PASSWORD=wrong"}, "", "queue", "list")

	mustAdmin(t, b, "permissions", "clear", "bob", "--vhost", "cli-team")
	if c, err := amqp.Dial(url); err == nil {
		c.Close()
		t.Fatal("bob got in after his permissions were cleared")
	}
	mustAdmin(t, b, "user", "delete", "bob")
	if out := mustAdmin(t, b, "user", "list"); strings.Contains(out, "bob") {
		t.Fatalf("user list after delete:\n%s", out)
	}
	mustAdmin(t, b, "vhost", "delete", "cli-team")
	if out := mustAdmin(t, b, "vhost", "list"); strings.Contains(out, "cli-team") {
		t.Fatalf("vhost list after delete:\n%s", out)
	}
}

func TestCLIAdminConnections(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	var conns []map[string]any
	waitFor(t, 10*time.Second, "the connection listed", func() bool {
		conns = adminJSON[[]map[string]any](t, b, "connection", "list")
		return len(conns) == 1
	})
	name := conns[0]["name"].(string)
	if out := mustAdmin(t, b, "connection", "list"); !strings.Contains(out, name) || !strings.Contains(out, "guest") {
		t.Fatalf("connection list lacks %q:\n%s", name, out)
	}
	mustAdmin(t, b, "connection", "close", name, "--reason", "cli says bye")
	select {
	case e := <-closed:
		if e == nil || e.Code != 320 || !strings.Contains(e.Reason, "cli says bye") {
			t.Fatalf("connection closed with %v, want 320 and the reason", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
	failAdmin(t, b, nil, "Not Found", "connection", "close", name)
}

func TestCLIAdminDefinitionsExportImport(t *testing.T) {
	src := startBroker(t)
	mustAdmin(t, src, "vhost", "add", "cli-shop")
	mustAdmin(t, src, "user", "add", "carol", "--password", "c4rol")
	mustAdmin(t, src, "permissions", "set", "carol", "--vhost", "cli-shop")
	// A new vhost grants nobody anything, guest included (as in RabbitMQ).
	mustAdmin(t, src, "permissions", "set", "guest", "--vhost", "cli-shop")
	for _, q := range []string{"q-a", "q-b", "q-c"} {
		mustAdmin(t, src, "queue", "declare", q, "--vhost", "cli-shop")
	}
	mustAdmin(t, src, "exchange", "declare", "shop-events", "--type", "fanout", "--vhost", "cli-shop")
	mustAdmin(t, src, "policy", "set", "shop-ttl", "^q-", `{"message-ttl":60000}`, "--apply-to", "queues", "--vhost", "cli-shop")
	for _, q := range []string{"q-a", "q-b"} {
		mustAdmin(t, src, "binding", "declare", "shop-events", q, "--vhost", "cli-shop")
	}

	mustAdmin(t, src, "limits", "set", "vhost", "cli-shop", "max-queues", "10")
	mustAdmin(t, src, "limits", "set", "user", "carol", "max-connections", "5")

	file := filepath.Join(t.TempDir(), "defs.json")
	out := mustAdmin(t, src, "definitions", "export", file)
	if !strings.Contains(out, "3 queues") || !strings.Contains(out, "1 exchanges") {
		t.Fatalf("export summary: %q", out)
	}
	var defs map[string]any
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &defs); err != nil {
		t.Fatalf("exported file: %v", err)
	}
	if stdout := mustAdmin(t, src, "definitions", "export"); !json.Valid([]byte(stdout)) {
		t.Fatalf("export to stdout is not JSON:\n%s", stdout)
	}

	dst := startBroker(t)
	stdout, stderr, err := adminCLI(t, dst, nil, "definitions", "import", file, "--batch", "2")
	if err != nil {
		t.Fatalf("import: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "3 queues") || !strings.Contains(stderr, "(100%)") {
		t.Fatalf("import output:\nstdout: %s\nstderr: %s", stdout, stderr)
	}
	out = mustAdmin(t, dst, "limits", "list")
	if !hasLineFields(out, "vhost", "cli-shop", "max-queues", "10") || !hasLineFields(out, "user", "carol", "max-connections", "5") {
		t.Fatalf("limits after import:\n%s", out)
	}
	out = mustAdmin(t, dst, "binding", "list", "--vhost", "cli-shop")
	if !hasLineFields(out, "shop-events", "q-a", "queue") || !hasLineFields(out, "shop-events", "q-b", "queue") {
		t.Fatalf("bindings after import:\n%s", out)
	}
	out = mustAdmin(t, dst, "policy", "list", "--vhost", "cli-shop")
	if !hasLineFields(out, "shop-ttl", "^q-", "queues") {
		t.Fatalf("policies after import:\n%s", out)
	}

	// carol's password hash came along; a fanout publish reaches both
	// bound queues and not the third.
	conn, err := amqp.Dial("amqp://carol:c4rol@" + dst.AMQP + "/cli-shop")
	if err != nil {
		t.Fatalf("imported user cannot log in: %v", err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	publishConfirmedTo(t, ch, "shop-events", "", "hello")
	for q, want := range map[string]float64{"q-a": 1, "q-b": 1, "q-c": 0} {
		if n := queueReady(t, dst, "cli-shop", q); n != want {
			t.Fatalf("queue %s has %v messages after the fanout publish, want %v", q, n, want)
		}
	}
}

func TestCLIAdminStatusShowsBacklogAndLag(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	for _, q := range []string{"backlog-big", "backlog-small", "backlog-none"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	publishConfirmedTo(t, ch, "", "backlog-big", "1", "2", "3", "4", "5")
	publishConfirmedTo(t, ch, "", "backlog-small", "1", "2")

	b.createTopic(t, "status-topic", 1, nil)
	cl := b.client(t, kgo.DefaultProduceTopic("status-topic"))
	for i := range 10 {
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "status-topic", Partition: 0, At: 4, LeaderEpoch: -1})
	if err := b.admin(t).CommitAllOffsets(ctxT(t, 10*time.Second), "status-group", offsets); err != nil {
		t.Fatal(err)
	}

	out := mustAdmin(t, b, "status")
	// VHOST QUEUE READY UNACKED BACKLOG; GROUP STATE MEMBERS LAG
	if !hasLineFields(out, "/", "backlog-big", "5", "0", "5") || !hasLineFields(out, "/", "backlog-small", "2", "0", "2") {
		t.Fatalf("status lacks the queue backlogs:\n%s", out)
	}
	if strings.Contains(out, "backlog-none") {
		t.Fatalf("status lists a queue without backlog:\n%s", out)
	}
	if strings.Index(out, "backlog-big") > strings.Index(out, "backlog-small") {
		t.Fatalf("status does not sort queues by backlog:\n%s", out)
	}
	if !strings.Contains(out, "status-group") || !strings.Contains(out, "Alarms:        none") || !strings.Contains(out, "Disk free:") {
		t.Fatalf("status output:\n%s", out)
	}
	_, amqpPort, _ := strings.Cut(b.AMQP, ":")
	if !hasLineFields(out, "amqp", "127.0.0.1", amqpPort) {
		t.Fatalf("status lacks the amqp listener:\n%s", out)
	}

	st := adminJSON[statusJSON](t, b, "status", "--top", "1")
	if len(st.TopQueues) != 1 || st.TopQueues[0].Name != "backlog-big" || st.TopQueues[0].Backlog != 5 {
		t.Fatalf("status json top_queues: %+v", st.TopQueues)
	}
	if len(st.TopGroups) != 1 || st.TopGroups[0].Group != "status-group" || st.TopGroups[0].Lag != 6 {
		t.Fatalf("status json top_groups: %+v", st.TopGroups)
	}
	// Four queues: the three declared and status-topic-0, the topic's
	// partition as a stream queue of its super stream (docs/bridge.md),
	// which holds no backlog.
	if len(st.Listeners) != 3 || len(st.Alarms) != 0 || st.MemUsed <= 0 || st.DiskFree == nil || *st.DiskFree <= 0 ||
		st.Queues != 4 || st.Connections != 1 {
		t.Fatalf("status json: %+v", st)
	}
}

// statusJSON is the part of `sluice status --output json` the test reads.
type statusJSON struct {
	Listeners []struct {
		Protocol string `json:"protocol"`
		Port     int    `json:"port"`
	} `json:"listeners"`
	Alarms    []any  `json:"alarms"`
	MemUsed   int64  `json:"memory_used_bytes"`
	DiskFree  *int64 `json:"disk_free_bytes"`
	Queues    int    `json:"queues"`
	TopQueues []struct {
		Name    string `json:"name"`
		Backlog int64  `json:"backlog"`
	} `json:"top_queues"`
	TopGroups []struct {
		Group string `json:"group_id"`
		Lag   int64  `json:"lag"`
	} `json:"top_groups"`
	Connections int `json:"connections"`
}

// TestCLIProduceShowsProgress: a bulk produce that runs for a while
// reports progress on standard error before its summary.
func TestCLIProduceShowsProgress(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "progress", 1, nil)
	cmd := exec.Command(sluiceBin, "produce", "progress", "--brokers", b.Kafka)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	io.WriteString(stdin, "one\ntwo\n")
	waitFor(t, 20*time.Second, "a progress line", func() bool {
		return strings.Contains(errOut.String(), "2 records sent, 2 acknowledged, 0 failed")
	})
	io.WriteString(stdin, "three\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("produce: %v\n%s", err, errOut.String())
	}
	out := errOut.String()
	if i, j := strings.Index(out, "records sent"), strings.Index(out, "produced 3 records"); i < 0 || j < i {
		t.Fatalf("stderr:\n%s", out)
	}
}
