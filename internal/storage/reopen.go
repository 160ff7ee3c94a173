package storage

import (
	"errors"
	"fmt"
)

// Failed returns the error that failed the log (a write or fsync that did
// not succeed), or nil while the log is healthy. A failed log refuses
// every write until Recover succeeds; reads go on.
func (l *Log) Failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failErr
}

// cutToDurable cuts the active data file back to what is known durable:
// after a failed write or fsync the kernel's copy of the tail cannot be
// trusted (an fsync that failed may have dropped the dirty pages, or kept
// them to be written later), so nothing past the last successful fsync
// (under SyncAlways; the last complete write under the weaker policies,
// which promise nothing more) may come back after a restart, when it
// would resurface data that its writers were told failed. Writer goroutine
// only, with no fsync under way. A cut that fails is tried again by
// Recover.
func (l *Log) cutToDurable() error {
	w := &l.w
	w.cut = true
	if w.files == nil || w.files.data == nil {
		return nil
	}
	end := w.written
	if l.opts.Sync == SyncAlways {
		end = w.synced
	}
	err := w.files.data.Truncate(end)
	if err == nil {
		err = w.files.data.Sync()
	}
	if err != nil {
		w.cut = false
		return fmt.Errorf("storage: cutting %s back to its durable %d bytes: %w", l.dir, end, err)
	}
	w.written, w.published = min(w.written, end), min(w.published, end)
	return nil
}

// Recover reopens a failed log in place from what is on disk: the writer
// stops, the active segment is cut back to its last durable byte, the log
// is recovered as Open recovers it (tail validated, indexes rebuilt) and a
// new writer starts. The Log value stays the same, so its holders carry
// on; offsets continue after the last durable record, so offsets handed to
// appends that failed are assigned again (none of them was acknowledged).
// With Options.ReadBeforeSync the readable end may move back.
//
// Recover on a healthy log does nothing and returns nil; on a closed log
// it returns ErrClosed. When it fails (the disk still refuses) the log
// stays failed with the new error, and Recover may be called again.
func (l *Log) Recover() error {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.failErr == nil {
		l.mu.Unlock()
		return nil
	}
	done := l.writerDone
	select {
	case <-done: // stopped by an earlier Recover that failed
	default:
		l.pend.closing = true
		l.pend.syncReq = true
	}
	l.mu.Unlock()
	l.wake()
	<-done

	// The writer has stopped: l.w is ours, and nothing else writes the
	// files (failErr refuses Append and requests meanwhile).
	if !l.w.cut {
		if err := l.cutToDurable(); err != nil {
			return l.refail(err)
		}
	}
	return l.reopen()
}

// ResetTo empties the log in place and makes it start, and continue, at
// start: what ResetOffline does to a closed log, for a log its holders
// keep open (a replicated partition's follower that must continue where
// a Raft snapshot ends, its older records gone from the leader). The
// writer stops, the files go, the log is recovered from what is left
// (the start checkpoint) and a new writer starts; the Log value stays the
// same. Appends refused meanwhile fail as on a failed log; readers of the
// old segments finish with their files. On an error the log stays
// failed, and Recover (or ResetTo again) may be called.
func (l *Log) ResetTo(start int64) error {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.failErr == nil {
		l.failErr = fmt.Errorf("storage: log %s being reset to %d", l.dir, start)
		l.failed.Store(true)
	}
	done := l.writerDone
	select {
	case <-done:
	default:
		l.pend.closing = true
		l.pend.syncReq = true
	}
	l.mu.Unlock()
	l.wake()
	<-done
	if err := ResetOffline(l.fs, l.dir, start); err != nil {
		return l.refail(err)
	}
	return l.reopen()
}

// reopen recovers the log from its files once its writer has stopped,
// swaps the recovered state in and starts a new writer (Recover,
// ResetTo).
func (l *Log) reopen() error {
	fresh, err := openLog(l.dir, l.opts)
	if err != nil {
		return l.refail(err)
	}

	l.mu.Lock()
	if l.closed { // closed while recovering: keep nothing open
		l.mu.Unlock()
		fresh.cache.closeAll(fresh.segs)
		return ErrClosed
	}
	old := l.segs
	l.segs = fresh.segs
	l.next = fresh.next
	l.size = fresh.size
	l.hw.Store(fresh.hw.Load())
	l.rend.Store(fresh.rend.Load())
	l.start.Store(fresh.start.Load())
	l.w = fresh.w
	l.pend = newGroup()
	l.failErr = nil
	l.failed.Store(false)
	l.closeErr = nil
	l.writerDone = make(chan struct{})
	l.cache.mu.Lock()
	fresh.cache.mu.Lock()
	l.cache.lru = fresh.cache.lru
	fresh.cache.mu.Unlock()
	l.cache.mu.Unlock()
	l.notifyLocked() // the readable end may have moved (back)
	l.space.Broadcast()
	l.mu.Unlock()

	// Readers holding the old segments finish with their files; new
	// reads find the recovered ones.
	for _, s := range old {
		l.cache.drop(s)
	}
	go l.run()
	return nil
}

// refail records why Recover could not reopen the log.
func (l *Log) refail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !errors.Is(err, ErrClosed) {
		l.failErr = fmt.Errorf("storage: log %s failed: %w", l.dir, err)
	}
	return l.failErr
}
