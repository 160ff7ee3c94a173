package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// TestQuorumPublishThroughClosedLocalQueue: a quorum queue's handle keeps
// the queue it runs while this node leads, for publishes to check against;
// when the leadership moves, that queue closes. A publish that read it
// just before must not come back as one to a deleted queue (routing takes
// that for a queue deleted since, and the message is confirmed as
// unroutable: a confirmed message lost, as a fault-schedule trial found
// when a paused leader resumed). Here no member is reachable, so the
// publish is refused (a nack, which the publisher sends again).
func TestQuorumPublishThroughClosedLocalQueue(t *testing.T) {
	_, r := newCore(t)
	q, err := queue.Open(queue.Options{Name: "q", Dir: t.TempDir(), Config: queue.NoLimits()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	h := &quorumHandle{r: r, topic: "__sluice_quorum_none"}
	h.published.Store(&quorumPublishState{local: q})
	_, err = h.publish(&message.Message{RoutingKey: "q", Body: []byte("m")}, time.Now())
	if errors.Is(err, queue.ErrDeleted) {
		t.Fatal("a publish through the queue closed as its leadership moved came back as one to a deleted queue")
	}
	if !errors.Is(err, queue.ErrRejected) {
		t.Fatalf("publish: %v, want a refusal", err)
	}
	// The handle itself closed (the queue deleted): as before.
	h.published.Store(&quorumPublishState{closed: true})
	if _, err := h.publish(&message.Message{RoutingKey: "q", Body: []byte("m")}, time.Now()); !errors.Is(err, queue.ErrDeleted) {
		t.Fatalf("publish through a closed handle: %v, want ErrDeleted", err)
	}
}
