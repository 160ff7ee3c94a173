package queue

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzCore drives the core with a random sequence of commands (the
// fuzzer's bytes, read as a script) against the simulated log and checks,
// after every step, what must always hold: every message is exactly one of
// settled, unacked, requeued or not yet delivered; the counters agree; the
// ack record mirrors the settled set; nothing unacked is delivered again;
// first deliveries come in offset order. The configuration may change
// between steps, as a policy changes it. With no corpus it runs the seeds
// as a test.
func FuzzCore(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 2, 2, 7, 2})
	f.Add([]byte{0xff, 3, 0, 0, 0, 0, 1, 2, 5, 5, 2, 6, 8, 2, 9, 0, 2})
	f.Add([]byte{0x5a, 2, 0, 1, 0, 1, 0, 2, 4, 2, 4, 2, 4, 2, 10, 2, 11, 2})
	f.Add([]byte{0x13, 1, 0, 0, 0, 0, 0, 0, 8, 8, 8, 2, 1, 2, 3, 3, 2})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 4, 2, 12, 0x85, 8, 5, 2, 12, 2, 1, 3, 2, 7, 0, 2})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) < 2 {
			return
		}
		flags, limit := script[0], int64(script[1]%5)
		cfg := NoLimits()
		if flags&1 != 0 {
			cfg.MessageTTL = 10 * time.Millisecond
		}
		if flags&2 != 0 {
			cfg.MaxLength = limit
		}
		if flags&4 != 0 {
			cfg.MaxLengthBytes = limit * 3
		}
		cfg.Overflow = Overflow(flags >> 3 % 3)
		if flags&0x20 != 0 {
			cfg.DeliveryLimit = limit
		}
		cfg.SingleActiveConsumer = flags&0x40 != 0
		s := newSim(t, cfg, flags&0x80 != 0)
		var consumers []uint64
		var fakes []*fakeConsumer
		unacked := map[int64]bool{} // what the simulated clients hold
		lastFresh := int64(-1)
		check := func(step int) {
			t.Helper()
			for _, g := range s.got {
				if unacked[g.off] {
					t.Fatalf("step %d: offset %d delivered while unacked", step, g.off)
				}
				if !g.redelivered {
					if g.off <= lastFresh {
						t.Fatalf("step %d: first delivery of %d after %d", step, g.off, lastFresh)
					}
					lastFresh = g.off
				}
				if !s.acks.contains(g.off) {
					unacked[g.off] = true
				}
			}
			s.got = nil
			c := s.c
			var live, liveBytes int64
			requeued := map[int64]bool{}
			for _, off := range c.requeued {
				requeued[off] = true
			}
			for _, m := range s.disk {
				in := 0
				if c.settled.contains(m.off) {
					in++
				} else {
					live++
					liveBytes += m.m.Size()
				}
				if _, ok := c.unacked[m.off]; ok {
					in++
				}
				if requeued[m.off] {
					in++
				}
				if m.off >= c.next && !c.settled.contains(m.off) {
					in++
				}
				if in != 1 {
					t.Fatalf("step %d: offset %d is in %d states (settled %v, unacked %v, requeued %v, next %d)",
						step, m.off, in, c.settled.contains(m.off), c.unacked[m.off], requeued[m.off], c.next)
				}
				if s.acks.contains(m.off) != c.settled.contains(m.off) {
					t.Fatalf("step %d: ack record and settled set disagree at %d", step, m.off)
				}
			}
			if live != c.live || liveBytes != c.liveBytes {
				t.Fatalf("step %d: live %d/%d bytes, core says %d/%d", step, live, liveBytes, c.live, c.liveBytes)
			}
			for off := range unacked {
				if _, ok := c.unacked[off]; !ok {
					delete(unacked, off) // requeued, dead-lettered or purged-then-settled
				}
			}
		}
		pick := func(b byte) (int64, bool) {
			offs := slices.Sorted(maps.Keys(unacked))
			if len(offs) == 0 {
				return 0, false
			}
			return offs[int(b)%len(offs)], true
		}
		for i := 2; i < len(script); i++ {
			op, arg := script[i]%13, byte(0)
			if i+1 < len(script) {
				arg = script[i+1]
			}
			switch op {
			case 0:
				s.publish(strings.Repeat("m", 1+int(arg)%3), "")
			case 1:
				f, id := s.consume(fmt.Sprint("c", len(consumers)), int(arg%4), ConsumerOptions{NoAck: arg&0x10 != 0, Priority: int32(arg >> 6)})
				consumers, fakes = append(consumers, id), append(fakes, f)
			case 2:
				s.dispatch()
			case 3:
				if len(consumers) > 0 {
					k := int(arg) % len(consumers)
					s.c.removeConsumer(consumers[k], s.now)
					consumers, fakes = slices.Delete(consumers, k, k+1), slices.Delete(fakes, k, k+1)
				}
			case 4:
				if len(fakes) > 0 {
					fakes[int(arg)%len(fakes)].credit += 2
				}
			case 5:
				if off, ok := pick(arg); ok {
					s.c.ack([]int64{off})
					delete(unacked, off)
				}
			case 6:
				if off, ok := pick(arg); ok {
					s.c.requeue([]int64{off})
				}
			case 7:
				if off, ok := pick(arg); ok {
					s.c.discard([]int64{off}, Rejected)
				}
			case 8:
				s.advance(time.Duration(arg%16) * time.Millisecond)
			case 9:
				s.c.purge()
			case 10:
				if d, ok := s.get(arg&1 != 0); ok {
					s.got = append(s.got, got{to: "get", off: d.Offset, redelivered: d.Redelivered})
				}
			case 11:
				s.dlxFail = !s.dlxFail
			case 12: // a policy changed: a new configuration, live
				nc := s.c.cfg
				switch n := int64(arg>>2) % 4; arg % 4 {
				case 0:
					nc.MaxLength = n
				case 1:
					nc.MessageTTL = time.Duration(n) * time.Millisecond
				case 2:
					nc.MaxLength, nc.MaxLengthBytes, nc.MessageTTL, nc.DeliveryLimit = -1, -1, -1, -1
				case 3:
					nc.DeliveryLimit, nc.Overflow = n, Overflow(n%3)
				}
				s.c.setConfig(nc, arg&0x80 != 0)
			}
			s.perform()
			check(i)
		}
	})
}
