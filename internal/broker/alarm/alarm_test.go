package alarm

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
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

const mb = 1 << 20

// syncDisk is a free-space sampler safe to call from Run's goroutine: a
// file system whose free space the test sets and counts the samples of.
type syncDisk struct {
	free    atomic.Int64
	samples atomic.Int64
	during  func() // called while the sample is taken, if set
}

func (d *syncDisk) sample() (int64, error) {
	d.samples.Add(1)
	if d.during != nil {
		d.during()
	}
	return d.free.Load(), nil
}

func newDiskMonitor(d *syncDisk, limit int64) *Monitor {
	return New(Options{DiskFreeLimit: limit, DiskFree: d.sample, Interval: time.Hour,
		Now: func() time.Time { return time.Unix(1000, 0) }})
}

// pending reports whether Wrote asked Run for a disk sample, and takes
// the request.
func pending(m *Monitor) bool {
	select {
	case <-m.wake:
		return true
	default:
		return false
	}
}

// The issue this fixes: a fast writer between two samples. With a sample
// due only in an hour, the writes alone get the disk sampled and the
// alarm raised; a later sample with room clears it as usual.
func TestWroteRaisesDiskAlarmBeforeNextTick(t *testing.T) {
	d := &syncDisk{}
	d.free.Store(500 * mb)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); m.Run(stop) }()
	defer func() { close(stop); <-done }()

	_, ch := m.Blocked()
	for range 45 { // 450 MB in 10 MB group commits, taking real space
		d.free.Add(-10 * mb)
		m.Wrote(10 * mb)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no alarm after 450 MB written of 500 MB free; %d samples", d.samples.Load())
	}
	if r, _ := m.Blocked(); r != "low on disk" {
		t.Fatalf("reason %q", r)
	}
	// Run samples while the writes go on: somewhere from the crossing
	// (90 MB) to the end (50 MB).
	if a := m.Active(); len(a) != 1 || a[0].Value > 90*mb || a[0].Value < 50*mb || a[0].Limit != 100*mb {
		t.Fatalf("active %+v: the alarm must carry the sample", a)
	}
	if n := d.samples.Load(); n != 2 {
		t.Fatalf("%d samples, want the first and the one the crossing asked for", n)
	}

	_, ch = m.Blocked()
	d.free.Store(1 << 30)
	m.Check()
	if r, _ := m.Blocked(); r != "" || !closed(ch) {
		t.Fatalf("a sample with room did not clear the alarm: %q", r)
	}
	if s := m.Status(); s.DiskFree != 1<<30 {
		t.Fatalf("status %+v: the sample restarts the estimate", s)
	}
}

// The estimate only asks for a sample, once per sample, at the call
// that takes it below the limit; the sample decides the alarm.
func TestWroteAsksForOneSampleWhenEstimateCrossesLimit(t *testing.T) {
	d := &syncDisk{}
	d.free.Store(500 * mb)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	for range 40 {
		m.Wrote(10 * mb)
	}
	if pending(m) {
		t.Fatal("asked for a sample with the estimate at the limit, not below it")
	}
	if s := m.Status(); s.DiskFree != 100*mb || s.DiskFreeLimit != 100*mb {
		t.Fatalf("status %+v, want the estimate", s)
	}
	m.Wrote(1)
	if !pending(m) {
		t.Fatal("no sample asked for with the estimate below the limit")
	}
	m.Wrote(10 * mb)
	if pending(m) {
		t.Fatal("asked again before the next sample")
	}
	if r, _ := m.Blocked(); r != "" {
		t.Fatalf("the estimate raised the alarm by itself: %q", r)
	}

	// The writes took no new space (preallocated, or overwrites): the
	// sample shows room, keeps the alarm off and restarts the estimate.
	m.Check()
	if r, _ := m.Blocked(); r != "" {
		t.Fatalf("reason %q", r)
	}
	if s := m.Status(); s.DiskFree != 500*mb {
		t.Fatalf("status %+v", s)
	}
	m.Wrote(400 * mb)
	if pending(m) {
		t.Fatal("the estimate did not restart from the sample")
	}
	m.Wrote(1)
	if !pending(m) {
		t.Fatal("no sample asked for after the restart")
	}
	// Far past the limit, the estimate shows 0, not a negative value
	// that would read as "not sampled".
	m.Wrote(1 << 40)
	if s := m.Status(); s.DiskFree != 0 {
		t.Fatalf("status %+v", s)
	}
}

// A sample exactly at the limit raises nothing; the next byte written
// takes the estimate below it.
func TestWroteFromSampleAtLimit(t *testing.T) {
	d := &syncDisk{}
	d.free.Store(100 * mb)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	if r, _ := m.Blocked(); r != "" || pending(m) {
		t.Fatalf("reason %q", r)
	}
	m.Wrote(1)
	if !pending(m) {
		t.Fatal("no sample asked for")
	}
	// Already below: an alarm raised by the sample needs no more.
	d.free.Store(50 * mb)
	m.Check()
	m.Wrote(10 * mb)
	if r, _ := m.Blocked(); r != "low on disk" {
		t.Fatalf("reason %q", r)
	}
	if pending(m) {
		t.Fatal("asked for a sample already below the limit")
	}
}

// Bytes written while a sample is taken stay counted against it: the
// call that crossed the limit then compared against the older sample,
// so the new one asks for another sample itself.
func TestWroteDuringSample(t *testing.T) {
	d := &syncDisk{}
	d.free.Store(500 * mb)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	d.during = func() { m.Wrote(450 * mb) }
	m.Check()
	if s := m.Status(); s.DiskFree != 50*mb {
		t.Fatalf("status %+v", s)
	}
	if !pending(m) {
		t.Fatal("no sample asked for")
	}
}

// Before the first sample there is nothing to subtract from; a failed
// sample keeps the estimate from the last good one.
func TestWroteWithoutGoodSample(t *testing.T) {
	disk := &fake{err: errors.New("statfs: input/output error")}
	m := newTestMonitor(nil, disk, 0, 100*mb)
	m.Wrote(1 << 40)
	m.Check()
	m.Wrote(1 << 40)
	if s := m.Status(); s.DiskFree != -1 || pending(m) {
		t.Fatalf("status %+v, pending %v", s, pending(m))
	}
	disk.v, disk.err = 500*mb, nil
	m.Check()
	if s := m.Status(); s.DiskFree != 500*mb {
		t.Fatalf("status %+v: bytes written before the sample counted", s)
	}
	m.Wrote(300 * mb)
	disk.err = errors.New("statfs: input/output error")
	m.Check()
	if s := m.Status(); s.DiskFree != 200*mb {
		t.Fatalf("status %+v: a failed sample restarted the estimate", s)
	}
	m.Wrote(100*mb + 1)
	if !pending(m) {
		t.Fatal("no sample asked for")
	}
}

// With the disk alarm off Wrote changes nothing anyone can see.
func TestWroteDiskAlarmOff(t *testing.T) {
	for _, c := range []struct {
		name  string
		disk  *fake
		limit int64
	}{
		{"limit 0", &fake{v: 10}, 0},
		{"no sampler", nil, 100 * mb},
	} {
		m := newTestMonitor(nil, c.disk, 0, c.limit)
		m.Check()
		before := m.Status()
		for range 3 {
			m.Wrote(1 << 40)
		}
		m.Check()
		if m.wake != nil || m.written.Load() != 0 || m.disk.Load() != nil {
			t.Fatalf("%s: Wrote kept state", c.name)
		}
		if s := m.Status(); s.DiskFree != before.DiskFree || len(s.Alarms) != 0 {
			t.Fatalf("%s: status %+v, before %+v", c.name, s, before)
		}
	}
}

// Many log writers at once: every byte counted, one sample asked for.
func TestWroteConcurrent(t *testing.T) {
	d := &syncDisk{}
	d.free.Store(100*mb + 4000)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				m.Wrote(1)
			}
		})
	}
	wg.Wait()
	if s := m.Status(); s.DiskFree != 100*mb-4000 {
		t.Fatalf("status %+v", s)
	}
	if !pending(m) || pending(m) {
		t.Fatal("want exactly one pending sample request")
	}
}

func TestWroteDoesNotAllocate(t *testing.T) {
	d := &syncDisk{}
	d.free.Store(1 << 50)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	if n := testing.AllocsPerRun(1000, func() { m.Wrote(64 << 10) }); n != 0 {
		t.Fatalf("%v allocations per Wrote", n)
	}
	// Below the limit, with a request pending.
	d.free.Store(0)
	m.Check()
	m.wakeDisk()
	if n := testing.AllocsPerRun(1000, func() { m.Wrote(64 << 10) }); n != 0 {
		t.Fatalf("%v allocations per Wrote below the limit", n)
	}
}

// BenchmarkWrote is Wrote from many goroutines at once, as every log's
// group commit calls it: 0 B/op, 0 allocs/op.
func BenchmarkWrote(b *testing.B) {
	d := &syncDisk{}
	d.free.Store(1 << 62)
	m := newDiskMonitor(d, 100*mb)
	m.Check()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Wrote(64 << 10)
		}
	})
}
