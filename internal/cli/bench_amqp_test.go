package cli

import "testing"

// Confirms settle each outstanding tag once, whether acked singly, out of
// order or by a multiple ack, and never a newer message sharing a slot.
func TestConfirmRange(t *testing.T) {
	b := &amqpBench{}
	p := &amqpPublisher{window: make(chan struct{}, 4), slots: make([]confirmSlot, 4), low: 1}
	publish := func(tag uint64) {
		p.window <- struct{}{}
		p.slots[tag%4].at.Store(int64(tag))
		p.slots[tag%4].tag.Store(tag)
		p.published++
	}
	for tag := uint64(1); tag <= 4; tag++ {
		publish(tag)
	}
	b.confirmRange(p, 1, false, true) // tag 1 singly
	publish(5)                        // reuses tag 1's slot
	b.confirmRange(p, 3, false, true) // out of order
	b.confirmRange(p, 4, true, true)  // covers 2 and 4, not 5 in tag 1's slot
	if got := b.confirmed.Load(); got != 4 {
		t.Fatalf("confirmed %d after acks up to 4, want 4", got)
	}
	b.confirmRange(p, 3, false, true) // a repeat is ignored
	b.confirmRange(p, 5, true, false) // nack 5
	if b.confirmed.Load() != 4 || b.nacked.Load() != 1 || p.settled.Load() != 5 || len(p.window) != 0 {
		t.Errorf("confirmed %d nacked %d settled %d window %d, want 4 1 5 0",
			b.confirmed.Load(), b.nacked.Load(), p.settled.Load(), len(p.window))
	}
}

func TestAckPolicy(t *testing.T) {
	type ack struct {
		tag      uint64
		multiple bool
	}
	run := func(every uint64, n uint64) (acks []ack, rest uint64) {
		p := &ackPolicy{every: every}
		for tag := uint64(1); tag <= n; tag++ {
			if a, m := p.next(tag); a > 0 {
				acks = append(acks, ack{a, m})
			}
		}
		return acks, p.rest()
	}
	if acks, rest := run(1, 3); len(acks) != 3 || acks[2] != (ack{3, false}) || rest != 0 {
		t.Errorf("every 1: %v, rest %d", acks, rest)
	}
	if acks, rest := run(3, 7); len(acks) != 2 || acks[0] != (ack{3, true}) || acks[1] != (ack{6, true}) || rest != 7 {
		t.Errorf("every 3: %v, rest %d", acks, rest)
	}
}
