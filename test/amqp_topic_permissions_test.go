package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAMQPTopicPermissions: RabbitMQ's topic permissions, set with the CLI
// and the management API, restrict the routing keys a user publishes with
// (write) and binds with (read) on topic exchanges, with {username}
// expansion, and leave other exchange types alone.
func TestAMQPTopicPermissions(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/users/dave", map[string]string{"password": "dave-pw", "tags": ""}, http.StatusCreated)
	b.api(t, "PUT", "/api/permissions/%2F/dave", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	mustAdmin(t, b, "topic-permissions", "set", "dave", "--exchange", "amq.topic", "--write", `^{username}\.`, "--read", `^public\.`)
	b.api(t, "PUT", "/api/topic-permissions/%2F/dave", map[string]string{"exchange": "amq.direct", "write": "^never$", "read": "^never$"}, http.StatusCreated)
	if out := mustAdmin(t, b, "topic-permissions", "list"); !strings.Contains(out, "amq.topic") || !strings.Contains(out, `^{username}\.`) {
		t.Fatalf("topic-permissions list:\n%s", out)
	}
	listed := decodeJSON[[]map[string]string](t, b.api(t, "GET", "/api/topic-permissions/%2F/dave", nil, http.StatusOK))
	if len(listed) != 2 || listed[0]["exchange"] != "amq.direct" || listed[1]["read"] != `^public\.` {
		t.Fatalf("GET /api/topic-permissions/%%2F/dave: %v", listed)
	}
	defs := decodeJSON[struct {
		TopicPermissions []map[string]string `json:"topic_permissions"`
	}](t, b.api(t, "GET", "/api/definitions", nil, http.StatusOK))
	if len(defs.TopicPermissions) != 2 {
		t.Fatalf("definitions export: %v", defs.TopicPermissions)
	}

	conn, err := amqp.Dial("amqp://dave:dave-pw@" + b.AMQP + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// publish answers nil when the broker confirms, the channel's close
	// error when it refuses.
	publish := func(exchange, key string) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), exchange, key, false, false, amqp.Publishing{Body: []byte("x")})
		if err != nil {
			return err
		}
		select {
		case e := <-closed:
			return e
		case <-dc.Done():
			if dc.Acked() {
				return nil
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no confirm and no close")
		}
		select {
		case e := <-closed:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("nack without a channel close")
		}
		return nil
	}
	bind := func(key string) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ch.QueueBind(q.Name, key, "amq.topic", false, nil)
	}
	for _, tc := range []struct {
		what string
		err  error
		ok   bool
	}{
		{"publish dave.orders to amq.topic", publish("amq.topic", "dave.orders"), true},
		{"publish eve.orders to amq.topic", publish("amq.topic", "eve.orders"), false},
		{"bind public.# on amq.topic", bind("public.#"), true},
		{"bind secret.# on amq.topic", bind("secret.#"), false},
		{"publish x to amq.direct (not a topic exchange)", publish("amq.direct", "x"), true},
	} {
		switch {
		case tc.ok && tc.err != nil:
			t.Errorf("%s: %v", tc.what, tc.err)
		case !tc.ok && amqpErrCode(tc.err) != amqp.AccessRefused:
			t.Errorf("%s: %v, want ACCESS_REFUSED", tc.what, tc.err)
		}
	}

	// Cleared: a new connection may publish any key.
	b.api(t, "DELETE", "/api/topic-permissions/%2F/dave/amq.topic", nil, http.StatusNoContent)
	mustAdmin(t, b, "topic-permissions", "clear", "dave")
	b.api(t, "GET", "/api/topic-permissions/%2F/dave", nil, http.StatusNotFound)
	conn.Close()
	if conn, err = amqp.Dial("amqp://dave:dave-pw@" + b.AMQP + "/"); err != nil {
		t.Fatal(err)
	}
	if err := publish("amq.topic", "eve.orders"); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}
