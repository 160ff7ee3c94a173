package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSyncIntervalAcksBeforeFsync(t *testing.T) {
	ffs := NewFaultFS(NewMemFS())
	ffs.SetFilter(onlyData)
	l := mustOpen(t, ffs, "/d/log", Options{Sync: SyncInterval, SyncInterval: 2 * time.Millisecond})
	defer l.Close()
	ffs.HoldSyncs()
	a := mustAppend(t, l, batchOf(1, 1, 10, 1)) // returns with the fsync blocked
	if hw := l.HighWatermark(); hw != a.LastOffset+1 {
		t.Fatalf("hw %d after write under SyncInterval", hw)
	}
	base := ffs.Syncs()
	ffs.ReleaseSyncs()
	checkFor(t, 2*time.Second, func() error {
		if ffs.Syncs() <= base {
			return fmt.Errorf("no periodic fsync")
		}
		return nil
	})
}

func TestSyncNeverFsyncsOnClose(t *testing.T) {
	ffs := NewFaultFS(NewMemFS())
	ffs.SetFilter(onlyData)
	l := mustOpen(t, ffs, "/d/log", Options{Sync: SyncNever})
	base := ffs.Syncs()
	for i := range 10 {
		mustAppend(t, l, batchOf(i, 1, 10, 1))
	}
	if n := ffs.Syncs() - base; n != 0 {
		t.Fatalf("%d fsyncs under SyncNever", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ffs.Syncs() == base {
		t.Fatal("Close did not fsync")
	}
}

func TestBackpressure(t *testing.T) {
	ffs := NewFaultFS(NewMemFS())
	ffs.SetFilter(onlyData)
	l := mustOpen(t, ffs, "/d/log", Options{})
	defer l.Close()
	l.mu.Lock()
	l.maxPending = 4000
	l.mu.Unlock()
	ffs.HoldSyncs()
	b := batchOf(1, 1, 1000, 1)
	first, err := l.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	// The writer takes the first batch and blocks in fsync; three more fit
	// in the pending buffer, the next one must wait.
	checkFor(t, time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.pend.ends) != 0 {
			return fmt.Errorf("writer has not taken the first batch")
		}
		return nil
	})
	var pending []*Appended
	for range 3 {
		a, err := l.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, a)
	}
	blocked := make(chan *Appended)
	go func() {
		a, err := l.Append(b)
		if err != nil {
			t.Error(err)
		}
		blocked <- a
	}()
	select {
	case <-blocked:
		t.Fatal("Append did not wait with the pending buffer full")
	case <-time.After(50 * time.Millisecond):
	}
	ffs.ReleaseSyncs()
	pending = append(pending, first, <-blocked)
	for _, a := range pending {
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if hw := l.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d", hw)
	}
}

// TestOldSegmentsBounded checks the memory and descriptor bounds: old
// segments keep no index in memory and at most oldSegmentHandles of them
// have open files, however much is read.
func TestOldSegmentsBounded(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/log", Options{SegmentBytes: 400, IndexIntervalBytes: 64})
	defer l.Close()
	for i := range 200 {
		mustAppend(t, l, batchOf(i, 1, 100, int64(i)))
	}
	if n := len(l.SegmentBaseOffsets()); n < 50 {
		t.Fatalf("%d segments", n)
	}
	for range 3 {
		readLog(t, l)
		for ts := int64(0); ts < 200; ts += 7 {
			if off, _, ok, err := l.OffsetForTimestamp(ts); err != nil || !ok || off != ts {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v", ts, off, ok, err)
			}
		}
	}
	l.mu.Lock()
	segs := l.segs
	for _, s := range segs[:len(segs)-1] {
		if s.idx != nil || s.tidx != nil {
			t.Errorf("old segment %d keeps its index in memory", s.base)
		}
	}
	l.mu.Unlock()
	l.cache.mu.Lock()
	open := 0
	for _, s := range segs[:len(segs)-1] {
		if s.files != nil {
			open++
		}
	}
	l.cache.mu.Unlock()
	if open > oldSegmentHandles {
		t.Fatalf("%d old segments with open files, limit %d", open, oldSegmentHandles)
	}
}

// TestConcurrentReadsAndRetention races readers against appends, rolls,
// retention and DeleteRecordsBefore: reads either succeed with valid
// batches at the right offsets or fail with ErrOffsetOutOfRange.
func TestConcurrentReadsAndRetention(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "/d/log", Options{SegmentBytes: 600, IndexIntervalBytes: 100})
	defer l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // appender
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := mustAppendErr(l, batchOf(i, 2, 60, int64(i))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() { // retention
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				l.EnforceRetention(-1, 3000)
			} else if hw := l.HighWatermark(); hw > 10 {
				l.DeleteRecordsBefore(hw - 10)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				hw := l.HighWatermark()
				off := l.StartOffset() + int64((i*7+r)%20)
				if off >= hw {
					continue
				}
				data, err := l.Read(off, 500)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				hs, err := ValidateBatches(data, 0)
				if err != nil || hs[0].LastOffset() < off || hs[0].BaseOffset > off {
					t.Errorf("Read(%d): %v %+v", off, err, hs)
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	checkContiguous(t, readLog(t, l), l.StartOffset())
}
