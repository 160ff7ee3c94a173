package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// waitFor polls cond until it holds, failing after five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A policy change reaches a queue that already holds messages: a lower
// max-length trims its head at once, a dead-letter exchange set later
// receives what a new TTL expires.
func TestSetConfigAppliesToWhatTheQueueHolds(t *testing.T) {
	var mu sync.Mutex
	var dead []Dead
	q := openQueue(t, t.TempDir(), NoLimits(), func(_ *Queue, d []Dead) error {
		mu.Lock()
		dead = append(dead, d...)
		mu.Unlock()
		return nil
	})
	publish(t, q, "1", "2", "3", "4", "5")

	cfg := NoLimits()
	cfg.MaxLength = 3
	q.SetConfig(cfg)
	waitFor(t, "max-length 3", func() bool { r, _, _ := q.Counts(); return r == 3 })
	mu.Lock()
	if len(dead) != 0 {
		t.Errorf("dead-lettered without a dead-letter exchange: %d", len(dead))
	}
	mu.Unlock()
	if got := q.Config().MaxLength; got != 3 {
		t.Errorf("Config().MaxLength = %d", got)
	}

	cfg.MaxLength = -1
	cfg.DeadLetter, cfg.DeadLetterExchange = true, "dlx"
	cfg.MessageTTL = time.Millisecond
	q.SetConfig(cfg)
	waitFor(t, "the old heads to expire", func() bool {
		r, _, _ := q.Counts()
		mu.Lock()
		defer mu.Unlock()
		return r == 0 && len(dead) == 3
	})
	for i, want := range []string{"3", "4", "5"} {
		if dead[i].Reason != Expired || string(dead[i].Message.Body) != want {
			t.Errorf("dead[%d] = %s %q, want expired %s", i, dead[i].Reason, dead[i].Message.Body, want)
		}
	}
}

func TestPrioritySetConfigTrims(t *testing.T) {
	p, err := OpenPriority(Options{Name: "p", Dir: t.TempDir(), Config: NoLimits()}, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for i := range 6 {
		m := msgWithPriority(uint8(i % 3))
		app, err := p.Publish(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := NoLimits()
	cfg.MaxLength = 2
	p.SetConfig(cfg)
	waitFor(t, "max-length 2", func() bool { r, _, _ := p.Counts(); return r == 2 })
}

func msgWithPriority(p uint8) *message.Message {
	m := &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte{p}}
	m.Properties.Priority, m.Properties.Present = p, message.PropPriority
	return m
}

// A stream given a size limit while it runs (a policy's
// max-length-bytes) enforces it at once, and rolls segments at a new
// segment size.
func TestStreamSetConfigEnforcesRetention(t *testing.T) {
	s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: -1, SegmentBytes: 1000}, nil)
	body := string(make([]byte, 500))
	for range 40 {
		publishStream(t, s, body)
	}
	if s.Log().StartOffset() != 0 {
		t.Fatal("retention ran without a limit")
	}
	s.SetStreamConfig(StreamConfig{MaxBytes: 4000, SegmentBytes: 1000})
	if got := s.StreamConfig().MaxBytes; got != 4000 {
		t.Fatalf("StreamConfig().MaxBytes = %d", got)
	}
	waitFor(t, "retention to the new limit", func() bool {
		return s.Log().StartOffset() > 0 && s.Log().Size() <= 4000+1000
	})
}
