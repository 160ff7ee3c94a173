package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// rssWatcher samples another process's resident memory once a second, so
// that a bench can report what the broker used while it ran.
type rssWatcher struct {
	pid        int
	last, peak atomic.Int64 // bytes
	done       chan struct{}
	stopped    sync.WaitGroup
	once       sync.Once
	hwm        int64
}

// watchRSS starts sampling pid; it fails at once if the process's memory
// cannot be read (no such process, or not Linux).
func watchRSS(pid int) (*rssWatcher, error) {
	rss, _, err := readRSS(pid)
	if err != nil {
		return nil, fmt.Errorf("--watch-pid: %w", err)
	}
	w := &rssWatcher{pid: pid, done: make(chan struct{})}
	w.last.Store(rss)
	w.peak.Store(rss)
	w.stopped.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
				w.sample()
			}
		}
	})
	return w, nil
}

func (w *rssWatcher) sample() {
	rss, hwm, err := readRSS(w.pid)
	if err != nil {
		return // the process ended; keep what was seen
	}
	w.last.Store(rss)
	if rss > w.peak.Load() {
		w.peak.Store(rss)
	}
	w.hwm = hwm
}

// stop ends sampling after one last sample and returns the peak sampled
// and the kernel's high-water mark (VmHWM) for the process's whole life.
func (w *rssWatcher) stop() (peak, hwm int64) {
	w.once.Do(func() {
		close(w.done)
		w.stopped.Wait()
		w.sample()
	})
	return w.peak.Load(), w.hwm
}

// readRSS reads VmRSS and VmHWM from /proc/pid/status.
func readRSS(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(k) {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &hwm
		default:
			continue
		}
		f := bytes.Fields(v) // "1234 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, k, v)
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		*dst = n << 10
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS/VmHWM (a kernel thread or a zombie?)", pid)
	}
	return rss, hwm, nil
}

// fmtMiB prints a byte count in MiB.
func fmtMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
