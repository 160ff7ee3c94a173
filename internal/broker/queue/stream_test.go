package queue

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// take returns the next n deliveries' bodies and offsets.
func (c *testConsumer) take(t *testing.T, n int) (bodies []string, offsets []int64) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case d := <-c.got:
			if d.Queue != nil {
				t.Fatalf("stream delivery names a work queue")
			}
			bodies = append(bodies, string(d.Message.Body))
			offsets = append(offsets, d.Offset)
		case <-time.After(5 * time.Second):
			t.Fatalf("delivery %d of %d did not come (got %v)", i+1, n, bodies)
		}
	}
	return bodies, offsets
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func openStream(t *testing.T, dir string, cfg StreamConfig, now func() time.Time) *Stream {
	t.Helper()
	s, err := OpenStream(StreamOptions{Name: "s", Dir: dir, Config: cfg, Now: now, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func publishStream(t *testing.T, s *Stream, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		app, err := s.Publish(&message.Message{Exchange: "", RoutingKey: "s", Body: []byte(b)})
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestStreamStarts(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: -1}, clk.Now)
	publishStream(t, s, "a", "b")
	clk.Set(time.Unix(1_000_100, 0))
	publishStream(t, s, "c", "d")

	cases := []struct {
		name  string
		start StreamStart
		want  []string
		first int64
	}{
		{"first", StreamStart{Kind: StartFirst}, []string{"a", "b", "c", "d"}, 0},
		{"last", StreamStart{Kind: StartLast}, []string{"d"}, 3},
		{"offset 2", StreamStart{Kind: StartOffset, Offset: 2}, []string{"c", "d"}, 2},
		{"offset past the end", StreamStart{Kind: StartOffset, Offset: 99}, nil, 4},
		{"timestamp between", StreamStart{Kind: StartTimestamp, Time: time.Unix(1_000_050, 0)}, []string{"c", "d"}, 2},
		{"timestamp before all", StreamStart{Kind: StartTimestamp, Time: time.Unix(0, 0)}, []string{"a", "b", "c", "d"}, 0},
		{"timestamp after all", StreamStart{Kind: StartTimestamp, Time: time.Unix(2_000_000, 0)}, nil, 4},
		{"next", StreamStart{Kind: StartNext}, nil, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsumer(100)
			id, err := s.AddStreamConsumer(c, tc.start, false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.RemoveConsumer(id)
			got, offs := c.take(t, len(tc.want))
			if !eq(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if len(offs) > 0 && offs[0] != tc.first {
				t.Fatalf("first offset %d, want %d", offs[0], tc.first)
			}
			c.none(t)
		})
	}
}

func TestStreamConsumersReadIndependentlyAndCredit(t *testing.T) {
	s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: -1}, nil)
	a, b := newConsumer(2), newConsumer(100)
	if _, err := s.AddStreamConsumer(a, StreamStart{Kind: StartNext}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddStreamConsumer(b, StreamStart{Kind: StartNext}, false); err != nil {
		t.Fatal(err)
	}
	publishStream(t, s, "1", "2", "3", "4")
	if got, _ := b.take(t, 4); !eq(got, []string{"1", "2", "3", "4"}) {
		t.Fatalf("b got %v", got)
	}
	// a has credit for two; the rest waits for credit, then follows.
	if got, _ := a.take(t, 2); !eq(got, []string{"1", "2"}) {
		t.Fatalf("a got %v", got)
	}
	a.none(t)
	a.grant(5, s)
	if got, _ := a.take(t, 2); !eq(got, []string{"3", "4"}) {
		t.Fatalf("a after credit got %v", got)
	}
	if ready, unacked, n := s.Counts(); ready != 4 || unacked != 0 || n != 2 {
		t.Fatalf("counts %d/%d/%d, want 4 messages kept, 0 unacked, 2 consumers", ready, unacked, n)
	}
	// A late consumer from the first message still sees everything.
	c := newConsumer(100)
	if _, err := s.AddStreamConsumer(c, StreamStart{Kind: StartFirst}, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.take(t, 4); !eq(got, []string{"1", "2", "3", "4"}) {
		t.Fatalf("late consumer got %v", got)
	}
	// Exclusive is refused while others read.
	if _, err := s.AddStreamConsumer(newConsumer(1), StreamStart{}, true); err != ErrExclusiveConsumer {
		t.Fatalf("exclusive consumer on a stream with consumers: %v", err)
	}
}

func TestStreamReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStream(StreamOptions{Name: "s", Dir: dir, Config: StreamConfig{MaxBytes: -1}})
	if err != nil {
		t.Fatal(err)
	}
	publishStream(t, s, "x", "y")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStream(t, dir, StreamConfig{MaxBytes: -1}, nil)
	publishStream(t, s, "z")
	c := newConsumer(10)
	if _, err := s.AddStreamConsumer(c, StreamStart{Kind: StartFirst}, false); err != nil {
		t.Fatal(err)
	}
	got, offs := c.take(t, 3)
	if !eq(got, []string{"x", "y", "z"}) || offs[2] != 2 {
		t.Fatalf("after reopen got %v at %v", got, offs)
	}
}

func TestStreamRetentionBySizeAndAge(t *testing.T) {
	body := string(make([]byte, 500))
	t.Run("bytes", func(t *testing.T) {
		s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: 4000, SegmentBytes: 1000}, nil)
		for i := 0; i < 40; i++ {
			publishStream(t, s, body)
		}
		n, err := s.EnforceRetention()
		if err != nil || n == 0 {
			t.Fatalf("retention deleted %d segments (err %v), want some", n, err)
		}
		if sz := s.Log().Size(); sz > 4000+1000 {
			t.Fatalf("log is %d bytes after retention, want at most the limit plus one segment", sz)
		}
		start := s.Log().StartOffset()
		if start == 0 {
			t.Fatal("log start did not move")
		}
		// "first" now means the first message retention kept.
		c := newConsumer(100)
		if _, err := s.AddStreamConsumer(c, StreamStart{Kind: StartFirst}, false); err != nil {
			t.Fatal(err)
		}
		_, offs := c.take(t, 1)
		if offs[0] != start {
			t.Fatalf("first delivered offset %d, want the log start %d", offs[0], start)
		}
	})
	t.Run("age", func(t *testing.T) {
		clk := &fakeClock{t: time.Unix(1_000_000, 0)}
		s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: -1, MaxAge: time.Hour, SegmentBytes: 1000}, clk.Now)
		for i := 0; i < 10; i++ {
			publishStream(t, s, body)
		}
		if n, _ := s.EnforceRetention(); n != 0 {
			t.Fatalf("retention deleted %d fresh segments", n)
		}
		clk.Set(clk.Now().Add(2 * time.Hour))
		publishStream(t, s, "new")
		if n, err := s.EnforceRetention(); err != nil || n == 0 {
			t.Fatalf("retention after max-age deleted %d segments (err %v)", n, err)
		}
		c := newConsumer(100)
		if _, err := s.AddStreamConsumer(c, StreamStart{Kind: StartFirst}, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.take(t, 1); got[0] != "new" {
			t.Fatalf("first message after age retention has %d bytes, want the new one", len(got[0]))
		}
	})
}

func TestStreamReaderSkipsPastRetention(t *testing.T) {
	s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: 2000, SegmentBytes: 1000}, nil)
	body := string(make([]byte, 500))
	publishStream(t, s, body)
	// A consumer without credit sits at offset 0 while retention passes it.
	c := newConsumer(0)
	if _, err := s.AddStreamConsumer(c, StreamStart{Kind: StartFirst}, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		publishStream(t, s, body)
	}
	if n, err := s.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("retention: %d, %v", n, err)
	}
	start := s.Log().StartOffset()
	c.grant(1, s)
	_, offs := c.take(t, 1)
	if offs[0] != start {
		t.Fatalf("reader resumed at %d, want the new log start %d", offs[0], start)
	}
}

func TestStreamDeleteCancelsConsumers(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStream(StreamOptions{Name: "s", Dir: dir, Config: StreamConfig{MaxBytes: -1}})
	if err != nil {
		t.Fatal(err)
	}
	c := newConsumer(1)
	if _, err := s.AddStreamConsumer(c, StreamStart{}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("consumer not told of the delete")
	}
	if _, err := s.Publish(&message.Message{Body: []byte("late")}); err != ErrDeleted {
		t.Fatalf("publish after delete: %v", err)
	}
}
