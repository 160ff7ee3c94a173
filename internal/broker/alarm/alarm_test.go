package alarm

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// fake is a sampler whose next value the test sets.
type fake struct {
	v   int64
	err error
}

func (f *fake) sample() (int64, error) { return f.v, f.err }

func newTestMonitor(mem, disk *fake, memLimit, diskLimit int64) *Monitor {
	clock := time.Unix(1000, 0)
	o := Options{MemoryLimit: memLimit, DiskFreeLimit: diskLimit, Now: func() time.Time { return clock }}
	if mem != nil {
		o.Memory = mem.sample
	}
	if disk != nil {
		o.DiskFree = disk.sample
	}
	return New(o)
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestAlarmsRaiseAndClear(t *testing.T) {
	mem, disk := &fake{v: 100}, &fake{v: 10_000}
	m := newTestMonitor(mem, disk, 1000, 5000)

	steps := []struct {
		name       string
		mem, disk  int64
		wantReason string
		wantChange bool
	}{
		{"both fine", 100, 10_000, "", false},
		{"memory at the watermark is not over it", 1000, 10_000, "", false},
		{"memory over", 1001, 10_000, "low on memory", true},
		{"memory still over: no new change", 2000, 10_000, "low on memory", false},
		{"disk low too", 2000, 4999, "low on memory and disk", true},
		{"memory clears, disk still low", 10, 4999, "low on disk", true},
		{"disk exactly at the limit is not below it", 10, 5000, "", true},
		{"fine again: nothing changes", 10, 6000, "", false},
	}
	for _, s := range steps {
		_, ch := m.Blocked()
		mem.v, disk.v = s.mem, s.disk
		m.Check()
		reason, _ := m.Blocked()
		if reason != s.wantReason {
			t.Fatalf("%s: reason %q, want %q", s.name, reason, s.wantReason)
		}
		if closed(ch) != s.wantChange {
			t.Fatalf("%s: change signalled %v, want %v", s.name, closed(ch), s.wantChange)
		}
	}
}

func TestActiveAndStatus(t *testing.T) {
	mem, disk := &fake{v: 3000}, &fake{v: 10}
	m := newTestMonitor(mem, disk, 1000, 5000)
	if s := m.Status(); s.MemoryUsed != -1 || s.DiskFree != -1 || s.MemoryLimit != 1000 || s.DiskFreeLimit != 5000 || len(s.Alarms) != 0 {
		t.Fatalf("status before any sample: %+v", s)
	}
	m.Check()
	a := m.Active()
	if len(a) != 2 || a[0].Resource != Memory || a[1].Resource != Disk {
		t.Fatalf("active %+v", a)
	}
	if a[0].Value != 3000 || a[0].Limit != 1000 || a[1].Value != 10 || a[1].Limit != 5000 || !a[0].Since.Equal(time.Unix(1000, 0)) {
		t.Fatalf("active %+v", a)
	}
	mem.v = 4000
	m.Check()
	if s := m.Status(); s.MemoryUsed != 4000 || s.DiskFree != 10 || len(s.Alarms) != 2 || s.Alarms[0].Value != 4000 {
		t.Fatalf("status %+v", s)
	}
}

func TestSampleErrorKeepsState(t *testing.T) {
	disk := &fake{v: 10}
	m := newTestMonitor(nil, disk, 0, 5000)
	m.Check()
	if r, _ := m.Blocked(); r != "low on disk" {
		t.Fatalf("reason %q", r)
	}
	_, ch := m.Blocked()
	disk.v, disk.err = 1<<40, errors.New("statfs: input/output error")
	m.Check()
	if r, _ := m.Blocked(); r != "low on disk" || closed(ch) {
		t.Fatalf("a failed sample changed the state: %q", r)
	}
	disk.err = nil
	m.Check()
	if r, _ := m.Blocked(); r != "" || !closed(ch) {
		t.Fatalf("recovered sample did not clear: %q", r)
	}
}

func TestZeroWatermarkBlocksAtOnceAndUnwatchedNever(t *testing.T) {
	// RabbitMQ's watermark 0: any memory use is over it.
	m := newTestMonitor(&fake{v: 1}, nil, 0, 0)
	m.Check()
	if r, _ := m.Blocked(); r != "low on memory" {
		t.Fatalf("reason %q", r)
	}
	if s := m.Status(); s.DiskFree != -1 || s.DiskFreeLimit != -1 {
		t.Fatalf("unwatched disk reported: %+v", s)
	}
	// A disk limit of 0 is never crossed.
	m = newTestMonitor(nil, &fake{v: 0}, 0, 0)
	m.Check()
	if r, _ := m.Blocked(); r != "" {
		t.Fatalf("reason %q", r)
	}
}

func TestRealSamplers(t *testing.T) {
	rss, err := ProcessMemory()
	if err != nil || rss <= 0 {
		t.Fatalf("ProcessMemory = %d, %v", rss, err)
	}
	if runtime.GOOS == "linux" && TotalMemory() < rss {
		t.Fatalf("TotalMemory %d below this process's RSS %d", TotalMemory(), rss)
	}
	if s := DiskFree(t.TempDir()); s != nil {
		if free, err := s(); err != nil || free <= 0 {
			t.Fatalf("DiskFree = %d, %v", free, err)
		}
		if _, err := DiskFree("/nonexistent/dir")(); err == nil {
			t.Fatal("statfs of a missing directory succeeded")
		}
	}
}
