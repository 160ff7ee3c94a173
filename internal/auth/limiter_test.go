package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestFailureLimiter(t *testing.T) {
	l := &FailureLimiter{Burst: 3, Refill: 10 * time.Second, MaxDelay: 35 * time.Second}
	t0 := time.Unix(1000, 0)
	a, b := tcp("192.0.2.1"), tcp("192.0.2.2")
	for i := range 3 {
		if d := l.Failed(a, t0); d != 0 {
			t.Fatalf("failure %d within the burst delayed %v", i, d)
		}
	}
	// Past the burst, each failure waits one Refill longer, whatever
	// the port.
	aOtherPort := *a
	aOtherPort.Port = 1
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 35 * time.Second, 35 * time.Second} {
		if d := l.Failed(&aOtherPort, t0); d != want {
			t.Errorf("failure %d past the burst: delay %v, want %v", i+1, d, want)
		}
	}
	if d := l.Failed(b, t0); d != 0 {
		t.Errorf("one address's failures delay another's: %v", d)
	}
	if d := l.Failed(tcp("::ffff:192.0.2.3"), t0); d != 0 {
		t.Errorf("a fresh mapped address delayed: %v", d)
	}
	// The deficit is capped at MaxDelay/Refill (3.5 failures) and refills:
	// after 40s the bucket holds 0.5, so the next failure waits 5s.
	if d := l.Failed(a, t0.Add(40*time.Second)); d != 5*time.Second {
		t.Errorf("after 40s: delay %v, want 5s", d)
	}
	if d := l.Failed(a, t0.Add(time.Hour)); d != 0 {
		t.Errorf("an hour later: delay %v, want none", d)
	}
	var zero *FailureLimiter
	if zero.Failed(a, t0) != 0 || (&FailureLimiter{}).Failed(a, t0) != 0 {
		t.Error("a nil or zero limiter delays")
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	l := &FailureLimiter{Burst: 1, Refill: time.Second, MaxAddrs: 100}
	t0 := time.Unix(0, 0)
	for i := range 1000 {
		l.Failed(tcp(fmt.Sprintf("10.0.%d.%d", i/256, i%256)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.Tracked(); n > 100 {
		t.Errorf("tracks %d addresses, bound 100", n)
	}
	// The newest address kept its record: a second failure is delayed.
	last := tcp("10.0.3.231")
	if d := l.Failed(last, t0.Add(1000*time.Millisecond)); d == 0 {
		t.Error("the newest address lost its record")
	}
}
