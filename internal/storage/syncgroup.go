package storage

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
)

// A SyncGroup lets the logs of one file system share their fsyncs: a log
// that would fsync its active data file asks the group instead, and the
// group makes every file asked for durable in rounds, one round at a time.
// A request waits for the first round that starts after it, so what the
// log wrote before asking is covered, as by its own fsync. Requests that
// arrive while a round runs make up the next round together, so a produce
// to 8 or 2,000 partitions costs about one round per commit, not one
// fsync per partition.
//
// With a whole-file-system sync (NewSyncGroupFS: syncfs(2) on Linux) a
// round is one system call, whatever the number of files: it writes back
// the dirty data and metadata of every file on the file system and flushes
// the device once. It also writes back what other processes left dirty
// there, so it is meant for a data directory on a file system of its own.
// Without one (NewSyncGroup) a round fsyncs each of its files in turn.
//
// A failed round fails every request in it: each of those logs fails
// (and its unsynced tail is cut off, as after its own fsync failed), so a
// log never takes a shared fsync's error for someone else's.
type SyncGroup struct {
	all     func() error // whole-file-system sync; nil: fsync each file
	closeFn func() error

	mu      sync.Mutex
	next    *syncRound // collecting the next round; nil if nobody waits
	running bool       // a goroutine runs rounds

	rounds, files uint64 // for tests and metrics: rounds run, file requests served
}

type syncRound struct {
	files []File
	done  chan struct{}
	err   error
}

// NewSyncGroup returns a group that fsyncs the files of each round, one
// after the other. It works on every FS (the tests use it with MemFS and
// FaultFS): what it shares is the waiting, not the system calls.
func NewSyncGroup() *SyncGroup { return &SyncGroup{} }

// NewSyncGroupFS returns a group whose rounds are one syncfs(2) of the
// file system holding dir. ErrSyncFSUnsupported where there is none.
// Close releases the directory it keeps open.
func NewSyncGroupFS(dir string) (*SyncGroup, error) {
	if !syncfsSupported {
		return nil, ErrSyncFSUnsupported
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("sync group: %w", err)
	}
	// syncfs reports write-back errors that happened on the file system
	// since the descriptor was opened, before any data of ours was written.
	g := &SyncGroup{all: func() error { return syncfs(d) }}
	g.closeFn = d.Close
	return g, nil
}

// ErrSyncFSUnsupported is NewSyncGroupFS's answer where the platform has
// no whole-file-system sync.
var ErrSyncFSUnsupported = errors.New("storage: syncfs not supported on this platform")

// Sync makes f durable in the next round of the group and returns that
// round's result.
func (g *SyncGroup) Sync(f File) error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &syncRound{done: make(chan struct{})}
	}
	r := g.next
	r.files = append(r.files, f)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	<-r.done
	return r.err
}

// run runs rounds while requests wait.
func (g *SyncGroup) run() {
	for {
		// Let the other writers that were woken with this one (the
		// partitions of one produce request) ask before the round
		// starts, so that they share it rather than wait for the next.
		runtime.Gosched()
		g.mu.Lock()
		r := g.next
		if r == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.next = nil
		g.rounds++
		g.files += uint64(len(r.files))
		g.mu.Unlock()
		if g.all != nil {
			r.err = g.all()
		} else {
			for _, f := range r.files {
				if err := f.Sync(); err != nil {
					r.err = err // every file of the round fails with it
					break
				}
			}
		}
		close(r.done)
	}
}

// Stats returns how many rounds the group ran and how many file syncs
// they served.
func (g *SyncGroup) Stats() (rounds, files uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rounds, g.files
}

// Close releases what NewSyncGroupFS keeps open. The logs using the group
// must be closed first.
func (g *SyncGroup) Close() error {
	if g.closeFn == nil {
		return nil
	}
	return g.closeFn()
}
