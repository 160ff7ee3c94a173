package storage

import "sync"

// Directory fsyncs shared by the logs of one parent directory: the first
// write of each of many partitions created together (CreateOnAppend) must
// make its directory's name in the parent durable, and one fsync of the
// parent that starts after a caller asked serves every caller that asked
// before it started. So a produce to 2,000 new partitions fsyncs their
// parent a few times, not 2,000 times.

type dirKey struct {
	fs  FS
	dir string
}

// dirFlights holds one flight group per directory ever synced through
// syncDirShared: a few (the data directory's topics directory, mostly).
var dirFlights sync.Map // dirKey -> *flights

// flights runs one fsync at a time and gathers the callers that arrive
// while it runs into the next one.
type flights struct {
	mu   sync.Mutex
	busy bool
	next *flight // the fsync to start when the one running ends
}

type flight struct {
	done chan struct{}
	err  error
}

// syncDirShared fsyncs dir, sharing the fsync with concurrent callers for
// the same directory: it returns once an fsync of dir that started after
// the call has returned, with that fsync's error.
func syncDirShared(fsys FS, dir string) error {
	v, ok := dirFlights.Load(dirKey{fsys, dir})
	if !ok {
		v, _ = dirFlights.LoadOrStore(dirKey{fsys, dir}, &flights{})
	}
	fl := v.(*flights)
	fl.mu.Lock()
	if fl.busy {
		if fl.next == nil {
			fl.next = &flight{done: make(chan struct{})}
		}
		f := fl.next
		fl.mu.Unlock()
		<-f.done
		return f.err
	}
	fl.busy = true
	fl.mu.Unlock()
	err := fsys.SyncDir(dir)
	fl.finish(fsys, dir)
	return err
}

// finish starts the fsync that gathered the callers who arrived during
// the one that ended, if any, and ends the group's turn otherwise.
func (fl *flights) finish(fsys FS, dir string) {
	fl.mu.Lock()
	f := fl.next
	fl.next = nil
	if f == nil {
		fl.busy = false
		fl.mu.Unlock()
		return
	}
	fl.mu.Unlock()
	go func() {
		f.err = fsys.SyncDir(dir)
		close(f.done)
		fl.finish(fsys, dir)
	}()
}
