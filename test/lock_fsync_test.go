package test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeclarationsDoNotStallTraffic: while a queue declaration and a topic
// creation wait for the metadata log's fsync (held on purpose in a
// faultinject server), a publish with confirms to another queue and an
// acks=all produce to another topic complete: no lock that traffic needs
// is held across that fsync.
func TestDeclarationsDoNotStallTraffic(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	t.Cleanup(func() { b.fault(t, "release", "") }) // a failed test lets the broker stop
	fatal := fatalIf(t)
	b.createTopic(t, "busy", 1, nil)
	ch := b.channel(t)
	_, err := ch.QueueDeclare("busy", true, false, false, false, nil)
	fatal(err)
	fatal(ch.Confirm(false))
	prod := b.client(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	// Warm both paths up (metadata, connections) before holding the fsync.
	fatal(prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "busy", Value: []byte("warm")}).FirstErr())

	b.fault(t, "hold", "/meta/")
	declared, created, again := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() {
		dch, err := b.dial(t).Channel()
		if err == nil {
			_, err = dch.QueueDeclare("new-queue", true, false, false, false, nil)
		}
		declared <- err
	}()
	waitFor(t, 10*time.Second, "the declaration's fsync held", func() bool {
		return strings.Contains(b.fault(t, "status", ""), `"holding":1`)
	})
	// The same name declared again meanwhile waits for the first
	// declaration, then finds the queue it made.
	go func() {
		dch, err := b.dial(t).Channel()
		if err == nil {
			_, err = dch.QueueDeclare("new-queue", true, false, false, false, nil)
		}
		again <- err
	}()
	go func() {
		resp, err := b.admin(t).CreateTopic(ctxT(t, 60*time.Second), 1, 1, nil, "new-topic")
		if err == nil {
			err = resp.Err
		}
		created <- err
	}()
	select {
	case err := <-declared:
		t.Fatalf("queue.declare answered (%v) while its fsync is held", err)
	case err := <-created:
		t.Fatalf("CreateTopics answered (%v) while the metadata fsync is held", err)
	case err := <-again:
		t.Fatalf("a second queue.declare of the same name answered (%v) before the first", err)
	case <-time.After(500 * time.Millisecond):
	}

	// Traffic to what exists goes on meanwhile.
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "", "busy", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("during")})
	fatal(err)
	if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
		t.Fatalf("publish to another queue during the held declaration: %v %v", ok, err)
	}
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "busy", Value: []byte("during")}).FirstErr(); err != nil {
		t.Fatalf("produce to another topic during the held creation: %v", err)
	}
	select {
	case err := <-declared:
		t.Fatalf("queue.declare answered (%v) before its fsync", err)
	default:
	}

	b.fault(t, "release", "")
	for what, c := range map[string]chan error{"queue.declare": declared, "CreateTopics": created, "the second queue.declare": again} {
		select {
		case err := <-c:
			if err != nil {
				t.Errorf("%s after the fsync: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s not answered after the fsync was released", what)
		}
	}
	if _, err := b.channel(t).QueueDeclarePassive("new-queue", true, false, false, false, nil); err != nil {
		t.Errorf("new-queue: %v", err)
	}
}

// TestDefinitionChangesDoNotStallTraffic: the same for every other kind
// of definition change, one at a time. While each waits for the metadata
// fsync, a confirmed publish and an acks=all produce to what exists
// complete; the change is answered only after the fsync, and has taken
// effect.
func TestDefinitionChangesDoNotStallTraffic(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	t.Cleanup(func() { b.fault(t, "release", "") }) // a failed test lets the broker stop
	fatal := fatalIf(t)
	for _, name := range []string{"busy", "doomed", "grown", "tuned"} {
		b.createTopic(t, name, 1, nil)
	}
	setup := b.channel(t)
	for _, q := range []string{"busy", "victim", "bound"} {
		_, err := setup.QueueDeclare(q, true, false, false, false, nil)
		fatal(err)
	}
	fatal(setup.ExchangeDeclare("x-old", "fanout", true, false, false, false, nil))
	fatal(setup.QueueBind("bound", "k", "amq.direct", false, nil))
	ch := b.channel(t)
	fatal(ch.Confirm(false))
	prod := b.client(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	fatal(prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "busy", Value: []byte("warm")}).FirstErr())
	adm := b.admin(t)
	amqpOp := func(op func(*amqp.Channel) error) func() error {
		return func() error {
			c, err := b.dial(t).Channel()
			if err != nil {
				return err
			}
			return op(c)
		}
	}

	changes := []struct {
		name  string
		do    func() error
		check func() error // that the change took effect
	}{
		{"queue.delete", amqpOp(func(c *amqp.Channel) error { _, err := c.QueueDelete("victim", false, false, false); return err }),
			func() error {
				if _, err := b.channel(t).QueueDeclarePassive("victim", true, false, false, false, nil); err == nil {
					return errors.New("victim still exists")
				}
				return nil
			}},
		{"exchange.declare", amqpOp(func(c *amqp.Channel) error {
			return c.ExchangeDeclare("x-new", "topic", true, false, false, false, nil)
		}),
			func() error {
				return b.channel(t).ExchangeDeclarePassive("x-new", "topic", true, false, false, false, nil)
			}},
		{"exchange.delete", amqpOp(func(c *amqp.Channel) error { return c.ExchangeDelete("x-old", false, false) }),
			func() error {
				if b.channel(t).ExchangeDeclarePassive("x-old", "fanout", true, false, false, false, nil) == nil {
					return errors.New("x-old still exists")
				}
				return nil
			}},
		{"queue.bind", amqpOp(func(c *amqp.Channel) error { return c.QueueBind("busy", "k", "amq.topic", false, nil) }), nil},
		{"queue.unbind", amqpOp(func(c *amqp.Channel) error { return c.QueueUnbind("bound", "k", "amq.direct", nil) }), nil},
		{"DeleteTopics", func() error { _, err := adm.DeleteTopic(ctxT(t, 60*time.Second), "doomed"); return err },
			func() error {
				td, err := adm.ListTopics(ctxT(t, 10*time.Second), "doomed")
				if err == nil && td.Has("doomed") && td["doomed"].Err == nil {
					return errors.New("doomed still listed")
				}
				return nil
			}},
		{"CreatePartitions", func() error {
			rs, err := adm.CreatePartitions(ctxT(t, 60*time.Second), 1, "grown")
			if err == nil {
				err = rs.Error()
			}
			return err
		}, func() error {
			td, err := adm.ListTopics(ctxT(t, 10*time.Second), "grown")
			if err != nil {
				return err
			}
			if n := len(td["grown"].Partitions); n != 2 {
				return fmt.Errorf("grown has %d partitions, want 2", n)
			}
			return nil
		}},
		{"AlterConfigs", func() error {
			v := "3600000"
			rs, err := adm.AlterTopicConfigs(ctxT(t, 60*time.Second), []kadm.AlterConfig{{Name: "retention.ms", Value: &v}}, "tuned")
			if err == nil && len(rs) == 1 {
				err = rs[0].Err
			}
			return err
		}, nil},
	}
	for _, c := range changes {
		b.fault(t, "hold", "/meta/")
		done := make(chan error, 1)
		go func() { done <- c.do() }()
		waitFor(t, 10*time.Second, c.name+"'s fsync held", func() bool {
			return strings.Contains(b.fault(t, "status", ""), `"holding":1`)
		})
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "", "busy", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("during " + c.name)})
		fatal(err)
		if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
			t.Fatalf("publish during a held %s: %v %v", c.name, ok, err)
		}
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "busy", Value: []byte("during " + c.name)}).FirstErr(); err != nil {
			t.Fatalf("produce during a held %s: %v", c.name, err)
		}
		select {
		case err := <-done:
			t.Fatalf("%s answered (%v) before its fsync", c.name, err)
		default:
		}
		b.fault(t, "release", "")
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s not answered after the fsync was released", c.name)
		}
		if c.check != nil {
			if err := c.check(); err != nil {
				t.Errorf("after %s: %v", c.name, err)
			}
		}
	}
}
