package test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Policies and operator policies (RabbitMQ's), through the management
// API with Go's HTTP client and rabbitmqadmin, seen by AMQP clients.

// publishN publishes n messages "<prefix>1".."<prefix>n" to queue through
// the default exchange, with confirms.
func publishN(t *testing.T, ch *amqp.Channel, queue, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("%s%d", prefix, i))})
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatalf("publish %s%d to %s nacked", prefix, i, queue)
		}
	}
}

// queueJSON reads one queue from the management API.
func (b *broker) queueJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	return decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/"+name, nil, 200))
}

// waitMessages waits until queue holds n messages.
func (b *broker) waitMessages(t *testing.T, queue string, n int) {
	t.Helper()
	var last any
	waitFor(t, 10*time.Second, fmt.Sprintf("%s to hold %d messages", queue, n), func() bool {
		last = b.queueJSON(t, queue)["messages"]
		return last == float64(n)
	})
}

// bodies takes every ready message of queue with basic.get (auto-ack).
func bodies(t *testing.T, ch *amqp.Channel, queue string) []string {
	t.Helper()
	var out []string
	for {
		m, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(m.Body))
	}
}

func putPolicy(t *testing.T, b *broker, kind, name, pattern, applyTo string, priority int, def string, want int) {
	t.Helper()
	b.api(t, "PUT", "/api/"+kind+"/%2F/"+name, map[string]any{
		"pattern": pattern, "apply-to": applyTo, "priority": priority, "definition": jsonRaw(def),
	}, want)
}

type jsonRaw string

func (j jsonRaw) MarshalJSON() ([]byte, error) { return []byte(j), nil }

// A policy changed while a queue holds messages applies to them at once:
// a lower max-length drops the oldest, a dead-letter exchange set later
// receives what overflows, a new message-ttl expires what is there.
func TestPolicyLiveChange(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	must := fatalIf(t)
	_, err := ch.QueueDeclare("orders.a", true, false, false, false, nil)
	must(err)
	must(ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	_, err = ch.QueueDeclare("dead", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("dead", "", "dlx", false, nil))
	publishN(t, ch, "orders.a", "m", 6)

	putPolicy(t, b, "policies", "orders", `^orders\.`, "queues", 0, `{"max-length":10}`, 201)
	q := b.queueJSON(t, "orders.a")
	if q["policy"] != "orders" || q["operator_policy"] != nil || q["messages"] != float64(6) {
		t.Fatalf("queue under a max-length 10 policy: %v", q)
	}
	if eff, _ := q["effective_policy_definition"].(map[string]any); eff["max-length"] != float64(10) {
		t.Fatalf("effective_policy_definition %v", q["effective_policy_definition"])
	}

	// Lower max-length: the two oldest go (dropped: no DLX yet).
	putPolicy(t, b, "policies", "orders", `^orders\.`, "queues", 0, `{"max-length":4}`, 204)
	b.waitMessages(t, "orders.a", 4)
	if n := b.queueJSON(t, "dead")["messages"]; n != float64(0) {
		t.Fatalf("dead-lettered without a dead-letter exchange: %v", n)
	}

	// Add a dead-letter exchange and lower again: the head is dead-lettered.
	putPolicy(t, b, "policies", "orders", `^orders\.`, "queues", 0, `{"max-length":3,"dead-letter-exchange":"dlx"}`, 204)
	b.waitMessages(t, "orders.a", 3)
	b.waitMessages(t, "dead", 1)

	// A message TTL: everything there is older than 1 ms and expires to the DLX.
	putPolicy(t, b, "policies", "orders", `^orders\.`, "queues", 0, `{"message-ttl":1,"dead-letter-exchange":"dlx"}`, 204)
	b.waitMessages(t, "orders.a", 0)
	b.waitMessages(t, "dead", 4)
	m, ok, err := ch.Get("dead", true)
	must(err)
	if !ok || string(m.Body) != "m3" {
		t.Fatalf("first dead-lettered message: %q %v, want m3 (m1, m2 were dropped)", m.Body, ok)
	}
	if death, _ := m.Headers["x-death"].([]any); len(death) != 1 || death[0].(amqp.Table)["reason"] != "maxlen" {
		t.Fatalf("x-death of m3: %v", m.Headers["x-death"])
	}
	rest := bodies(t, ch, "dead")
	if strings.Join(rest, ",") != "m4,m5,m6" {
		t.Fatalf("expired messages in dead: %v", rest)
	}

	// Cleared: the queue keeps new messages again.
	b.api(t, "DELETE", "/api/policies/%2F/orders", nil, 204)
	publishN(t, ch, "orders.a", "n", 5)
	b.waitMessages(t, "orders.a", 5)
	if q := b.queueJSON(t, "orders.a"); q["policy"] != nil {
		t.Fatalf("policy still shown after clear: %v", q["policy"])
	}
	b.api(t, "DELETE", "/api/policies/%2F/orders", nil, 404)
}

// Matching, priorities and precedence over queue arguments; operator
// policies cap; an exchange takes its alternate exchange from a policy;
// policies survive a restart and a definitions round trip.
func TestPolicyMatchPrecedenceAndOperatorCap(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	must := fatalIf(t)
	for _, ex := range []string{"dlx", "other-dlx"} {
		must(ch.ExchangeDeclare(ex, "fanout", true, false, false, false, nil))
		_, err := ch.QueueDeclare(ex+"-q", true, false, false, false, nil)
		must(err)
		must(ch.QueueBind(ex+"-q", "", ex, false, nil))
	}

	putPolicy(t, b, "policies", "all-jobs", `^jobs`, "all", 1, `{"max-length":100}`, 201)
	putPolicy(t, b, "policies", "fast-jobs", `^jobs\.fast$`, "queues", 5, `{"message-ttl":1,"dead-letter-exchange":"dlx"}`, 201)
	putPolicy(t, b, "policies", "streams-only", `.*`, "streams", 9, `{"max-age":"1h"}`, 201)

	// jobs.fast: the higher priority policy applies. Its own
	// x-dead-letter-exchange wins over the policy's; the policy's lower
	// TTL wins over its x-message-ttl.
	_, err := ch.QueueDeclare("jobs.fast", true, false, false, false, amqp.Table{"x-dead-letter-exchange": "other-dlx", "x-message-ttl": int32(600000)})
	must(err)
	_, err = ch.QueueDeclare("jobs.slow", true, false, false, false, amqp.Table{"x-max-length": int32(2)})
	must(err)
	if p := b.queueJSON(t, "jobs.fast")["policy"]; p != "fast-jobs" {
		t.Fatalf("jobs.fast policy %v, want fast-jobs", p)
	}
	if p := b.queueJSON(t, "jobs.slow")["policy"]; p != "all-jobs" {
		t.Fatalf("jobs.slow policy %v, want all-jobs", p)
	}
	publishN(t, ch, "jobs.fast", "f", 1)
	b.waitMessages(t, "other-dlx-q", 1)
	if n := b.queueJSON(t, "dlx-q")["messages"]; n != float64(0) {
		t.Fatalf("the policy's dead-letter exchange was used over the queue's own: %v", n)
	}
	// jobs.slow: x-max-length 2 is lower than the policy's 100.
	publishN(t, ch, "jobs.slow", "s", 4)
	b.waitMessages(t, "jobs.slow", 2)

	// A stream takes the streams policy (priority 9); the work-queue keys
	// of other policies never reach it.
	_, err = ch.QueueDeclare("jobs.stream", true, false, false, false, amqp.Table{"x-queue-type": "stream"})
	must(err)
	if q := b.queueJSON(t, "jobs.stream"); q["policy"] != "streams-only" {
		t.Fatalf("jobs.stream policy %v, want streams-only", q["policy"])
	}
	putPolicy(t, b, "policies", "streams-too", `^jobs\.stream$`, "queues", 10, `{"max-length":1,"message-ttl":1,"max-length-bytes":1000000}`, 201)
	if q := b.queueJSON(t, "jobs.stream"); q["policy"] != "streams-too" {
		t.Fatalf("jobs.stream policy %v, want streams-too", q["policy"])
	}
	publishN(t, ch, "jobs.stream", "e", 3)
	b.waitMessages(t, "jobs.stream", 3)
	b.api(t, "DELETE", "/api/policies/%2F/streams-too", nil, 204)

	// An exchange takes its alternate-exchange from a policy. all-jobs
	// (apply-to all, priority 1) matches jobs-in too: ae needs a higher
	// priority to be the one that applies.
	putPolicy(t, b, "policies", "ae", `^jobs-in$`, "exchanges", 2, `{"alternate-exchange":"dlx"}`, 201)
	must(ch.ExchangeDeclare("jobs-in", "direct", true, false, false, false, nil))
	dc, err := ch.PublishWithDeferredConfirm("jobs-in", "nowhere", false, false, amqp.Publishing{Body: []byte("unroutable")})
	must(err)
	dc.Wait()
	b.waitMessages(t, "dlx-q", 1)
	x := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/exchanges/%2F/jobs-in", nil, 200))
	if x["policy"] != "ae" {
		t.Fatalf("exchange jobs-in policy %v", x["policy"])
	}

	// An operator policy caps a queue argument: x-max-length 10 becomes 3.
	putPolicy(t, b, "operator-policies", "cap", `^capped$`, "queues", 0, `{"max-length":3}`, 201)
	_, err = ch.QueueDeclare("capped", true, false, false, false, amqp.Table{"x-max-length": int32(10)})
	must(err)
	publishN(t, ch, "capped", "c", 6)
	b.waitMessages(t, "capped", 3)
	q := b.queueJSON(t, "capped")
	if q["operator_policy"] != "cap" || q["policy"] != nil {
		t.Fatalf("capped: policy %v, operator_policy %v", q["policy"], q["operator_policy"])
	}
	if eff, _ := q["effective_policy_definition"].(map[string]any); eff["max-length"] != float64(3) {
		t.Fatalf("capped effective_policy_definition %v", q["effective_policy_definition"])
	}
	// With a user policy of 2 as well, the lower wins; the cap of 3 does
	// not raise it.
	putPolicy(t, b, "policies", "tight", `^capped$`, "queues", 0, `{"max-length":2}`, 201)
	b.waitMessages(t, "capped", 2)
	b.api(t, "DELETE", "/api/policies/%2F/tight", nil, 204)
	// Clearing the cap restores the queue's own x-max-length 10.
	b.api(t, "DELETE", "/api/operator-policies/%2F/cap", nil, 204)
	publishN(t, ch, "capped", "d", 10)
	b.waitMessages(t, "capped", 10)

	// expires from a policy: an unused queue goes.
	_, err = ch.QueueDeclare("ephemeral", true, false, false, false, nil)
	must(err)
	putPolicy(t, b, "policies", "short-lived", `^ephemeral$`, "queues", 0, `{"expires":100}`, 201)
	waitFor(t, 10*time.Second, "the unused queue to expire", func() bool {
		code, _ := b.httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/ephemeral", nil)
		return code == 404
	})
	b.api(t, "DELETE", "/api/policies/%2F/short-lived", nil, 204)

	// Listing shapes.
	pols := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/policies/%2F", nil, 200))
	if len(pols) != 4 || pols[0]["name"] != "ae" || pols[0]["apply-to"] != "exchanges" || pols[0]["vhost"] != "/" {
		t.Fatalf("GET /api/policies/%%2F: %v", pols)
	}
	one := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/policies/%2F/fast-jobs", nil, 200))
	if def, _ := one["definition"].(map[string]any); one["priority"] != float64(5) || one["pattern"] != `^jobs\.fast$` || def["message-ttl"] != float64(1) {
		t.Fatalf("GET fast-jobs: %v", one)
	}
	b.api(t, "GET", "/api/policies/%2F/nope", nil, 404)
	b.api(t, "GET", "/api/policies/no-vhost", nil, 404)

	// Refusals: RabbitMQ's validation.
	for _, bad := range []map[string]any{
		{"pattern": ".*", "definition": map[string]any{"no-such-key": 1}},
		{"pattern": ".*", "definition": map[string]any{"message-ttl": "soon"}},
		{"pattern": ".*", "definition": map[string]any{}},
		{"pattern": "(", "definition": map[string]any{"max-length": 1}},
		{"pattern": ".*", "apply-to": "topics", "definition": map[string]any{"max-length": 1}},
		{"definition": map[string]any{"max-length": 1}},
	} {
		b.api(t, "PUT", "/api/policies/%2F/bad", bad, 400)
	}
	b.api(t, "PUT", "/api/operator-policies/%2F/bad", map[string]any{"pattern": ".*", "definition": map[string]any{"dead-letter-exchange": "x"}}, 400)
	b.api(t, "PUT", "/api/policies/%2F/ha", map[string]any{"pattern": "^ha", "definition": map[string]any{"ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic"}}, 201)
	waitFor(t, 10*time.Second, "the log to report the ha-* keys as having no effect", func() bool {
		return strings.Contains(b.Logs(), "classic mirroring policy keys have no effect on a single node") && strings.Contains(b.Logs(), "ha-sync-mode")
	})

	// Permissions: a management user may not; a policymaker may, in the
	// vhosts it has permissions in; operator policies are the
	// administrator's.
	b.api(t, "PUT", "/api/users/mgr", map[string]any{"password": "p", "tags": "management"}, 201)
	b.api(t, "PUT", "/api/users/pm", map[string]any{"password": "p", "tags": "policymaker"}, 201)
	for _, u := range []string{"mgr", "pm"} {
		b.api(t, "PUT", "/api/permissions/%2F/"+u, map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	}
	body := map[string]any{"pattern": "^pm", "definition": map[string]any{"max-length": 1}}
	if code, out := b.httpDo(t, "mgr", "p", "PUT", "/api/policies/%2F/by-mgr", body); code != 401 {
		t.Fatalf("management user set a policy: %d %s", code, out)
	}
	if code, out := b.httpDo(t, "pm", "p", "PUT", "/api/policies/%2F/by-pm", body); code != 201 {
		t.Fatalf("policymaker could not set a policy: %d %s", code, out)
	}
	if code, out := b.httpDo(t, "pm", "p", "PUT", "/api/operator-policies/%2F/by-pm", body); code != 401 {
		t.Fatalf("policymaker set an operator policy: %d %s", code, out)
	}
	b.api(t, "DELETE", "/api/policies/%2F/by-pm", nil, 204)
	b.api(t, "DELETE", "/api/policies/%2F/ha", nil, 204)

	// Restart: policies are durable and apply to queues declared after.
	b.Stop()
	b.Restart()
	ch = b.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclare("jobs.new", true, false, false, false, nil)
	must(err)
	if p := b.queueJSON(t, "jobs.new")["policy"]; p != "all-jobs" {
		t.Fatalf("after restart, jobs.new policy %v", p)
	}
	b.waitMessages(t, "jobs.slow", 2)

	// Definitions round trip: exported, cleared, imported, applied again.
	defs := b.api(t, "GET", "/api/definitions", nil, 200)
	exported := decodeJSON[struct {
		Policies []map[string]any `json:"policies"`
	}](t, defs)
	if len(exported.Policies) != 4 {
		t.Fatalf("exported policies: %v", exported.Policies)
	}
	for _, p := range exported.Policies {
		b.api(t, "DELETE", "/api/policies/%2F/"+p["name"].(string), nil, 204)
	}
	if p := b.queueJSON(t, "jobs.new")["policy"]; p != nil {
		t.Fatalf("jobs.new policy %v after clearing every policy", p)
	}
	b.api(t, "POST", "/api/definitions", jsonRaw(defs), 204)
	again := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/policies", nil, 200))
	if len(again) != 4 {
		t.Fatalf("policies after import: %v", again)
	}
	if p := b.queueJSON(t, "jobs.new")["policy"]; p != "all-jobs" {
		t.Fatalf("jobs.new policy %v after import", p)
	}
}

func TestPolicyRabbitmqadmin(t *testing.T) {
	requireRabbitmqadmin(t)
	b := startBroker(t)
	ch := b.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	_, err := ch.QueueDeclare("admin.q", true, false, false, false, nil)
	fatalIf(t)(err)
	publishN(t, ch, "admin.q", "a", 5)

	rabbitmqadmin(t, b, "declare", "policy", "name=limit", `pattern=^admin\.`, `definition={"max-length":2}`, "apply-to=queues", "priority=3")
	b.waitMessages(t, "admin.q", 2)
	out := rabbitmqadmin(t, b, "-f", "tsv", "list", "policies", "name", "pattern", "apply-to", "priority")
	if !strings.Contains(out, "limit\t^admin\\.\tqueues\t3") {
		t.Fatalf("list policies:\n%s", out)
	}
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "queues", "name", "policy", "messages")
	if !strings.Contains(out, "admin.q\tlimit\t2") {
		t.Fatalf("list queues does not show the policy:\n%s", out)
	}

	rabbitmqadmin(t, b, "declare", "operator_policy", "name=cap", "pattern=.*", `definition={"max-length":1}`, "apply-to=queues")
	b.waitMessages(t, "admin.q", 1)
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "operator_policies", "name", "definition")
	if !strings.Contains(out, "cap\t") || !strings.Contains(out, "max-length") {
		t.Fatalf("list operator_policies:\n%s", out)
	}
	rabbitmqadmin(t, b, "delete", "operator_policy", "name=cap")
	rabbitmqadmin(t, b, "delete", "policy", "name=limit")
	out = rabbitmqadmin(t, b, "-f", "tsv", "list", "policies", "name")
	if strings.Contains(out, "limit") {
		t.Fatalf("policy still listed after delete:\n%s", out)
	}
	publishN(t, ch, "admin.q", "b", 3)
	b.waitMessages(t, "admin.q", 4)

	// sluice policy, the CLI, against the same broker.
	cli := func(args ...string) string {
		t.Helper()
		r := runTool(t, 30*time.Second, "", sluiceBin, append(args, "--http", "http://"+b.HTTP)...)
		if r.Err != nil {
			t.Fatalf("sluice %s: %v\n%s%s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
	if out := cli("policy", "set", "cli-limit", `^admin\.`, `{"max-length":3}`, "--apply-to", "queues"); !strings.Contains(out, "set policy cli-limit") {
		t.Fatalf("sluice policy set: %q", out)
	}
	b.waitMessages(t, "admin.q", 3)
	if out := cli("policy", "list"); !strings.Contains(out, "cli-limit") || !strings.Contains(out, `{"max-length":3}`) {
		t.Fatalf("sluice policy list:\n%s", out)
	}
	cli("operator-policy", "set", "cli-cap", ".*", `{"max-length":1}`)
	b.waitMessages(t, "admin.q", 1)
	cli("operator-policy", "clear", "cli-cap")
	if out := cli("policy", "clear", "cli-limit"); !strings.Contains(out, "cleared policy cli-limit") {
		t.Fatalf("sluice policy clear: %q", out)
	}
	if out := cli("policy", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("policies left: %s", out)
	}
}

// pika declares a queue with no arguments and rejects a message; a
// policy's dead-letter exchange and routing key take it to the DLQ.
func TestPolicyDeadLetterPika(t *testing.T) {
	needPythonModule(t, "pika")
	b := startBroker(t)
	putPolicy(t, b, "policies", "dlx", `^pol-work$`, "queues", 0, `{"dead-letter-exchange":"pol-dlx","dead-letter-routing-key":"dead"}`, 201)
	script, err := filepath.Abs(filepath.Join("python", "pika_policy_dlx.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 60*time.Second, "", python3Path, script, b.AMQP).must(t, b, "pika_policy_dlx.py")
	t.Logf("pika:\n%s", r.Stdout)
}
