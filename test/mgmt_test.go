package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The management HTTP API, driven by rabbitmqadmin (Debian's
// rabbitmq-server package) and by Go's HTTP client.

// httpDo sends one request to b's HTTP port as user:pass and returns the
// status and the body.
func (b *broker) httpDo(t testing.TB, user, pass, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		p, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(p)
	}
	req, err := http.NewRequest(method, "http://"+b.HTTP+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// api sends a request as guest and fails unless the status is want.
func (b *broker) api(t testing.TB, method, path string, body any, want int) []byte {
	t.Helper()
	code, out := b.httpDo(t, "guest", "guest", method, path, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, out)
	}
	return out
}

func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func rabbitmqadmin(t *testing.T, b *broker, args ...string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(b.HTTP)
	cmd := exec.Command("rabbitmqadmin", append([]string{"-H", "127.0.0.1", "-P", port, "-u", "guest", "-p", "guest"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireRabbitmqadmin(t *testing.T) {
	if _, err := exec.LookPath("rabbitmqadmin"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rabbitmqadmin missing (apt-get install rabbitmq-server)")
		}
		t.Skip("rabbitmqadmin not installed (apt-get install rabbitmq-server)")
	}
}

func TestMgmtRabbitmqadmin(t *testing.T) {
	requireRabbitmqadmin(t)
	b := startBroker(t)

	rabbitmqadmin(t, b, "declare", "queue", "name=jobs", "durable=true")
	rabbitmqadmin(t, b, "declare", "exchange", "name=work", "type=direct")
	rabbitmqadmin(t, b, "declare", "binding", "source=work", "destination=jobs", "routing_key=run")
	out := rabbitmqadmin(t, b, "-f", "tsv", "list", "bindings", "source", "destination", "routing_key")
	if !strings.Contains(out, "work\tjobs\trun") {
		t.Fatalf("list bindings lacks work -> jobs (run):\n%s", out)
	}
	for i := range 3 {
		rabbitmqadmin(t, b, "publish", "exchange=work", "routing_key=run", "payload=job-"+string(rune('a'+i)))
	}
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "queues", "name", "messages", "messages_ready", "durable")
	if !strings.Contains(out, "jobs\t3\t3\tTrue") {
		t.Fatalf("list queues does not show 3 ready messages in jobs:\n%s", out)
	}

	// get requeues by default: the same message comes back redelivered.
	out = rabbitmqadmin(t, b, "-f", "raw_json", "get", "queue=jobs", "count=2")
	got := decodeJSON[[]map[string]any](t, []byte(out))
	if len(got) != 2 || got[0]["payload"] != "job-a" || got[1]["payload"] != "job-b" || got[0]["routing_key"] != "run" || got[0]["exchange"] != "work" {
		t.Fatalf("get count=2: %s", out)
	}
	out = rabbitmqadmin(t, b, "-f", "raw_json", "get", "queue=jobs", "ackmode=ack_requeue_false")
	got = decodeJSON[[]map[string]any](t, []byte(out))
	if len(got) != 1 || got[0]["payload"] != "job-a" || got[0]["redelivered"] != true {
		t.Fatalf("second get should return job-a redelivered: %s", out)
	}
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "queues", "name", "messages")
	if !strings.Contains(out, "jobs\t2") {
		t.Fatalf("after acking one get, jobs should hold 2:\n%s", out)
	}

	rabbitmqadmin(t, b, "purge", "queue", "name=jobs")
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "queues", "name", "messages")
	if !strings.Contains(out, "jobs\t0") {
		t.Fatalf("purge left messages:\n%s", out)
	}

	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "users", "name", "tags")
	if !strings.Contains(out, "guest\t") || !strings.Contains(out, "administrator") {
		t.Fatalf("list users:\n%s", out)
	}
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "exchanges", "name", "type")
	if !strings.Contains(out, "work\tdirect") || !strings.Contains(out, "amq.topic\ttopic") {
		t.Fatalf("list exchanges:\n%s", out)
	}

	path := filepath.Join(t.TempDir(), "defs.json")
	rabbitmqadmin(t, b, "export", path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defs := decodeJSON[struct {
		Queues    []map[string]any `json:"queues"`
		Exchanges []map[string]any `json:"exchanges"`
		Bindings  []map[string]any `json:"bindings"`
		Users     []map[string]any `json:"users"`
	}](t, raw)
	if len(defs.Queues) != 1 || defs.Queues[0]["name"] != "jobs" || len(defs.Exchanges) != 1 || defs.Exchanges[0]["name"] != "work" ||
		len(defs.Bindings) != 1 || defs.Bindings[0]["routing_key"] != "run" || len(defs.Users) != 1 {
		t.Fatalf("exported definitions: %s", raw)
	}

	rabbitmqadmin(t, b, "delete", "binding", "source=work", "destination_type=queue", "destination=jobs", "properties_key=run")
	rabbitmqadmin(t, b, "delete", "queue", "name=jobs")
	rabbitmqadmin(t, b, "delete", "exchange", "name=work")
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "queues", "name")
	if strings.Contains(out, "jobs") {
		t.Fatalf("jobs still listed after delete:\n%s", out)
	}

	// Import the exported file again: the definitions come back and the
	// queue works over AMQP.
	rabbitmqadmin(t, b, "import", path)
	ch := b.channel(t)
	if err := ch.Publish("work", "run", false, false, amqp.Publishing{Body: []byte("after-import")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "message routed through imported binding", func() bool {
		q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/jobs", nil, 200))
		return q["messages"] == float64(1)
	})
}

func TestMgmtQueueDeclaredOverHTTPWorksOverAMQP(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/queues/%2F/http-q", map[string]any{"durable": true, "arguments": map[string]any{"x-max-length": 100}}, 201)
	// Redeclaring the same is fine (204); an inequivalent one is 400.
	b.api(t, "PUT", "/api/queues/%2F/http-q", map[string]any{"durable": true, "arguments": map[string]any{"x-max-length": 100}}, 204)
	code, body := b.httpDo(t, "guest", "guest", "PUT", "/api/queues/%2F/http-q", map[string]any{"durable": false})
	if code != 400 || decodeJSON[map[string]string](t, body)["error"] != "bad_request" {
		t.Fatalf("inequivalent redeclare: %d %s", code, body)
	}

	ch := b.channel(t)
	// Passive declare sees the queue at once.
	if _, err := ch.QueueDeclarePassive("http-q", true, false, false, false, amqp.Table{"x-max-length": int64(100)}); err != nil {
		t.Fatalf("passive declare of the HTTP-declared queue: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	if err := ch.Publish("", "http-q", false, false, amqp.Publishing{Body: []byte("from-amqp")}); err != nil {
		t.Fatal(err)
	}
	if c := <-confirms; !c.Ack {
		t.Fatal("publish nacked")
	}

	// Publish over HTTP, consume over AMQP.
	res := decodeJSON[map[string]any](t, b.api(t, "POST", "/api/exchanges/%2F/amq.default/publish",
		map[string]any{"routing_key": "http-q", "payload": "from-http", "payload_encoding": "string", "properties": map[string]any{"headers": map[string]any{"n": 7}, "delivery_mode": 2}}, 200))
	if res["routed"] != true {
		t.Fatalf("publish to http-q not routed: %v", res)
	}
	res = decodeJSON[map[string]any](t, b.api(t, "POST", "/api/exchanges/%2F/amq.default/publish",
		map[string]any{"routing_key": "nowhere", "payload": "x", "payload_encoding": "string", "properties": map[string]any{}}, 200))
	if res["routed"] != false {
		t.Fatalf("publish to no queue reported routed: %v", res)
	}

	q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/http-q", nil, 200))
	if q["messages_ready"] != float64(2) || q["durable"] != true || q["type"] != "classic" {
		t.Fatalf("queue before consuming: %v", q)
	}
	if args := q["arguments"].(map[string]any); args["x-max-length"] != float64(100) {
		t.Fatalf("arguments: %v", args)
	}

	d, err := ch.Consume("http-q", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := recv(t, d, 5*time.Second), recv(t, d, 5*time.Second)
	if string(m1.Body) != "from-amqp" || string(m2.Body) != "from-http" || m2.Headers["n"] != int64(7) || m2.DeliveryMode != 2 {
		t.Fatalf("consumed %q %q headers %v mode %d", m1.Body, m2.Body, m2.Headers, m2.DeliveryMode)
	}
	// Unacked and consumer counts show in the API.
	waitFor(t, 5*time.Second, "2 unacked and 1 consumer", func() bool {
		q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/http-q", nil, 200))
		return q["messages_unacknowledged"] == float64(2) && q["consumers"] == float64(1) && q["messages_ready"] == float64(0)
	})
	m2.Ack(true)
	waitFor(t, 5*time.Second, "queue empty after ack", func() bool {
		q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/http-q", nil, 200))
		st, _ := q["message_stats"].(map[string]any)
		return q["messages"] == float64(0) && st != nil && st["publish"] == float64(2) && st["ack"] == float64(2)
	})

	// Deleting through HTTP is seen by AMQP at once.
	b.api(t, "DELETE", "/api/queues/%2F/http-q", nil, 204)
	b.api(t, "GET", "/api/queues/%2F/http-q", nil, 404)
	ch2 := b.channel(t)
	if _, err := ch2.QueueDeclarePassive("http-q", true, false, false, false, nil); amqpErrCode(err) != 404 {
		t.Fatalf("passive declare after HTTP delete: %v", err)
	}
}

func TestMgmtConnectionsChannelsConsumers(t *testing.T) {
	b := startBroker(t)
	conn, err := amqp.DialConfig(b.amqpURL(), amqp.Config{Properties: amqp.Table{"connection_name": "mgmt-test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(7, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("watched", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("watched", "tag-1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	conns := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/connections", nil, 200))
	if len(conns) != 1 {
		t.Fatalf("connections: %v", conns)
	}
	c := conns[0]
	name, _ := c["name"].(string)
	if c["protocol"] != "AMQP 0-9-1" || c["user"] != "guest" || c["vhost"] != "/" || c["channels"] != float64(1) ||
		!strings.HasSuffix(name, " -> "+b.AMQP) || c["peer_host"] != "127.0.0.1" {
		t.Fatalf("connection: %v", c)
	}
	if props := c["client_properties"].(map[string]any); props["connection_name"] != "mgmt-test" {
		t.Fatalf("client_properties: %v", props)
	}

	chans := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/channels", nil, 200))
	if len(chans) != 1 || chans[0]["consumer_count"] != float64(1) || chans[0]["confirm"] != true || chans[0]["prefetch_count"] != float64(7) || chans[0]["number"] != float64(1) {
		t.Fatalf("channels: %v", chans)
	}
	cons := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/consumers/%2F", nil, 200))
	if len(cons) != 1 || cons[0]["consumer_tag"] != "tag-1" || cons[0]["ack_required"] != true || cons[0]["queue"].(map[string]any)["name"] != "watched" {
		t.Fatalf("consumers: %v", cons)
	}

	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	b.api(t, "DELETE", "/api/connections/"+url.PathEscape(name), nil, 204)
	select {
	case e := <-closed:
		if e == nil || e.Code != 320 {
			t.Fatalf("close reason: %v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed by DELETE /api/connections/{name}")
	}
	waitFor(t, 5*time.Second, "connection gone from the list", func() bool {
		return len(decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/connections", nil, 200))) == 0
	})
	b.api(t, "DELETE", "/api/connections/"+url.PathEscape(name), nil, 404)
}

func TestMgmtAuthByTag(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/vhosts/team", map[string]any{"description": "team vhost"}, 201)
	b.api(t, "PUT", "/api/users/mon", map[string]any{"password": "monpw", "tags": "monitoring"}, 201)
	b.api(t, "PUT", "/api/users/mgr", map[string]any{"password": "mgrpw", "tags": []string{"management"}}, 201)
	b.api(t, "PUT", "/api/users/plain", map[string]any{"password": "plainpw", "tags": ""}, 201)
	b.api(t, "PUT", "/api/permissions/team/mgr", map[string]any{"configure": "^mgr\\.", "write": ".*", "read": ".*"}, 201)
	b.api(t, "PUT", "/api/queues/%2F/root-q", map[string]any{}, 201)
	// Even an administrator declares only where it has permissions, as in
	// RabbitMQ.
	code, body := b.httpDo(t, "guest", "guest", "PUT", "/api/queues/team/team-q", map[string]any{})
	if code != 401 {
		t.Fatalf("guest declaring in team without permissions: %d %s", code, body)
	}
	b.api(t, "PUT", "/api/permissions/team/guest", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	b.api(t, "PUT", "/api/queues/team/team-q", map[string]any{}, 201)

	errBody := func(code int, body []byte, wantCode int, wantErr string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("status %d, want %d: %s", code, wantCode, body)
		}
		if e := decodeJSON[map[string]string](t, body); e["error"] != wantErr || e["reason"] == "" {
			t.Fatalf("error body %s, want error %q", body, wantErr)
		}
	}

	// Bad credentials and no management tag: 401.
	code, body = b.httpDo(t, "guest", "wrong", "GET", "/api/overview", nil)
	errBody(code, body, 401, "not_authorised")
	code, body = b.httpDo(t, "", "", "GET", "/api/overview", nil)
	errBody(code, body, 401, "not_authorised")
	code, body = b.httpDo(t, "plain", "plainpw", "GET", "/api/overview", nil)
	errBody(code, body, 401, "not_authorised")

	// management: only its vhosts; no users; 401 on other vhosts.
	code, body = b.httpDo(t, "mgr", "mgrpw", "GET", "/api/vhosts", nil)
	if vhs := decodeJSON[[]map[string]any](t, body); code != 200 || len(vhs) != 1 || vhs[0]["name"] != "team" || vhs[0]["description"] != "team vhost" {
		t.Fatalf("mgr vhosts: %d %s", code, body)
	}
	code, body = b.httpDo(t, "mgr", "mgrpw", "GET", "/api/queues", nil)
	if qs := decodeJSON[[]map[string]any](t, body); code != 200 || len(qs) != 1 || qs[0]["name"] != "team-q" {
		t.Fatalf("mgr queues: %d %s", code, body)
	}
	code, body = b.httpDo(t, "mgr", "mgrpw", "GET", "/api/queues/%2F", nil)
	errBody(code, body, 401, "not_authorised")
	code, body = b.httpDo(t, "mgr", "mgrpw", "GET", "/api/users", nil)
	errBody(code, body, 401, "not_authorised")
	// Declares are checked against the configure pattern.
	if code, body = b.httpDo(t, "mgr", "mgrpw", "PUT", "/api/queues/team/mgr.jobs", map[string]any{}); code != 201 {
		t.Fatalf("mgr declaring mgr.jobs: %d %s", code, body)
	}
	code, body = b.httpDo(t, "mgr", "mgrpw", "PUT", "/api/queues/team/other", map[string]any{})
	errBody(code, body, 403, "access_refused")

	// monitoring: reads everything, administers nothing.
	code, body = b.httpDo(t, "mon", "monpw", "GET", "/api/queues", nil)
	if qs := decodeJSON[[]map[string]any](t, body); code != 200 || len(qs) != 3 {
		t.Fatalf("mon queues: %d %s", code, body)
	}
	if code, body = b.httpDo(t, "mon", "monpw", "GET", "/api/nodes", nil); code != 200 {
		t.Fatalf("mon nodes: %d %s", code, body)
	}
	code, body = b.httpDo(t, "mgr", "mgrpw", "GET", "/api/nodes", nil)
	errBody(code, body, 401, "not_authorised")
	code, body = b.httpDo(t, "mon", "monpw", "PUT", "/api/users/x", map[string]any{"password": "x", "tags": ""})
	errBody(code, body, 401, "not_authorised")
	code, body = b.httpDo(t, "mon", "monpw", "GET", "/api/definitions", nil)
	errBody(code, body, 401, "not_authorised")

	// Not found and bad request bodies.
	code, body = b.httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/missing", nil)
	errBody(code, body, 404, "Object Not Found")
	code, body = b.httpDo(t, "guest", "guest", "GET", "/api/queues/no-such-vhost", nil)
	errBody(code, body, 404, "Object Not Found")
	code, body = b.httpDo(t, "guest", "guest", "PUT", "/api/exchanges/%2F/typeless", map[string]any{})
	errBody(code, body, 400, "bad_request")

	// The new user logs in over AMQP with the password set over HTTP, and
	// the permission set over HTTP applies.
	b.api(t, "PUT", "/api/permissions/%2F/mon", map[string]any{"configure": "", "write": "", "read": ".*"}, 201)
	conn, err := amqp.Dial("amqp://mon:monpw@" + b.AMQP + "/")
	if err != nil {
		t.Fatalf("mon over AMQP: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("mon-q", false, false, false, false, nil); amqpErrCode(err) != 403 {
		t.Fatalf("mon declaring over AMQP without configure permission: %v", err)
	}
	b.api(t, "DELETE", "/api/users/mon", nil, 204)
	if code, _ := b.httpDo(t, "mon", "monpw", "GET", "/api/overview", nil); code != 401 {
		t.Fatalf("deleted user still logs in: %d", code)
	}

	// Health checks and probes.
	b.api(t, "GET", "/api/health/checks/alarms", nil, 200)
	b.api(t, "GET", "/api/health/checks/virtual-hosts", nil, 200)
	_, amqpPort, _ := net.SplitHostPort(b.AMQP)
	b.api(t, "GET", "/api/health/checks/port-listener/"+amqpPort, nil, 200)
	b.api(t, "GET", "/api/health/checks/port-listener/1", nil, 503)
	b.api(t, "GET", "/api/health/checks/protocol-listener/amqp", nil, 200)
	b.api(t, "GET", "/api/health/checks/protocol-listener/stomp", nil, 503)
	if code, body := b.httpDo(t, "", "", "GET", "/healthz", nil); code != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
}

func TestMgmtKafkaTopicsAndGroups(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/kafka/topics/events", map[string]any{"partitions": 2}, 201)
	b.api(t, "PUT", "/api/kafka/topics/events", map[string]any{"partitions": 2}, 400)

	cl := b.client(t, kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 10 {
		r := &kgo.Record{Value: []byte("event"), Partition: int32(i % 2)}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	topic := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/kafka/topics/events", nil, 200))
	parts := topic["partition_details"].([]any)
	if topic["partitions"] != float64(2) || topic["messages"] != float64(10) || len(parts) != 2 {
		t.Fatalf("topic: %v", topic)
	}
	for _, p := range parts {
		p := p.(map[string]any)
		if p["log_start_offset"] != float64(0) || p["log_end_offset"] != float64(5) || p["size_bytes"].(float64) <= 0 {
			t.Fatalf("partition: %v", p)
		}
	}

	// A group member that consumes and commits, then a lag of 5 - 2 = 3 on
	// partition 0 after committing offset 2 there.
	consumer := b.client(t, kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.ClientID("reader-1"))
	n := 0
	for n < 10 {
		fs := consumer.PollRecords(ctxT(t, 15*time.Second), 100)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	var commitErr error
	consumer.CommitOffsetsSync(ctxT(t, 10*time.Second), map[string]map[int32]kgo.EpochOffset{
		"events": {0: {Epoch: -1, Offset: 2}, 1: {Epoch: -1, Offset: 5}},
	}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
	})
	if commitErr != nil {
		t.Fatal(commitErr)
	}

	var g map[string]any
	waitFor(t, 15*time.Second, "group readers stable with a member and lag 3", func() bool {
		g = decodeJSON[map[string]any](t, b.api(t, "GET", "/api/kafka/groups/readers", nil, 200))
		return g["state"] == "Stable" && g["members"] == float64(1) && g["lag"] == float64(3)
	})
	members := g["member_details"].([]any)
	m := members[0].(map[string]any)
	if m["client_id"] != "reader-1" || len(m["assignments"].([]any)) != 1 {
		t.Fatalf("member: %v", m)
	}
	asg := m["assignments"].([]any)[0].(map[string]any)
	if asg["topic"] != "events" || len(asg["partitions"].([]any)) != 2 {
		t.Fatalf("assignment: %v", asg)
	}
	rows := g["offsets"].([]any)
	if len(rows) != 2 {
		t.Fatalf("offsets: %v", rows)
	}
	r0 := rows[0].(map[string]any)
	if r0["partition"] != float64(0) || r0["committed_offset"] != float64(2) || r0["log_end_offset"] != float64(5) || r0["lag"] != float64(3) || r0["member_id"] != m["member_id"] {
		t.Fatalf("partition 0 offsets row: %v", r0)
	}
	groups := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/kafka/groups", nil, 200))
	if len(groups) != 1 || groups[0]["group_id"] != "readers" {
		t.Fatalf("groups: %v", groups)
	}

	b.api(t, "DELETE", "/api/kafka/topics/events", nil, 204)
	b.api(t, "GET", "/api/kafka/topics/events", nil, 404)
}
