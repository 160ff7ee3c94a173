package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TestRecoveryScenario drives Recovery with an injected clock through one
// failure episode of a partition: seen at once, first tried one interval
// later and only while the disk takes writes, backed off while the fault
// lasts, reopened when it clears, and a failure soon after continuing the
// same episode (logged once) with a longer backoff.
func TestRecoveryScenario(t *testing.T) {
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ffs := storage.NewFaultFS(storage.OSFS())
	b, err := New(Options{DataDir: dir, Storage: storage.Options{FS: ffs}, Logger: slog.New(slog.DiscardHandler)}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("t", 0)
	produce := func(seq int32) error {
		_, ap, err := p.Append(producerBatch(-1, -1, -1, 1))
		if err == nil {
			err = ap.Wait()
		}
		return err
	}
	if err := produce(0); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	writable := false
	rec := NewRecovery(RecoveryOptions{
		Broker: b, Meta: m, Interval: time.Second, MaxBackoff: 8 * time.Second,
		Now:      func() time.Time { return now },
		Writable: func() bool { return writable },
		Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	failures := func() int { return len(rec.Failures()) }

	ffs.FailSync(errors.New("EIO"))
	if produce(1) == nil {
		t.Fatal("append acknowledged through a failed fsync")
	}
	rec.Check()
	if f := rec.Failures(); len(f) != 1 || f[0].Kind != "partition" || f[0].Name != "t-0" || !strings.Contains(f[0].Err, "EIO") {
		t.Fatalf("failures after the fault: %+v", f)
	}

	steps := []struct {
		name      string
		advance   time.Duration
		writable  bool
		clear     bool
		wantFails int
	}{
		{"disk still full: no attempt", time.Second, false, false, 1},
		{"attempt while the fault lasts fails", 0, true, false, 1},
		{"fault clears, but the backoff (2s) has not run out", time.Second, true, true, 1},
		{"backoff over: reopened", time.Second, true, false, 0},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		writable = s.writable
		if s.clear {
			ffs.FailSync(nil)
		}
		rec.Check()
		if got := failures(); got != s.wantFails {
			t.Fatalf("%s: %d failed logs, want %d (%+v)", s.name, got, s.wantFails, rec.Failures())
		}
	}
	if err := produce(2); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}

	// It fails again soon after: the same episode, logged once, and the
	// next attempt waits longer than the first did.
	ffs.FailSync(errors.New("EIO"))
	produce(3)
	ffs.FailSync(nil)
	rec.Check()
	now = now.Add(time.Second)
	rec.Check()
	if failures() != 1 {
		t.Fatal("a failure right after recovery was retried after one interval")
	}
	now = now.Add(8 * time.Second)
	rec.Check()
	if failures() != 0 {
		t.Fatalf("not recovered after the backoff: %+v", rec.Failures())
	}
	if n := strings.Count(logs.String(), "log failed: refusing writes"); n != 1 {
		t.Errorf("failure logged %d times in one episode, want once:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "log recovered"); n != 2 {
		t.Errorf("recovery logged %d times, want 2 (once per reopen):\n%s", n, logs.String())
	}
}
