package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateFile is a File whose Sync blocks until its gate opens and then
// returns err.
type gateFile struct {
	File
	gate chan struct{}
	err  error
	n    atomic.Int64
}

func (f *gateFile) Sync() error {
	if f.gate != nil {
		<-f.gate
	}
	f.n.Add(1)
	return f.err
}

func (g *SyncGroup) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == nil {
		return 0
	}
	return len(g.next.files)
}

// TestSyncGroupSharesRounds: requests that arrive while a round runs are
// served together by the next round, and none by the round under way
// (which started before their writes).
func TestSyncGroupSharesRounds(t *testing.T) {
	g := NewSyncGroup()
	first := &gateFile{gate: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); g.Sync(first) }()
	checkFor(t, 5*time.Second, func() error {
		if r, _ := g.Stats(); r != 1 {
			return fmt.Errorf("%d rounds started", r)
		}
		return nil
	})
	later := make([]*gateFile, 10)
	for i := range later {
		later[i] = &gateFile{}
		wg.Add(1)
		go func() { defer wg.Done(); g.Sync(later[i]) }()
	}
	checkFor(t, 5*time.Second, func() error {
		if n := g.waiting(); n != len(later) {
			return fmt.Errorf("%d requests wait for the next round", n)
		}
		return nil
	})
	for _, f := range later {
		if f.n.Load() != 0 {
			t.Fatal("a request was served by the round that started before it")
		}
	}
	close(first.gate)
	wg.Wait()
	if rounds, files := g.Stats(); rounds != 2 || files != 11 {
		t.Fatalf("%d rounds for %d requests, want 2 for 11", rounds, files)
	}
	for i, f := range later {
		if f.n.Load() != 1 {
			t.Fatalf("file %d synced %d times", i, f.n.Load())
		}
	}
}

// TestSyncGroupFailure: a failed round fails every request in it; the
// next round starts clean.
func TestSyncGroupFailure(t *testing.T) {
	g := NewSyncGroup()
	gate := make(chan struct{})
	bad := &gateFile{gate: gate, err: errors.New("EIO")}
	good := &gateFile{}
	errs := make(chan error, 2)
	go func() { errs <- g.Sync(bad) }()
	checkFor(t, 5*time.Second, func() error {
		if r, _ := g.Stats(); r != 1 {
			return fmt.Errorf("%d rounds", r)
		}
		return nil
	})
	// Make bad and good share the second round, bad first.
	bad2 := &gateFile{err: errors.New("EIO")}
	go func() { errs <- g.Sync(bad2) }()
	checkFor(t, 5*time.Second, func() error {
		if g.waiting() != 1 {
			return errors.New("bad2 not queued")
		}
		return nil
	})
	go func() { errs <- g.Sync(good) }()
	checkFor(t, 5*time.Second, func() error {
		if g.waiting() != 2 {
			return errors.New("good not queued")
		}
		return nil
	})
	close(gate)
	for range 3 {
		if err := <-errs; err == nil {
			t.Fatal("a request of a failed round succeeded")
		}
	}
	if err := g.Sync(&gateFile{}); err != nil {
		t.Fatalf("a later round: %v", err)
	}
}

// TestSyncGroupPowerLoss runs several logs on one file system sharing a
// group, appending from several goroutines, cuts the power at a random
// moment and checks that every acknowledged batch of every log is there
// after recovery: a shared fsync keeps each log's promise.
func TestSyncGroupPowerLoss(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for round := range rounds {
		rng := rand.New(rand.NewPCG(uint64(round), 13))
		mem := NewMemFS()
		g := NewSyncGroup()
		const nlogs = 6
		o := Options{SegmentBytes: int64(800 + rng.IntN(3000)), SyncGroup: g}
		logs := make([]*Log, nlogs)
		acked := make([]map[int64][]byte, nlogs)
		var mu sync.Mutex
		for i := range logs {
			logs[i] = mustOpen(t, mem, fmt.Sprintf("/d/p-%d", i), o)
			acked[i] = map[int64][]byte{}
		}
		crashAfter := int64(5 + rng.IntN(200))
		var n atomic.Int64
		var wg sync.WaitGroup
		for w := range 8 {
			seed := rng.Uint64()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(w)))
				for i := 0; ; i++ {
					li := r.IntN(nlogs)
					b := batchOf(w*1000+i, 1+r.IntN(4), 1+r.IntN(300), int64(i))
					a, err := logs[li].Append(b)
					if err != nil {
						return
					}
					if err := a.Wait(); err != nil {
						return
					}
					mu.Lock()
					acked[li][a.BaseOffset] = withOffset(b, a.BaseOffset)
					mu.Unlock()
					if n.Add(1) == crashAfter {
						mem.Crash()
					}
				}
			}()
		}
		wg.Wait()
		for _, l := range logs {
			l.Close()
		}
		mem.Restart()
		for i := range logs {
			l := mustOpen(t, mem, fmt.Sprintf("/d/p-%d", i), o)
			got := readLog(t, l)
			checkContiguous(t, got, l.StartOffset())
			verifyAcked(t, round, i, got, acked[i])
			l.Close()
		}
	}
}

// TestSyncGroupFS: logs on the real file system sharing one syncfs per
// round append, acknowledge and read back after a reopen.
func TestSyncGroupFS(t *testing.T) {
	dir := t.TempDir()
	g, err := NewSyncGroupFS(dir)
	if errors.Is(err, ErrSyncFSUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	o := Options{SyncGroup: g}
	var logs []*Log
	var want [][]byte
	for i := range 4 {
		logs = append(logs, mustOpen(t, OSFS(), filepath.Join(dir, fmt.Sprint("p-", i)), o))
	}
	var wg sync.WaitGroup
	for i, l := range logs {
		b := batchOf(i, 3, 100, 1)
		want = append(want, withOffset(b, 0))
		wg.Add(1)
		go func() { defer wg.Done(); mustAppend(t, l, b) }()
	}
	wg.Wait()
	if rounds, files := g.Stats(); rounds == 0 || files != 4 {
		t.Fatalf("%d rounds served %d requests, want 4 requests", rounds, files)
	}
	for i, l := range logs {
		l.Close()
		l = mustOpen(t, OSFS(), filepath.Join(dir, fmt.Sprint("p-", i)), Options{})
		got := readLog(t, l)
		if len(got) != 1 || !sameBatch(got[0], want[i]) {
			t.Fatalf("log %d after reopen: %s", i, describe(got))
		}
		l.Close()
	}
}

// BenchmarkAppendManyLogs appends one small batch to each of 64 logs on
// the real file system and waits for all of them (fsync before the
// answer): each log fsyncing its own file, against one shared syncfs(2)
// per round. ns/op is one produce to 64 partitions.
func BenchmarkAppendManyLogs(b *testing.B) {
	for _, mode := range []string{"own-fsync", "group-syncfs"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			var o Options
			if mode == "group-syncfs" {
				g, err := NewSyncGroupFS(dir)
				if err != nil {
					b.Skip(err)
				}
				defer g.Close()
				o.SyncGroup = g
			}
			logs := make([]*Log, 64)
			for i := range logs {
				logs[i] = mustOpen(b, OSFS(), filepath.Join(dir, fmt.Sprint("p-", i)), o)
				defer logs[i].Close()
			}
			batch := batchOf(1, 1, 100, 1)
			aps := make([]*Appended, len(logs))
			b.ReportAllocs()
			for b.Loop() {
				for i, l := range logs {
					a, err := l.Append(batch)
					if err != nil {
						b.Fatal(err)
					}
					aps[i] = a
				}
				for _, a := range aps {
					if err := a.Wait(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
