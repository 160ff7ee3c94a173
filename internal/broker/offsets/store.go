package offsets

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/fsutil"
)

// Errors returned by Store methods. Test with errors.Is.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("offsets: store closed")
	// ErrFailed wraps the write or fsync error that failed the store. It
	// lasts until Recover succeeds (or the store is reopened).
	ErrFailed = errors.New("offsets: log failed")
)

const (
	logName   = "offsets.log"
	tmpSuffix = ".tmp"

	// Group commit limits: a batch stops growing at either bound.
	maxBatchRecords = 4096
	maxBatchBytes   = 4 << 20
	changeQueue     = 1024
)

// Options configure a Store. Zero values take the documented defaults.
type Options struct {
	// CompactBytes: the log is rewritten with only the live offsets once it
	// is larger than this and than four times its size after the last
	// rewrite. Default 16 MiB.
	CompactBytes int64
	// Now stamps commits that carry no time. Default time.Now.
	Now func() time.Time
	// Logger receives recovery and compaction events. Default
	// slog.Default().
	Logger *slog.Logger
	// WrapLog, when set (tests and fault-injection builds only), wraps
	// every log file the store appends to, to inject faults.
	WrapLog func(path string, f LogFile) LogFile
	// SyncInterval is the durability of a change. Zero (the default): a
	// change is answered once its record is fsync'd. Positive: once it is
	// written, the log being fsync'd at most this often while it has
	// unsynced records (a crash loses at most the last interval's
	// changes, as Kafka's unflushed __consumer_offsets can). Negative:
	// never fsync'd but on Close. The broker passes its --fsync policy.
	SyncInterval time.Duration
}

// LogFile is what the writer needs from the log file.
type LogFile interface {
	io.Writer
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// Store is the committed offsets of every group: the in-memory latest
// offsets and the log that rebuilds them, appended to by one writer
// goroutine.
type Store struct {
	dir    string
	opts   Options
	logger *slog.Logger

	mu      sync.RWMutex // guards state, next, tombs and changed
	state   state
	next    int64         // the next commit's sequence number
	tombs   map[Key]int64 // deleted offsets since the last rewrite, each with its sequence number
	changed chan struct{} // closed and replaced when the offsets change

	closeMu  sync.RWMutex // held shared while sending to changes
	closed   bool
	changes  chan *change
	done     chan struct{}
	closeErr error

	failed atomic.Pointer[failure]

	// Owned by the writer goroutine (and by Open before it starts).
	log         LogFile
	logSize     int64 // bytes written: where the next batch goes
	synced      int64 // bytes known durable (logSize but with SyncInterval)
	compactedAt int64 // log size after the last rewrite (or at Open)
	cut         bool  // after a failure: the log is cut back to synced
	recovers    chan chan error
	buf         []byte
	batch       []*change

	records, syncs, compactions atomic.Uint64
	logBytes                    atomic.Int64
}

type failure struct{ err error }

// change is one record waiting for the writer.
type change struct {
	rec   record
	check func() error // commits: called by the writer just before writing
	// ifChanges: deletes are written only if they change something, which
	// the writer decides, since a commit it accepted may not be applied yet.
	ifChanges bool
	done      chan struct{}
	err       error
}

// Stats are counters for metrics, tests and benchmarks.
type Stats struct {
	Records     uint64 // records appended since Open
	Syncs       uint64 // log fsyncs since Open; Records/Syncs is the group commit factor
	Compactions uint64 // rewrites since Open
	LogBytes    int64  // size of the log
}

// Open opens or creates the store in dir: it replays the log, truncating a
// torn or corrupt tail, and starts the writer. Only one Store may have dir
// open at a time; the caller sees to it (the server holds the data
// directory).
func Open(dir string, opts Options) (*Store, error) {
	if opts.CompactBytes <= 0 {
		opts.CompactBytes = 16 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		logger:   opts.Logger.With("component", "offsets"),
		state:    make(state),
		changed:  make(chan struct{}),
		tombs:    make(map[Key]int64),
		changes:  make(chan *change, changeQueue),
		recovers: make(chan chan error),
		done:     make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		if s.log != nil {
			s.log.Close()
		}
		return nil, err
	}
	s.compactedAt, s.synced = s.logSize, s.logSize
	go s.run()
	return s, nil
}

func (s *Store) path() string { return filepath.Join(s.dir, logName) }

func (s *Store) wrap(f *os.File) LogFile {
	if s.opts.WrapLog != nil {
		return s.opts.WrapLog(f.Name(), f)
	}
	return f
}

// recover replays the log into s.state and leaves s.log open at the end
// of its valid records.
func (s *Store) recover() error {
	os.Remove(s.path() + tmpSuffix) // a rewrite the crash interrupted
	f, err := os.OpenFile(s.path(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return s.rewrite()
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	var hdr [logHeaderSize]byte
	if fi.Size() < logHeaderSize {
		// A crash while the first rewrite's header was written: nothing
		// was ever committed in it.
		f.Close()
		return s.rewrite()
	}
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		f.Close()
		return err
	}
	if err := parseLogHeader(hdr[:]); err != nil {
		f.Close()
		return fmt.Errorf("%w (in %s)", err, s.path())
	}
	size := fi.Size() - logHeaderSize
	valid, stop, err := scanRecords(f, size, func(payload []byte) error {
		rec, err := decodeRecord(payload)
		if err != nil {
			return err
		}
		s.applyLocked(&rec)
		return nil
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("%w (in %s)", err, s.path())
	}
	if stop != nil {
		s.logger.Warn("truncating torn offsets log tail",
			"path", s.path(), "offset", logHeaderSize+valid, "dropped_bytes", size-valid, "reason", stop.Error())
		if err := f.Truncate(logHeaderSize + valid); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.Seek(logHeaderSize+valid, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	s.log = s.wrap(f)
	s.setLogSize(logHeaderSize + valid)
	return nil
}

// rewrite durably replaces the log with one that holds s.state and no
// more, and appends to it from then on. Writer goroutine (or Open) only.
// On an error before the rename the old log is still in place and in use.
func (s *Store) rewrite() error {
	buf := appendLogHeader(nil)
	s.mu.RLock()
	for _, r := range s.state.records() {
		buf = appendRecord(buf, &r)
	}
	buf = appendRecord(buf, &record{kind: kindNextSeq, next: s.next})
	s.mu.RUnlock()
	tmp, err := os.OpenFile(s.path()+tmpSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = tmp.Write(buf)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(s.path()+tmpSuffix, s.path())
	}
	if err != nil {
		tmp.Close()
		os.Remove(s.path() + tmpSuffix)
		return err
	}
	if s.log != nil {
		if cerr := s.log.Close(); cerr != nil {
			s.logger.Warn("closing the replaced offsets log", "path", s.path(), "err", cerr)
		}
	}
	s.mu.Lock()
	clear(s.tombs) // the rewritten log holds no deletions to replay them from
	s.mu.Unlock()
	s.log, s.compactedAt = s.wrap(tmp), int64(len(buf))
	s.setLogSize(int64(len(buf)))
	s.synced = s.logSize
	if err := fsutil.SyncDir(s.dir); err != nil {
		// The new log's name may not be durable: appending to it could
		// lose commits in a crash.
		return s.fail(fmt.Errorf("syncing directory after rewriting the log: %w", err))
	}
	return nil
}

// Commit durably records a group's offsets, all or none: check, if not
// nil, is called by the writer just before the record is written, and an
// error from it refuses the commit. A zero CommitMs is set to now. A later
// entry for the same partition wins.
func (s *Store) Commit(group string, commits []Commit, check func() error) error {
	if len(commits) == 0 {
		return nil
	}
	now := s.opts.Now().UnixMilli()
	cs := make([]Commit, len(commits))
	for i, c := range commits {
		if c.CommitMs == 0 {
			c.CommitMs = now
		}
		cs[i] = c
	}
	return s.submit(&change{rec: record{kind: kindCommit, group: group, commits: cs}, check: check})
}

// Delete deletes a group's offsets in parts, or all of them when parts is
// nil. Deleting offsets that do not exist writes nothing.
func (s *Store) Delete(group string, parts []Partition) error {
	rec := record{kind: kindDeleteGroup, group: group}
	if parts != nil {
		rec = record{kind: kindDelete, group: group, partitions: slices.Clone(parts)}
	}
	return s.submitIfChanges(rec)
}

// DeleteTopic deletes every group's offsets in topic.
func (s *Store) DeleteTopic(topic string) error {
	return s.submitIfChanges(record{kind: kindDeleteTopic, topic: topic})
}

// submitIfChanges submits a delete that the writer skips if it would
// change nothing. The writer decides, not the caller: a commit the writer
// has accepted but not yet applied is not in the state the caller sees, and
// a delete skipped on that view would leave the commit behind (a topic
// deleted while its offsets were being committed kept them).
func (s *Store) submitIfChanges(rec record) error {
	return s.submit(&change{rec: rec, ifChanges: true})
}

// submit queues a change and waits until it is durable and applied, or
// refused.
func (s *Store) submit(c *change) error {
	if err := c.rec.check(); err != nil {
		return err
	}
	c.done = make(chan struct{})
	s.closeMu.RLock()
	if err := s.writableLocked(); err != nil {
		s.closeMu.RUnlock()
		return err
	}
	s.changes <- c
	s.closeMu.RUnlock()
	<-c.done
	return c.err
}

func (s *Store) writable() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.writableLocked()
}

func (s *Store) writableLocked() error {
	if s.closed {
		return ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// run is the writer goroutine: it takes whatever changes are queued and
// writes them with one write and one fsync.
func (s *Store) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.SyncInterval > 0 {
		t := time.NewTicker(s.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var c *change
		select {
		case q, ok := <-s.changes:
			if !ok {
				s.closeErr = s.syncTail()
				if err := s.log.Close(); s.closeErr == nil {
					s.closeErr = err
				}
				return
			}
			c = q
		case <-tick:
			s.syncTail()
			continue
		case reply := <-s.recovers:
			reply <- s.recoverLog()
			continue
		}
		batch := append(s.batch[:0], c)
		// The committers answered by the last batch are waking up to
		// commit again: let them queue, so that they share this fsync
		// rather than wait for it and take the next one (a batch of 8
		// committers would otherwise split into a batch of 1 and of 7).
		runtime.Gosched()
	drain:
		for len(batch) < maxBatchRecords {
			select {
			case q, ok := <-s.changes:
				if !ok {
					break drain
				}
				batch = append(batch, q)
			default:
				break drain
			}
		}
		s.commit(batch)
		clear(batch)
		s.batch = batch[:0]
	}
}

// commit makes one batch durable and applies it, then compacts the log if
// it has grown enough. A commit whose check fails is answered at once and
// not written.
func (s *Store) commit(batch []*change) {
	accepted := batch[:0]
	for _, c := range batch {
		// The state holds every earlier batch (this goroutine applies
		// them); a commit earlier in this batch may be what c deletes.
		if c.ifChanges && !s.state.changes(&c.rec) && !touchedBy(accepted, &c.rec) {
			close(c.done)
			continue
		}
		if c.check != nil {
			if c.err = c.check(); c.err != nil {
				close(c.done)
				continue
			}
		}
		accepted = append(accepted, c)
	}
	buf := s.buf[:0]
	var err error
	from := 0
	for i, c := range accepted {
		buf = appendRecord(buf, &c.rec)
		if len(buf) >= maxBatchBytes || i == len(accepted)-1 {
			err = s.append(buf, i+1-from)
			s.finish(accepted[from:i+1], err)
			buf, from = buf[:0], i+1
		}
	}
	if cap(buf) <= 2*maxBatchBytes {
		s.buf = buf[:0]
	} else {
		s.buf = nil // do not pin one huge batch's buffer
	}
	if err == nil && s.logSize > s.opts.CompactBytes && s.logSize > 4*s.compactedAt {
		s.compact()
	}
}

// touchedBy reports whether a commit among cs writes offsets that the
// delete d would remove.
func touchedBy(cs []*change, d *record) bool {
	for _, c := range cs {
		r := &c.rec
		if r.kind != kindCommit && r.kind != kindCommitSeq {
			continue
		}
		for _, oc := range r.commits {
			switch d.kind {
			case kindDeleteTopic:
				if oc.Topic == d.topic {
					return true
				}
			case kindDeleteGroup:
				if r.group == d.group {
					return true
				}
			case kindDelete:
				if r.group == d.group && slices.Contains(d.partitions, oc.partition()) {
					return true
				}
			}
		}
	}
	return false
}

// finish applies the written changes (err nil) or fails them, and answers
// them.
func (s *Store) finish(written []*change, err error) {
	if err == nil {
		s.mu.Lock()
		for _, c := range written {
			s.applyLocked(&c.rec)
		}
		if len(written) > 0 {
			close(s.changed)
			s.changed = make(chan struct{})
		}
		s.mu.Unlock()
	}
	for _, c := range written {
		c.err = err
		close(c.done)
	}
}

// append writes and fsyncs buf, n records, at the end of the log. After a
// failure it fails every later batch without touching the file.
func (s *Store) append(buf []byte, n int) error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	_, err := s.log.Write(buf)
	if err == nil && s.opts.SyncInterval == 0 {
		s.syncs.Add(1)
		err = s.log.Sync()
	}
	if err != nil {
		err = s.fail(err)
		s.cutLog()
		return err
	}
	s.setLogSize(s.logSize + int64(len(buf)))
	if s.opts.SyncInterval == 0 {
		s.synced = s.logSize
	}
	s.records.Add(uint64(n))
	return nil
}

// syncTail fsyncs what was written since the last fsync (SyncInterval
// only: otherwise nothing is ever left unsynced). A failure fails the store
// and cuts the log back to what was durable.
func (s *Store) syncTail() error {
	if s.synced == s.logSize || s.failed.Load() != nil {
		return nil
	}
	s.syncs.Add(1)
	if err := s.log.Sync(); err != nil {
		err = s.fail(err)
		s.cutLog()
		return err
	}
	s.synced = s.logSize
	return nil
}

func (s *Store) setLogSize(n int64) {
	s.logSize = n
	s.logBytes.Store(n)
}

// compact rewrites the log with only the live offsets. A rewrite that
// fails leaves the old log in use and is tried again after as many bytes
// again.
func (s *Store) compact() {
	before := s.logSize
	if err := s.rewrite(); err != nil {
		s.compactedAt = before
		s.logger.Warn("offsets log compaction failed", "path", s.path(), "err", err)
		return
	}
	s.compactions.Add(1)
	s.logger.Debug("offsets log compacted", "path", s.path(), "before", before, "after", s.logSize)
}

// cutLog cuts the log back to its last durable record after a failed
// write or fsync, so that a change answered with an error cannot surface
// at the next start. A cut that fails is tried again by Recover.
func (s *Store) cutLog() error {
	err := s.log.Truncate(s.synced)
	if err == nil {
		_, err = s.log.Seek(s.synced, io.SeekStart)
	}
	if err == nil {
		err = s.log.Sync()
	}
	s.cut = err == nil
	if err != nil {
		return fmt.Errorf("cutting the offsets log back to %d bytes: %w", s.synced, err)
	}
	s.setLogSize(s.synced)
	return nil
}

// fail makes the store refuse changes until Recover and returns the error
// they carry.
func (s *Store) fail(err error) error {
	s.failed.CompareAndSwap(nil, &failure{fmt.Errorf("%w: %w", ErrFailed, err)})
	return s.failed.Load().err
}

// Failed returns the error that made the store refuse changes, nil while
// it accepts them.
func (s *Store) Failed() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// Recover makes a failed store writable again once the disk takes writes:
// the log is cut back to its last durable record (if the failure did not
// manage that) and the cut and the directory are fsync'd. The offsets
// never held the failed changes (they are applied only once durable). On a
// healthy store Recover does nothing.
func (s *Store) Recover() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	if s.failed.Load() == nil {
		s.closeMu.RUnlock()
		return nil
	}
	reply := make(chan error, 1)
	s.recovers <- reply
	s.closeMu.RUnlock()
	return <-reply
}

func (s *Store) recoverLog() error {
	if s.failed.Load() == nil {
		return nil
	}
	if !s.cut {
		if err := s.cutLog(); err != nil {
			return err
		}
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return err
	}
	s.failed.Store(nil)
	s.cut = false
	return nil
}

// Close stops the writer after answering every queued change and closes
// the log. Reads keep working; changes return ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changes)
	s.closeMu.Unlock()
	<-s.done
	return s.closeErr
}

// Group returns a group's committed offsets sorted by topic and partition.
func (s *Store) Group(group string) []Commit {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.group(group)
}

// Get returns one committed offset.
func (s *Store) Get(group, topic string, partition int32) (Commit, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.state[group][Partition{topic, partition}]
	return c, ok
}

// Groups returns the groups with committed offsets, sorted.
func (s *Store) Groups() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.state))
	for g := range s.state {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Records:     s.records.Load(),
		Syncs:       s.syncs.Load(),
		Compactions: s.compactions.Load(),
		LogBytes:    s.logBytes.Load(),
	}
}

// applyLocked numbers r's commits and deletions and applies it: a
// deletion leaves a tombstone per deleted offset, numbered in Key order
// before anything else in r, so that replaying the log numbers them the
// same. Tombstones last until the log is rewritten.
func (s *Store) applyLocked(r *record) {
	for _, k := range s.state.removed(r) {
		s.tombs[k] = s.next
		s.next++
	}
	s.next = numberLocked(s.next, r)
	for _, c := range r.commits {
		delete(s.tombs, Key{r.group, c.partition()})
	}
	s.state.apply(r)
}

// Entry is one group's committed offset, or the tombstone of a deleted
// one (Deleted; only Topic, Partition and Seq are set), as Since lists it.
type Entry struct {
	Group string
	Commit
	Deleted bool
}

// NextSeq is the sequence number the next commit will get: every live
// commit's Seq is below it.
func (s *Store) NextSeq() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.next
}

// Since returns the live commits and the tombstones of the groups that
// match selects, with Seq at or above from, in Seq order, at most limit of
// them (limit <= 0: all). Replaced commits are not listed, nor tombstones
// once the log has been rewritten: the sequence has gaps where they were,
// as a compacted log has.
//
// It scans every live offset: its cost follows the number of live offsets,
// not of commits.
func (s *Store) Since(from int64, match func(group string) bool, limit int) []Entry {
	s.mu.RLock()
	var out []Entry
	for g, offs := range s.state {
		if !match(g) {
			continue
		}
		for _, c := range offs {
			if c.Seq >= from {
				out = append(out, Entry{Group: g, Commit: c})
			}
		}
	}
	for k, seq := range s.tombs {
		if seq >= from && match(k.Group) {
			out = append(out, Entry{Group: k.Group, Commit: Commit{Topic: k.Topic, Partition: k.Partition.Partition, Seq: seq}, Deleted: true})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Last returns the highest Seq of the live commits and tombstones of the
// groups that match selects; ok is false if there are none.
func (s *Store) Last(match func(group string) bool) (seq int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seq = -1
	for g, offs := range s.state {
		if !match(g) {
			continue
		}
		for _, c := range offs {
			seq = max(seq, c.Seq)
		}
	}
	for k, t := range s.tombs {
		if match(k.Group) {
			seq = max(seq, t)
		}
	}
	return seq, seq >= 0
}

// Changed returns a channel closed the next time the offsets change.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}
