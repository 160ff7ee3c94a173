package storage

import (
	"sync"
	"testing"
	"time"
)

type countingObserver struct {
	mu              sync.Mutex
	appends, fsyncs int
	batches, bytes  int
}

func (o *countingObserver) ObserveAppend(d time.Duration, batches, bytes int) {
	o.mu.Lock()
	o.appends++
	o.batches += batches
	o.bytes += bytes
	o.mu.Unlock()
}

func (o *countingObserver) ObserveFsync(d time.Duration) {
	o.mu.Lock()
	o.fsyncs++
	o.mu.Unlock()
}

func (o *countingObserver) counts() (appends, fsyncs, batches, bytes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.appends, o.fsyncs, o.batches, o.bytes
}

// The observer sees every appended batch and byte once, and an fsync per
// commit only when the policy fsyncs.
func TestObserverSeesCommitsAndFsyncs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sync      SyncPolicy
		wantFsync bool
	}{
		{"always", SyncAlways, true},
		{"never", SyncNever, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, dir := memFactory(t)
			obs := &countingObserver{}
			l := mustOpen(t, fsys, dir, Options{Sync: tc.sync, Observer: obs})
			wantBytes := 0
			for i := range 5 {
				b := batchOf(i, 3, 20, 1000)
				wantBytes += len(b)
				if err := mustAppend(t, l, b).Wait(); err != nil {
					t.Fatal(err)
				}
			}
			appends, fsyncs, batches, bytes := obs.counts()
			if appends < 1 || batches != 5 || bytes != wantBytes {
				t.Fatalf("appends=%d batches=%d bytes=%d, want >=1, 5, %d", appends, batches, bytes, wantBytes)
			}
			if tc.wantFsync && fsyncs < 1 || !tc.wantFsync && fsyncs != 0 {
				t.Fatalf("fsyncs=%d with policy %s", fsyncs, tc.name)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
