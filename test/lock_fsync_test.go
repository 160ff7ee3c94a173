package test

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeclarationsDoNotStallTraffic: while a queue declaration and a topic
// creation wait for the metadata log's fsync (held on purpose in a
// faultinject server), a publish with confirms to another queue and an
// acks=all produce to another topic complete: no lock that traffic needs
// is held across that fsync.
func TestDeclarationsDoNotStallTraffic(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
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
