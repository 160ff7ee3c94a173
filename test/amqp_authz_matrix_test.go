package test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

var errNotConfirmed = errors.New("publish not confirmed")

// TestAMQPAuthorizationMatrix: every AMQP method that touches a resource,
// through amqp091-go, by a user whose permissions are configure, write and
// read ^orders\. (the same user TestKafkaAuthorizationMatrix drives over
// Kafka): allowed on orders.* names, ACCESS_REFUSED (403) on others.
func TestAMQPAuthorizationMatrix(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/users/alice", map[string]string{"password": "alice-pw", "tags": ""}, http.StatusCreated)
	b.api(t, "PUT", "/api/permissions/%2F/alice", map[string]string{"configure": `^orders\.`, "write": `^orders\.`, "read": `^orders\.`}, http.StatusCreated)
	// guest makes what alice may not: a payments exchange and queue.
	g := b.channel(t)
	fatal := fatalIf(t)
	fatal(g.ExchangeDeclare("payments.x", "topic", true, false, false, false, nil))
	_, err := g.QueueDeclare("payments.q", true, false, false, false, nil)
	fatal(err)

	conn, err := amqp.Dial("amqp://alice:alice-pw@" + b.AMQP + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// run calls f on a fresh channel and returns the error that closed
	// it, if any (a publish is confirmed, so a refusal shows).
	run := func(f func(ch *amqp.Channel) error) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		err = f(ch)
		if err == errNotConfirmed { // the close that follows says why
			select {
			case e := <-closed:
				return e
			case <-time.After(10 * time.Second):
				return err
			}
		}
		if err != nil {
			return err
		}
		select {
		case e := <-closed:
			return e
		default:
			return nil
		}
	}
	publish := func(exchange, key string) func(*amqp.Channel) error {
		return func(ch *amqp.Channel) error {
			if err := ch.Confirm(false); err != nil {
				return err
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), exchange, key, false, false, amqp.Publishing{Body: []byte("m")})
			if err != nil {
				return err
			}
			if !dc.Wait() {
				return errNotConfirmed
			}
			return nil
		}
	}
	// Alice's own objects first, so the bind and consume rows have them.
	fatal(run(func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare("orders.x", "topic", true, false, false, false, nil)
	}))
	fatal(run(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare("orders.q", true, false, false, false, nil)
		return err
	}))

	for _, tc := range []struct {
		method  string
		allowed func(*amqp.Channel) error
		refused func(*amqp.Channel) error
	}{
		{"exchange.declare (configure)",
			func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("orders.x2", "direct", true, false, false, false, nil)
			},
			func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("payments.x2", "direct", true, false, false, false, nil)
			}},
		{"queue.declare (configure)",
			func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("orders.q2", true, false, false, false, nil)
				return err
			},
			func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("payments.q2", true, false, false, false, nil)
				return err
			}},
		{"queue.bind (write queue, read exchange)",
			func(ch *amqp.Channel) error { return ch.QueueBind("orders.q", "#", "orders.x", false, nil) },
			func(ch *amqp.Channel) error { return ch.QueueBind("orders.q", "#", "payments.x", false, nil) }},
		{"exchange.bind (write destination, read source)",
			func(ch *amqp.Channel) error { return ch.ExchangeBind("orders.x2", "#", "orders.x", false, nil) },
			func(ch *amqp.Channel) error { return ch.ExchangeBind("orders.x2", "#", "payments.x", false, nil) }},
		{"basic.publish (write exchange)", publish("orders.x", "k"), publish("payments.x", "k")},
		{"basic.get (read queue)",
			func(ch *amqp.Channel) error { _, _, err := ch.Get("orders.q", true); return err },
			func(ch *amqp.Channel) error { _, _, err := ch.Get("payments.q", true); return err }},
		{"basic.consume (read queue)",
			func(ch *amqp.Channel) error {
				_, err := ch.Consume("orders.q", "", false, false, false, false, nil)
				return err
			},
			func(ch *amqp.Channel) error {
				_, err := ch.Consume("payments.q", "", false, false, false, false, nil)
				return err
			}},
		{"queue.purge (read queue)",
			func(ch *amqp.Channel) error { _, err := ch.QueuePurge("orders.q", false); return err },
			func(ch *amqp.Channel) error { _, err := ch.QueuePurge("payments.q", false); return err }},
		{"queue.unbind (write queue, read exchange)",
			func(ch *amqp.Channel) error { return ch.QueueUnbind("orders.q", "#", "orders.x", nil) },
			func(ch *amqp.Channel) error { return ch.QueueUnbind("payments.q", "#", "payments.x", nil) }},
		{"queue.delete (configure)",
			func(ch *amqp.Channel) error { _, err := ch.QueueDelete("orders.q2", false, false, false); return err },
			func(ch *amqp.Channel) error { _, err := ch.QueueDelete("payments.q", false, false, false); return err }},
		{"exchange.delete (configure)",
			func(ch *amqp.Channel) error { return ch.ExchangeDelete("orders.x2", false, false) },
			func(ch *amqp.Channel) error { return ch.ExchangeDelete("payments.x", false, false) }},
	} {
		if err := run(tc.allowed); err != nil {
			t.Errorf("%s on orders.*: %v", tc.method, err)
		}
		if err := run(tc.refused); amqpErrCode(err) != amqp.AccessRefused {
			t.Errorf("%s on payments.*: %v, want ACCESS_REFUSED", tc.method, err)
		}
	}
	// What alice was refused is untouched.
	if _, err := g.QueueDeclarePassive("payments.q", true, false, false, false, nil); err != nil {
		t.Errorf("payments.q after alice's refused delete: %v", err)
	}
}
