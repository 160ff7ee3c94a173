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
	if !passing() {
		t.Fatal("the checks fail with no connection open")
	}

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
