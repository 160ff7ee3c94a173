package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

func onlyData(name string) bool { return strings.HasSuffix(name, logSuffix) }

func TestFailedFsyncStaysFailed(t *testing.T) {
	mem := NewMemFS()
	ffs := NewFaultFS(mem)
	ffs.SetFilter(onlyData)
	dir := "/d/log"
	l := mustOpen(t, ffs, dir, Options{})
	good := mustAppend(t, l, batchOf(1, 2, 10, 1))
	hw := l.HighWatermark()

	injected := errors.New("EIO on fsync")
	ffs.FailSync(injected)
	a, err := l.Append(batchOf(2, 2, 10, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); !errors.Is(err, injected) {
		t.Fatalf("Wait after failed fsync = %v, want %v", err, injected)
	}
	if l.HighWatermark() != hw {
		t.Fatalf("hw moved to %d past a failed fsync", l.HighWatermark())
	}
	if data, err := l.Read(hw, 1<<20); err != nil || data != nil {
		t.Fatalf("Read at hw shows %d bytes, %v", len(data), err)
	}
	if data, err := l.Read(good.BaseOffset, 1<<20); err != nil || len(readBatches(t, data)) != 1 {
		t.Fatalf("Read of durable data: %d bytes, %v", len(data), err)
	}

	// The fault clears, the log stays failed: nothing is reported durable.
	ffs.FailSync(nil)
	if _, err := l.Append(batchOf(3, 1, 10, 1)); !errors.Is(err, injected) {
		t.Fatalf("Append on failed log = %v", err)
	}
	if err := l.Sync(); !errors.Is(err, injected) {
		t.Fatalf("Sync on failed log = %v", err)
	}
	if err := l.Close(); !errors.Is(err, injected) {
		t.Fatalf("Close on failed log = %v", err)
	}

	// Reopening recovers; the log works again.
	l = mustOpen(t, mem, dir, Options{})
	defer l.Close()
	got := readLog(t, l)
	checkContiguous(t, got, 0)
	a = mustAppend(t, l, batchOf(4, 1, 10, 1))
	if a.BaseOffset != l.HighWatermark()-1 {
		t.Fatalf("append after reopen at %d, hw %d", a.BaseOffset, l.HighWatermark())
	}
}

func readBatches(t *testing.T, data []byte) []BatchHeader {
	t.Helper()
	hs, err := ValidateBatches(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestTornWriteRecovered(t *testing.T) {
	b := batchOf(9, 3, 40, 1)
	for _, keep := range []int{0, 1, 11, 12, 60, 61, len(b) - 1, len(b), len(b) + 7} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			mem := NewMemFS()
			ffs := NewFaultFS(mem)
			ffs.SetFilter(onlyData)
			dir := "/d/log"
			l := mustOpen(t, ffs, dir, Options{IndexIntervalBytes: 64})
			var want [][]byte
			for i := range 5 {
				bi := batchOf(i, 2, 30, 1)
				a := mustAppend(t, l, bi)
				want = append(want, withOffset(bi, a.BaseOffset))
			}
			sizeBefore := fileSize(t, mem, segPath(dir, 0, logSuffix))
			// One write of two batches, torn; the machine then dies with
			// the torn bytes in the file (as the page cache would keep them).
			ffs.TearNextWrite(keep, true)
			a, err := l.Append(append(append([]byte(nil), b...), b...))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Wait(); err == nil {
				t.Fatal("Wait succeeded on a torn write")
			}
			if l.HighWatermark() != 10 {
				t.Fatalf("hw %d after torn write", l.HighWatermark())
			}
			l.Close()

			l = mustOpen(t, mem, dir, Options{IndexIntervalBytes: 64})
			defer l.Close()
			got := readLog(t, l)
			checkContiguous(t, got, 0)
			whole := keep / len(b) // batches of the torn write that made it whole
			if len(got) != len(want)+min(whole, 2) {
				t.Fatalf("recovered %d batches, want %d", len(got), len(want)+whole)
			}
			for i := range want {
				if !sameBatch(got[i], want[i]) {
					t.Fatalf("batch %d differs", i)
				}
			}
			size := fileSize(t, mem, segPath(dir, 0, logSuffix))
			if size != sizeBefore+int64(min(whole, 2)*len(b)) {
				t.Fatalf("data file %d bytes after recovery, want the valid prefix %d", size, sizeBefore+int64(whole*len(b)))
			}
			a = mustAppend(t, l, batchOf(7, 1, 10, 1))
			if a.BaseOffset != 10+int64(3*min(whole, 2)) {
				t.Fatalf("next append at %d", a.BaseOffset)
			}
		})
	}
}

func TestFullDisk(t *testing.T) {
	mem := NewMemFS()
	ffs := NewFaultFS(mem)
	ffs.SetFilter(onlyData)
	dir := "/d/log"
	o := Options{SegmentBytes: 2000}
	l := mustOpen(t, ffs, dir, o)
	ffs.SetDiskBudget(5000)
	var acked [][]byte
	var failErr error
	for i := range 100 {
		b := batchOf(i, 1, 100, 1)
		a, err := l.Append(b)
		if err == nil {
			err = a.Wait()
		}
		if err != nil {
			failErr = err
			break
		}
		acked = append(acked, withOffset(b, a.BaseOffset))
	}
	if !errors.Is(failErr, syscall.ENOSPC) {
		t.Fatalf("writes past the budget: %v, want ENOSPC", failErr)
	}
	if _, err := l.Append(batchOf(0, 1, 1, 1)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append after ENOSPC = %v", err)
	}
	if got := readLog(t, l); len(got) != len(acked) {
		t.Fatalf("readable %d batches, acked %d", len(got), len(acked))
	}
	l.Close()

	ffs.SetDiskBudget(-1)
	l = mustOpen(t, ffs, dir, o)
	defer l.Close()
	got := readLog(t, l)
	checkContiguous(t, got, 0)
	if len(got) < len(acked) {
		t.Fatalf("lost acknowledged data: %d < %d", len(got), len(acked))
	}
	for i := range acked {
		if !sameBatch(got[i], acked[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	mustAppend(t, l, batchOf(1, 1, 10, 1))
}

// TestGroupCommitCoalesces checks that concurrent appends share fsyncs.
func TestGroupCommitCoalesces(t *testing.T) {
	ffs := NewFaultFS(OSFS())
	l := mustOpen(t, ffs, t.TempDir()+"/log", Options{})
	defer l.Close()
	base := ffs.Syncs()
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := mustAppendErr(l, batchOf(w*100+i, 4, 256, 1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	syncs := ffs.Syncs() - base
	t.Logf("%d appends, %d fsyncs", writers*each, syncs)
	if syncs >= writers*each {
		t.Fatalf("%d fsyncs for %d appends: no group commit", syncs, writers*each)
	}
	if hw := l.HighWatermark(); hw != writers*each*4 {
		t.Fatalf("hw %d", hw)
	}
}

func mustAppendErr(l *Log, b []byte) (*Appended, error) {
	a, err := l.Append(b)
	if err != nil {
		return nil, err
	}
	return a, a.Wait()
}

// TestCrashRecoveryProperty appends from several goroutines, then kills
// the process at a random moment, either by a power loss (MemFS.Crash:
// everything not fsync'd is gone) or by a crash in the middle of a write
// (FaultFS torn write: the torn bytes stay in the file). It reopens and
// checks that every acknowledged batch is there, unchanged, at its offset,
// with no gaps from the start, over several lives of the same log.
func TestCrashRecoveryProperty(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		mem := NewMemFS()
		dir := "/d/log"
		o := Options{SegmentBytes: int64(500 + rng.IntN(3000)), IndexIntervalBytes: 64 + rng.IntN(512)}
		acked := map[int64][]byte{}
		var ackedMu sync.Mutex
		for life := range 4 {
			ffs := NewFaultFS(mem)
			ffs.SetFilter(onlyData)
			l := mustOpen(t, ffs, dir, o)
			prior := readLog(t, l)
			checkContiguous(t, prior, l.StartOffset())
			verifyAcked(t, round, life, prior, acked)

			powerLoss := rng.IntN(2) == 0
			tearAt := rng.IntN(300)
			crashAfter := int64(1 + rng.IntN(60))
			var nacks atomic.Int64
			var wg sync.WaitGroup
			for w := range 1 + rng.IntN(4) {
				seed := rng.Uint64()
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					for i := 0; ; i++ {
						b := batchOf(int(seed%1000)+i, 1+r.IntN(5), 1+r.IntN(200), int64(i))
						if r.IntN(20) == 0 {
							l.Roll()
						}
						a, err := l.Append(b)
						if err != nil {
							return
						}
						if err := a.Wait(); err != nil {
							return
						}
						ackedMu.Lock()
						acked[a.BaseOffset] = withOffset(b, a.BaseOffset)
						ackedMu.Unlock()
						if nacks.Add(1) == crashAfter {
							if powerLoss {
								mem.Crash()
							} else {
								ffs.TearNextWrite(tearAt, true)
							}
						}
					}
				}()
			}
			wg.Wait()
			l.Close()
			mem.Restart()
		}
		l := mustOpen(t, mem, dir, o)
		got := readLog(t, l)
		checkContiguous(t, got, l.StartOffset())
		verifyAcked(t, round, 4, got, acked)
		mustAppend(t, l, batchOf(1, 1, 1, 1))
		l.Close()
	}
}

func verifyAcked(t *testing.T, round, life int, got [][]byte, acked map[int64][]byte) {
	t.Helper()
	byOffset := map[int64][]byte{}
	for _, b := range got {
		h, _ := ParseBatchHeader(b)
		byOffset[h.BaseOffset] = b
	}
	for off, b := range acked {
		if !sameBatch(byOffset[off], b) {
			t.Fatalf("round %d life %d: acknowledged batch at %d lost or changed (log: %s)", round, life, off, describe(got))
		}
	}
}
