package queue

import (
	"strings"
	"testing"
)

// A queue's memory estimate counts what it holds in RAM: it grows with
// unacked deliveries and the messages read ahead, and comes back down
// when they are settled; a backlog on disk costs next to nothing.
func TestMemoryBytes(t *testing.T) {
	q := openQueue(t, t.TempDir(), NoLimits(), nil)
	empty := q.MemoryBytes()
	if empty <= 0 || empty > 64<<10 {
		t.Fatalf("an empty queue: %d bytes", empty)
	}
	body := strings.Repeat("x", 10_000)
	for range 20 {
		publish(t, q, body)
	}
	c := newConsumer(20)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for range 20 {
		offs = append(offs, c.next(t).Offset)
	}
	busy := q.MemoryBytes()
	if busy < empty+20*16 {
		t.Fatalf("20 unacked deliveries: %d bytes, empty %d", busy, empty)
	}
	q.Ack(offs...)
	settled := q.MemoryBytes()
	if settled >= busy || settled > empty+20_000 {
		t.Fatalf("after the acks: %d bytes (busy %d, empty %d)", settled, busy, empty)
	}
}
