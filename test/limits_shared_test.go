package test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RabbitMQ's max-connections limits count Kafka connections too
// (docs/security.md, "Limits and quotas"): one user has one limit over
// both protocols, and a Kafka connection is a connection to the Kafka
// vhost.

// kafkaPing opens a franz-go client (SASL PLAIN as user when user is not
// "") and pings the broker over one connection; the client is returned
// open (closed when the test ends) with the ping's error.
func kafkaPing(t *testing.T, b *broker, user, pass string) (*kgo.Client, error) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(b.Kafka), kgo.RequestRetries(0)}
	if user != "" {
		opts = append(opts, kgo.SASL(saslMech("PLAIN", user, pass)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl, cl.Ping(ctx)
}

// A user of max-connections 2 holds one AMQP (amqp091-go) and one Kafka
// (franz-go, SASL PLAIN) connection; a third of either kind is refused,
// each with its protocol's error, and counted; once one closes, a new one
// of the other kind is let in.
func TestLimitsUserConnectionsBothProtocols(t *testing.T) {
	b := startBroker(t)
	b.addUser(t, "lim", "lim-pass", "")
	b.api(t, "PUT", "/api/user-limits/lim/max-connections", map[string]any{"value": 2}, http.StatusNoContent)
	url := "amqp://lim:lim-pass@" + b.AMQP + "/"

	a1, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("the user's first connection (AMQP): %v", err)
	}
	defer a1.Close()
	k1, err := kafkaPing(t, b, "lim", "lim-pass")
	if err != nil {
		t.Fatalf("the user's second connection (Kafka): %v", err)
	}

	_, err = amqp.Dial(url)
	if code := amqpErrCode(err); code != amqp.NotAllowed || !strings.Contains(err.Error(), "user connection limit (2) is reached") {
		t.Fatalf("a third connection (AMQP) of a user of max-connections 2: %v", err)
	}
	_, err = kafkaPing(t, b, "lim", "lim-pass")
	if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), "user connection limit (2) is reached") {
		t.Fatalf("a third connection (Kafka) of a user of max-connections 2: %v", err)
	}
	for _, l := range []string{"listener=amqp", "listener=kafka"} {
		if v := b.counter(t, "sluice_connections_refused_total", l, "reason=user_max_connections"); v < 1 {
			t.Errorf("sluice_connections_refused_total{%s,user_max_connections} = %v, want >= 1", l, v)
		}
	}
	// Other users are not limited by it: guest over both.
	if _, err := kafkaPing(t, b, "guest", "guest"); err != nil {
		t.Fatalf("guest over Kafka: %v", err)
	}
	b.dial(t)

	a1.Close() // a Kafka connection takes its place
	waitFor(t, 10*time.Second, "a Kafka connection of the user once its AMQP one closed", func() bool {
		cl, err := kafkaPing(t, b, "lim", "lim-pass")
		if err != nil {
			cl.Close()
		}
		return err == nil
	})
	k1.Close() // and an AMQP one that Kafka connection's place
	waitFor(t, 10*time.Second, "an AMQP connection of the user once a Kafka one closed", func() bool {
		c, err := amqp.Dial(url)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// A vhost's max-connections counts the Kafka connections as connections
// to the Kafka vhost ("/" here): with one AMQP and one Kafka connection
// held under max-connections 2, a third is refused over AMQP (530), over
// Kafka with SASL (SASL_AUTHENTICATION_FAILED) and over Kafka without a
// login (closed at its first request past ApiVersions), each counted; once one closes, a Kafka
// connection is served again.
func TestLimitsVhostConnectionsKafka(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/vhost-limits/%2F/max-connections", map[string]any{"value": 2}, http.StatusNoContent)
	a1 := b.dial(t)
	if _, err := kafkaPing(t, b, "", ""); err != nil { // anonymous, from loopback
		t.Fatalf("a second connection to the vhost (Kafka): %v", err)
	}
	_, err := amqp.Dial(b.amqpURL())
	if code := amqpErrCode(err); code != amqp.NotAllowed || !strings.Contains(err.Error(), "connection limit (2) is reached") {
		t.Fatalf("a third connection (AMQP) to a vhost of max-connections 2: %v", err)
	}
	_, err = kafkaPing(t, b, "guest", "guest")
	if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), "access to vhost '/' refused for user 'guest': connection limit (2) is reached") {
		t.Fatalf("a third connection (Kafka, SASL) to a vhost of max-connections 2: %v", err)
	}
	if _, err := kafkaPing(t, b, "", ""); err == nil {
		t.Fatal("a third connection (Kafka, anonymous) to a vhost of max-connections 2 was served")
	}
	for _, l := range []string{"listener=amqp", "listener=kafka"} {
		if v := b.counter(t, "sluice_connections_refused_total", l, "reason=vhost_max_connections"); v < 1 {
			t.Errorf("sluice_connections_refused_total{%s,vhost_max_connections} = %v, want >= 1", l, v)
		}
	}
	a1.Close()
	waitFor(t, 10*time.Second, "a Kafka connection once the AMQP one closed", func() bool {
		cl, err := kafkaPing(t, b, "", "")
		cl.Close()
		return err == nil
	})
}

// below-node-connection-limit (and ready-to-serve-clients) answer 503
// with the reason while a listener cap is reached, 200 below it, as
// RabbitMQ's check compares against its node's connection limit.
func TestLimitsHealthBelowConnectionLimit(t *testing.T) {
	b := startBroker(t, "--amqp-max-connections=2", "--kafka-max-connections=1")
	checks := []string{"/api/health/checks/below-node-connection-limit", "/api/health/checks/ready-to-serve-clients"}
	passing := func() bool {
		for _, p := range checks {
			if code, _ := b.httpDo(t, "guest", "guest", "GET", p, nil); code != http.StatusOK {
				return false
			}
		}
		return true
	}
	failing := func(want string) {
		t.Helper()
		for _, p := range checks {
			st := decodeJSON[map[string]any](t, b.api(t, "GET", p, nil, http.StatusServiceUnavailable))
			if reason, _ := st["reason"].(string); st["status"] != "failed" || !strings.Contains(reason, want) {
				t.Fatalf("GET %s at a cap: %v, want a reason with %q", p, st, want)
			}
		}
	}
	// (The harness's readiness probe connected to both ports: the cap
	// of one Kafka connection holds until the server sees it gone.)
	waitFor(t, 10*time.Second, "the checks passing with no connection open", passing)

	nc, err := net.Dial("tcp", b.Kafka) // one served Kafka connection: at the cap
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(kafkaFrame(kmsg.NewPtrApiVersionsRequest(), 0, 1))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("a Kafka connection under the cap got no answer: %v", err)
	}
	failing("1 kafka connections, at kafka_max_connections (1)")
	nc.Close()
	waitFor(t, 10*time.Second, "the checks passing once the Kafka connection closed", passing)

	c1 := b.dial(t)
	if !passing() {
		t.Fatal("the checks fail with 1 of 2 AMQP connections open")
	}
	b.dial(t)
	failing("2 amqp connections, at amqp_max_connections (2)")
	c1.Close()
	waitFor(t, 10*time.Second, "the checks passing once an AMQP connection closed", passing)
}

// Vhost and user limits go in the definitions export and come back from
// an import in RabbitMQ's format: a vhost's as a "vhost-limits"
// parameter, a user's as the user's "limits"; a file written by hand in
// that format (as RabbitMQ exports it) is applied too, and enforced.
func TestLimitsInDefinitions(t *testing.T) {
	b := startBroker(t)
	b.addUser(t, "lim", "lim-pass", "")
	b.api(t, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]any{"value": 7}, http.StatusNoContent)
	b.api(t, "PUT", "/api/user-limits/lim/max-connections", map[string]any{"value": 3}, http.StatusNoContent)
	type defsShape struct {
		Parameters []map[string]any `json:"parameters"`
		Users      []struct {
			Name   string           `json:"name"`
			Limits map[string]int64 `json:"limits"`
		} `json:"users"`
	}
	defs := b.api(t, "GET", "/api/definitions", nil, http.StatusOK)
	d := decodeJSON[defsShape](t, defs)
	if len(d.Parameters) != 1 || d.Parameters[0]["component"] != "vhost-limits" || d.Parameters[0]["vhost"] != "/" || d.Parameters[0]["name"] != "limits" ||
		d.Parameters[0]["value"].(map[string]any)["max-queues"] != float64(7) {
		t.Fatalf("exported parameters: %v", d.Parameters)
	}
	found := false
	for _, u := range d.Users {
		if u.Name == "lim" {
			found = u.Limits["max-connections"] == 3 && len(u.Limits) == 1
		} else if len(u.Limits) != 0 {
			t.Errorf("user %s exported with limits %v", u.Name, u.Limits)
		}
	}
	if !found {
		t.Fatalf("exported users lack lim's limits: %+v", d.Users)
	}
	one := decodeJSON[defsShape](t, b.api(t, "GET", "/api/definitions/%2F", nil, http.StatusOK))
	if len(one.Parameters) != 1 || one.Parameters[0]["component"] != "vhost-limits" || one.Parameters[0]["vhost"] != nil {
		t.Fatalf("one vhost's exported parameters: %v", one.Parameters)
	}

	// Cleared, then imported back.
	b.api(t, "DELETE", "/api/vhost-limits/%2F/max-queues", nil, http.StatusNoContent)
	b.api(t, "DELETE", "/api/user-limits/lim/max-connections", nil, http.StatusNoContent)
	b.api(t, "POST", "/api/definitions", jsonRaw(defs), http.StatusNoContent)
	vl := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/vhost-limits", nil, http.StatusOK))
	ul := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/user-limits", nil, http.StatusOK))
	if len(vl) != 1 || vl[0]["value"].(map[string]any)["max-queues"] != float64(7) || len(ul) != 1 || ul[0]["user"] != "lim" || ul[0]["value"].(map[string]any)["max-connections"] != float64(3) {
		t.Fatalf("limits after import: vhost %v, user %v", vl, ul)
	}

	// RabbitMQ's own shape, by hand: a new vhost with max-connections 0
	// (no connection let in), a user of max-connections 1.
	file := `{"vhosts": [{"name": "closed"}],
	  "users": [{"name": "solo", "password_hash": "", "tags": [], "limits": {"max-connections": 1}}],
	  "permissions": [{"user": "solo", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
	                  {"user": "guest", "vhost": "closed", "configure": ".*", "write": ".*", "read": ".*"}],
	  "parameters": [{"vhost": "closed", "component": "vhost-limits", "name": "limits", "value": {"max-connections": 0}},
	                 {"vhost": "/", "component": "federation-upstream", "name": "x", "value": {"uri": "amqp://"}}]}`
	b.api(t, "POST", "/api/definitions", jsonRaw([]byte(file)), http.StatusNoContent)
	_, err := amqp.Dial("amqp://guest:guest@" + b.AMQP + "/closed")
	if code := amqpErrCode(err); code != amqp.NotAllowed || !strings.Contains(err.Error(), "connection limit (0) is reached") {
		t.Fatalf("a connection to an imported vhost of max-connections 0: %v", err)
	}
	ul = decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/user-limits/solo", nil, http.StatusOK))
	if len(ul) != 1 || ul[0]["value"].(map[string]any)["max-connections"] != float64(1) {
		t.Fatalf("solo's limits after import: %v", ul)
	}
	b.api(t, "POST", "/api/definitions", jsonRaw([]byte(`{"parameters": [{"vhost": "/", "component": "vhost-limits", "name": "limits", "value": {"max-channels": 1}}]}`)), http.StatusBadRequest)
}

// The TLS listeners' limit refusals are counted apart (listener amqps,
// kafka_tls), and the connection caps count plain and TLS listeners
// together: one plain AMQP connection under amqp_max_connections 1 keeps
// an AMQPS client out. A Kafka client over mutual TLS (its certificate
// names guest) counts against guest's max-connections with the AMQP one.
func TestLimitsTLSListenersCountedApart(t *testing.T) {
	b := startTLSBroker(t, "request", "--amqp-max-connections=1")
	// The harness's readiness probe opened (and closed) a TCP connection
	// to the AMQP port, which holds the one slot until the server sees it
	// gone: the first connection waits for that.
	var a1 *amqp.Connection // plain, guest
	waitFor(t, 10*time.Second, "a first plain AMQP connection", func() bool {
		c, err := amqp.Dial(b.amqpURL())
		if err != nil {
			return false
		}
		a1 = c
		return true
	})
	t.Cleanup(func() { a1.Close() })
	// The waits above may have been refused on the plain listener (the
	// probe still held the slot): the counts below are taken from here.
	before := b.scrape(t)
	amqps := "amqps://guest:guest@localhost:" + portOf(t, b.AMQPS) + "/"
	if c, err := amqp.DialTLS(amqps, clientTLS(t, b.Certs, "")); err == nil {
		c.Close()
		t.Fatal("an AMQPS connection let in past amqp_max_connections=1 held by a plain one")
	}
	b.api(t, "PUT", "/api/user-limits/guest/max-connections", map[string]any{"value": 1}, http.StatusNoContent)
	mtls := func() error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, b.Certs)), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := mtls(); err == nil {
		t.Fatal("a Kafka connection over mutual TLS as guest was served past guest's max-connections 1")
	}
	s := b.scrape(t)
	for _, c := range []struct {
		labels []string
		min    float64
	}{
		{[]string{"listener=amqps", "reason=max_connections"}, 1},
		{[]string{"listener=kafka_tls", "reason=user_max_connections"}, 1},
	} {
		if v, _ := s.value("sluice_connections_refused_total", c.labels...); v < c.min {
			t.Errorf("sluice_connections_refused_total%v = %v, want >= %v", c.labels, v, c.min)
		}
	}
	for _, l := range [][]string{{"listener=amqp", "reason=max_connections"}, {"listener=kafka", "reason=user_max_connections"}} {
		v, _ := s.value("sluice_connections_refused_total", l...)
		v0, _ := before.value("sluice_connections_refused_total", l...)
		if v != v0 {
			t.Errorf("sluice_connections_refused_total%v went from %v to %v, want unchanged (the refusals were on the TLS listeners)", l, v0, v)
		}
	}
	a1.Close()
	waitFor(t, 10*time.Second, "a Kafka connection over mutual TLS once guest's AMQP one closed", func() bool { return mtls() == nil })
}
