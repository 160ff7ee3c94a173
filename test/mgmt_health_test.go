package test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The health endpoints RabbitMQ's management API lists, the aliveness
// test, vhost limits, and paths written with a trailing slash.

func TestMgmtTrailingSlash(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/queues/%2F/slashq", map[string]any{"durable": true}, 201)
	ch := b.channel(t)
	defer ch.Close()
	var connName string
	waitFor(t, 5*time.Second, "the connection listed", func() bool {
		conns := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/connections", nil, 200))
		if len(conns) == 1 {
			connName = conns[0]["name"].(string)
		}
		return connName != ""
	})
	for _, path := range []string{
		"/api/overview", "/api/whoami", "/api/nodes", "/api/vhosts", "/api/vhosts/%2F",
		"/api/users", "/api/users/guest", "/api/permissions",
		"/api/exchanges", "/api/exchanges/%2F", "/api/exchanges/%2F/amq.direct",
		"/api/exchanges/%2F/amq.direct/bindings/source",
		"/api/queues", "/api/queues/%2F", "/api/queues/%2F/slashq", "/api/queues/%2F/slashq/bindings",
		"/api/bindings", "/api/bindings/%2F",
		"/api/connections", "/api/connections/" + urlPathEscape(connName), "/api/channels", "/api/consumers",
		"/api/definitions", "/api/health/checks/alarms", "/api/health/checks/virtual-hosts",
		"/api/healthchecks/node", "/api/vhost-limits", "/api/kafka/topics",
	} {
		for _, p := range []string{path, path + "/"} {
			code, body := b.httpDo(t, "guest", "guest", "GET", p, nil)
			if code != http.StatusOK {
				t.Errorf("GET %s: %d %s", p, code, body)
			}
		}
	}
	// The trailing slash is not a way around a 404, and DELETE takes it too.
	b.api(t, "GET", "/api/queues/%2F/nosuch/", nil, 404)
	b.api(t, "DELETE", "/api/queues/%2F/slashq/", nil, 204)
	b.api(t, "GET", "/api/queues/%2F/slashq", nil, 404)
	// What client tooling does: find the connection under /api/connections/
	// and close it by name.
	conns := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/connections/", nil, 200))
	if len(conns) != 1 || conns[0]["name"] != connName {
		t.Fatalf("connections/: %v", conns)
	}
	b.api(t, "DELETE", "/api/connections/"+urlPathEscape(connName), nil, 204)
	waitFor(t, 5*time.Second, "the connection closed", func() bool {
		return len(decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/connections/", nil, 200))) == 0
	})
}

func urlPathEscape(s string) string {
	r := strings.NewReplacer(" ", "%20", ">", "%3E", "/", "%2F")
	return r.Replace(s)
}

func TestMgmtAlivenessAndHealthChecks(t *testing.T) {
	b := startBroker(t)
	for i := 0; i < 2; i++ { // the second run finds the queue declared
		st := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/aliveness-test/%2F", nil, 200))
		if st["status"] != "ok" {
			t.Fatalf("aliveness-test: %v", st)
		}
	}
	q := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/aliveness-test", nil, 200))
	if q["messages"] != float64(0) {
		t.Fatalf("aliveness-test queue keeps its test messages: %v", q["messages"])
	}
	b.api(t, "GET", "/api/aliveness-test/nosuch", nil, 404)
	if code, _ := b.httpDo(t, "", "", "GET", "/api/aliveness-test/%2F", nil); code != 401 {
		t.Fatalf("aliveness-test without credentials: %d", code)
	}

	_, amqpPort, _ := net.SplitHostPort(b.AMQP)
	for _, path := range []string{
		"/api/health/checks/alarms", "/api/health/checks/local-alarms",
		"/api/health/checks/virtual-hosts", "/api/health/checks/node-is-quorum-critical",
		"/api/health/checks/node-is-mirror-sync-critical",
		"/api/health/checks/certificate-expiration/1/months",
		"/api/health/checks/is-in-service", "/api/health/checks/below-node-connection-limit",
		"/api/health/checks/ready-to-serve-clients",
		"/api/health/checks/metadata-store/initialized",
		"/api/health/checks/metadata-store/initialized/with-data",
		"/api/health/checks/quorum-queues-without-elected-leaders/all-vhosts",
		"/api/health/checks/port-listener/" + amqpPort,
		"/api/health/checks/protocol-listener/amqp091",
		"/api/healthchecks/node",
	} {
		st := decodeJSON[map[string]any](t, b.api(t, "GET", path, nil, 200))
		if st["status"] != "ok" {
			t.Errorf("GET %s: %v", path, st)
		}
	}
	b.api(t, "GET", "/api/health/checks/certificate-expiration/1/fortnights", nil, 400)
	b.api(t, "GET", "/api/health/checks/port-listener/1", nil, 503)

	for _, path := range []string{"/api/vhost-limits", "/api/vhost-limits/%2F"} {
		if l := decodeJSON[[]any](t, b.api(t, "GET", path, nil, 200)); len(l) != 0 {
			t.Errorf("GET %s: %v, want []", path, l)
		}
	}
	b.api(t, "GET", "/api/vhost-limits/nosuch", nil, 404)
	// A limit set is listed (test/limits_test.go enforces them).
	b.api(t, "PUT", "/api/vhost-limits/%2F/max-connections", map[string]any{"value": 10}, 204)
	if l := decodeJSON[[]any](t, b.api(t, "GET", "/api/vhost-limits/%2F", nil, 200)); len(l) != 1 {
		t.Errorf("a limit set is not listed: %v", l)
	}
	b.api(t, "DELETE", "/api/vhost-limits/%2F/max-connections", nil, 204)

	// A node's memory breakdown, as RabbitMQ gives it with ?memory=true:
	// the aliveness-test queue is one queue whose memory counts.
	node := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/nodes", nil, 200))[0]["name"].(string)
	n := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/nodes/"+node+"?memory=true", nil, 200))
	mem, _ := n["memory"].(map[string]any)
	total, _ := mem["total"].(map[string]any)
	if q, _ := mem["queue_procs"].(float64); q <= 0 || total == nil || !(total["rss"].(float64) > q) {
		t.Fatalf("memory breakdown: %v", mem)
	}
	q = decodeJSON[map[string]any](t, b.api(t, "GET", "/api/queues/%2F/aliveness-test", nil, 200))
	if m, _ := q["memory"].(float64); m <= 0 || m > mem["queue_procs"].(float64) {
		t.Fatalf("queue memory %v, node queue_procs %v", q["memory"], mem["queue_procs"])
	}
}
