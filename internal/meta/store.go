package meta

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/fsutil"
)

// Options configure a Store. Zero values take the documented defaults.
type Options struct {
	// SnapshotEvery is the number of commands between snapshots. A snapshot
	// bounds replay time on Open and the size of the log. Default 10000.
	SnapshotEvery int
	// Now is the clock for the timestamps a command carries (topic creation,
	// offset commit time). It is read when proposing, never in Apply.
	// Default time.Now.
	Now func() time.Time
	// Logger receives recovery and snapshot events. Default slog.Default().
	Logger *slog.Logger

	// WrapLog, when set (tests and fault-injection builds only), wraps
	// every log file the store appends to, to inject write and fsync
	// faults. The path is the file's.
	WrapLog func(path string, f LogFile) LogFile
}

// LogFile is what the writer needs from the log file.
type LogFile interface {
	io.Writer
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// Group commit limits: a batch stops growing at either bound.
const (
	maxBatchCommands = 4096
	maxBatchBytes    = 4 << 20
	proposalQueue    = 1024
)

// Store is the metadata store: a State, the command log that rebuilds it,
// and the writer goroutine that appends to the log.
type Store struct {
	dir      string
	opts     Options
	logger   *slog.Logger
	lockFile *os.File

	mu    sync.RWMutex // guards state and index
	state *State
	index uint64 // index of the last applied command

	closeMu   sync.RWMutex // held shared while sending to proposals
	closed    bool
	proposals chan *proposal
	done      chan struct{} // closed when the writer has exited
	closeErr  error         // set by the writer before done is closed

	failed atomic.Pointer[failure]

	// Owned by the writer goroutine (and by Open before it starts).
	log          LogFile
	logSize      int64 // bytes of the log known durable: where the next batch goes
	cut          bool  // after a failure: the log is cut back to logSize
	recovers     chan chan error
	nextSnapshot uint64 // take a snapshot once index reaches this
	buf          []byte
	batch        []*proposal

	snapIndex                  atomic.Uint64 // index recorded in the current snapshot
	commands, syncs, snapshots atomic.Uint64

	// raft is set on a clustered store (OpenCluster): changes go through
	// the metadata Raft group instead of the writer, which does not run.
	raft *clustered
}

type failure struct{ err error }

// proposal is one command waiting for the writer.
type proposal struct {
	cmd  Command // as decoded from rec, so live apply equals replay
	rec  []byte  // the framed log record
	done chan struct{}
	res  Result
	err  error
	// with are proposals submitted together with this one (proposeAll):
	// the writer takes them into the same batch, so they share its write
	// and fsync.
	with []*proposal
}

// Stats are counters for metrics and tests.
type Stats struct {
	Index         uint64 // index of the last applied command
	SnapshotIndex uint64 // index recorded in the current snapshot
	Commands      uint64 // commands appended since Open
	Syncs         uint64 // log fsyncs since Open; Commands/Syncs is the group commit factor
	Snapshots     uint64 // snapshots taken since Open
}

// Open opens or creates the store in dir: it loads the snapshot, replays the
// newer log, truncating a torn or corrupt tail, and starts the writer. Only
// one Store may have dir open at a time.
func Open(dir string, opts Options) (*Store, error) {
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = 10000
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
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:       dir,
		opts:      opts,
		logger:    opts.Logger.With("component", "meta"),
		lockFile:  lock,
		proposals: make(chan *proposal, proposalQueue),
		recovers:  make(chan chan error),
		done:      make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	s.nextSnapshot = s.snapIndex.Load() + uint64(opts.SnapshotEvery)
	if s.index >= s.nextSnapshot {
		s.snapshot()
	}
	go s.run()
	return s, nil
}

func (s *Store) wrap(f *os.File) LogFile {
	if s.opts.WrapLog != nil {
		return s.opts.WrapLog(f.Name(), f)
	}
	return f
}

// recover loads the snapshot and replays the log into s.state, leaving
// s.log open at the end of the valid records.
func (s *Store) recover() error {
	for _, name := range []string{logName, snapshotName} {
		os.Remove(filepath.Join(s.dir, name+tmpSuffix)) // leftovers of a crash
	}
	snapIndex, st, err := readSnapshot(s.dir)
	if err != nil {
		return err
	}
	s.state, s.index = st, snapIndex
	s.snapIndex.Store(snapIndex)

	path := filepath.Join(s.dir, logName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return s.startLog(snapIndex + 1)
	}
	if err != nil {
		return err
	}
	last, err := s.replay(f, snapIndex)
	if err != nil {
		f.Close()
		return fmt.Errorf("%w (in %s)", err, path)
	}
	if last < snapIndex {
		// The snapshot holds everything the log does and more; appending
		// here would reuse indexes. Start after the snapshot instead.
		f.Close()
		return s.startLog(snapIndex + 1)
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return err
	}
	s.index = last
	s.log, s.logSize = s.wrap(f), end
	return nil
}

// replay applies the records of f with an index above snapIndex, truncates
// f after the last valid record, and returns the index of that record.
func (s *Store) replay(f *os.File, snapIndex uint64) (last uint64, err error) {
	var hdr [logHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return 0, fmt.Errorf("meta: reading log header: %w", err)
	}
	base, err := parseLogHeader(hdr[:])
	if err != nil {
		return 0, err
	}
	if base > snapIndex+1 {
		return 0, fmt.Errorf("meta: log starts at command %d but the snapshot ends at %d: commands are missing", base, snapIndex)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size() - logHeaderSize
	last, valid, stop, err := replayRecords(s.state, f, size, base, snapIndex)
	if err != nil {
		return 0, err
	}
	if stop != nil {
		s.logger.Warn("truncating torn metadata log tail",
			"dir", s.dir, "offset", logHeaderSize+valid, "dropped_bytes", size-valid, "reason", stop.Error())
		if err := f.Truncate(logHeaderSize + valid); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// replayRecords applies to st the records in r (size bytes, the first
// with index base) whose index is above snapIndex. It returns the index of
// the last valid record, the bytes up to its end, and why it stopped before
// size (nil if it did not). Refused commands are skipped: they were refused
// when proposed too. A malformed command is an error.
func replayRecords(st *State, r io.Reader, size int64, base, snapIndex uint64) (last uint64, valid int64, stop, err error) {
	last = base - 1
	valid, stop, err = scanRecords(r, size, func(payload []byte) error {
		last++
		if last <= snapIndex {
			return nil
		}
		cmd, err := decodeCommand(payload)
		if err == nil {
			_, err = st.Apply(cmd)
		}
		if errors.Is(err, ErrInvalidCommand) {
			return fmt.Errorf("meta: log command %d: %w", last, err)
		}
		return nil
	})
	return last, valid, stop, err
}

// startLog installs an empty log starting at index base.
func (s *Store) startLog(base uint64) error {
	f, err := createLog(s.dir, base)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	s.log, s.logSize = s.wrap(f), logHeaderSize
	return nil
}

// Close stops the writer after answering every accepted proposal, closes
// the log and releases the directory. Reads keep working on the last
// state; writes return ErrClosed.
func (s *Store) Close() error {
	if s.raft != nil {
		return s.closeCluster()
	}
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.proposals)
	s.closeMu.Unlock()
	<-s.done
	err := s.closeErr
	if lerr := s.lockFile.Close(); err == nil {
		err = lerr
	}
	return err
}

// propose is the single entry point for changes: check, append to the log
// (group committed), apply. On a clustered store the command goes through
// the metadata Raft group instead (proposeRaft, in cluster.go).
func (s *Store) propose(cmd Command) (Result, error) {
	p, err := s.prepare(cmd)
	if err != nil {
		return Result{}, err
	}
	if s.raft != nil {
		s.proposeRaft([]*proposal{p})
		return p.res, p.err
	}
	if err := s.submit(p); err != nil {
		return Result{}, err
	}
	<-p.done
	return p.res, p.err
}

// proposeAll proposes cmds together: each is checked on its own, and those
// that pass are handed to the writer at once, so that they share one write
// and one fsync (up to the group commit limits) instead of taking turns.
// Each command succeeds or fails on its own, as if proposed alone; they
// apply in order, so a later command sees the effect of an earlier one.
func (s *Store) proposeAll(cmds []Command) ([]Result, []error) {
	res, errs := make([]Result, len(cmds)), make([]error, len(cmds))
	ps := make([]*proposal, len(cmds))
	for i, cmd := range cmds {
		ps[i], errs[i] = s.prepare(cmd)
	}
	if s.raft != nil {
		s.proposeRaft(ps)
		for i, p := range ps {
			if p != nil {
				res[i], errs[i] = p.res, p.err
			}
		}
		return res, errs
	}
	if err := s.submit(ps...); err != nil {
		for i, p := range ps {
			if p != nil {
				errs[i] = err
			}
		}
		return res, errs
	}
	for i, p := range ps {
		if p != nil {
			<-p.done
			res[i], errs[i] = p.res, p.err
		}
	}
	return res, errs
}

// prepare validates cmd, checks it against the current state and frames
// its log record: a command refused here never reaches the log.
func (s *Store) prepare(cmd Command) (*proposal, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	if err := cmd.validate(); err != nil {
		return nil, err
	}
	payload, err := encodeCommand(&cmd)
	if err != nil {
		return nil, err
	}
	// Apply exactly what replay will see (JSON rewrites invalid UTF-8,
	// for one).
	logged, err := decodeCommand(payload)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	err = s.state.Check(logged)
	s.mu.RUnlock()
	if err != nil {
		return nil, err // refused without touching the log
	}
	rec := make([]byte, 0, recordHeaderSize+len(payload))
	return &proposal{cmd: logged, rec: appendRecord(rec, payload), done: make(chan struct{})}, nil
}

// submit hands the proposals (nil ones skipped) to the writer, all or none.
func (s *Store) submit(ps ...*proposal) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	var head *proposal
	for _, p := range ps {
		switch {
		case p == nil:
		case head == nil:
			head = p
		default:
			head.with = append(head.with, p)
		}
	}
	if head != nil {
		s.proposals <- head
	}
	return nil
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

// run is the writer goroutine: it takes whatever proposals are queued,
// writes them with one write and one fsync, then applies them in order.
func (s *Store) run() {
	defer close(s.done)
	for {
		var p *proposal
		select {
		case q, ok := <-s.proposals:
			if !ok {
				s.closeErr = s.log.Close()
				return
			}
			p = q
		case reply := <-s.recovers:
			reply <- s.recoverLog()
			continue
		}
		batch := append(append(s.batch[:0], p), p.with...)
		size := 0
		for _, q := range batch {
			size += len(q.rec)
		}
		// The proposers answered by the last batch may be proposing
		// again: let them queue, so that they share this fsync rather
		// than each wait for it and take the next one.
		runtime.Gosched()
	drain:
		for len(batch) < maxBatchCommands && size < maxBatchBytes {
			select {
			case q, ok := <-s.proposals:
				if !ok {
					break drain
				}
				batch = append(append(batch, q), q.with...)
				for _, w := range append([]*proposal{q}, q.with...) {
					size += len(w.rec)
				}
			default:
				break drain
			}
		}
		s.commit(batch)
		clear(batch)
		s.batch = batch[:0]
	}
}

// commit makes one batch durable and applies it.
func (s *Store) commit(batch []*proposal) {
	err := s.appendBatch(batch)
	if err == nil {
		s.mu.Lock()
		for _, p := range batch {
			p.res, p.err = s.state.Apply(p.cmd)
			s.index++
		}
		s.mu.Unlock()
	}
	for _, p := range batch {
		if err != nil {
			p.err = err
		}
		close(p.done)
	}
	if err == nil && s.index >= s.nextSnapshot {
		s.snapshot()
	}
}

// appendBatch writes and fsyncs the batch's records. After a failure it
// fails every later batch without touching the file.
func (s *Store) appendBatch(batch []*proposal) error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	buf := s.buf[:0]
	for _, p := range batch {
		buf = append(buf, p.rec...)
	}
	_, err := s.log.Write(buf)
	if err == nil {
		s.syncs.Add(1)
		err = s.log.Sync()
	}
	if cap(buf) <= 2*maxBatchBytes {
		s.buf = buf
	} else {
		s.buf = nil // do not pin one huge batch's buffer
	}
	if err != nil {
		err = s.fail(err)
		s.cutLog()
		return err
	}
	s.logSize += int64(len(buf))
	s.commands.Add(uint64(len(batch)))
	return nil
}

// cutLog cuts the log back to its last durable record after a failed
// write or fsync, so that a batch that was answered with an error cannot
// surface at the next start (its bytes may sit in the page cache, or be
// written back later). Writer goroutine only. A cut that fails is tried
// again by Recover.
func (s *Store) cutLog() error {
	err := s.log.Truncate(s.logSize)
	if err == nil {
		_, err = s.log.Seek(s.logSize, io.SeekStart)
	}
	if err == nil {
		err = s.log.Sync()
	}
	s.cut = err == nil
	if err != nil {
		return fmt.Errorf("cutting the metadata log back to %d bytes: %w", s.logSize, err)
	}
	return nil
}

// Recover makes a failed store writable again once the disk takes writes:
// the log is cut back to its last durable record (if the failure did not
// manage that), the cut and the directory are fsync'd, and proposals are
// accepted again. The state never held the failed commands (they are
// applied only once durable), so nothing else changes. On a healthy store
// Recover does nothing.
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

// recoverLog is Recover on the writer goroutine.
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

// Failed returns the error that made the store refuse changes, nil while
// it accepts them.
func (s *Store) Failed() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// fail makes the store refuse writes until Recover and returns the error
// every refused write will carry. It logs nothing: every refused caller
// gets the error, and the broker's recovery loop (broker.Recovery), which
// watches Failed, logs the failure and its end once for every kind of log.
func (s *Store) fail(err error) error {
	s.failed.CompareAndSwap(nil, &failure{fmt.Errorf("%w: %w", ErrStoreFailed, err)})
	return s.failed.Load().err
}

// snapshot writes the state as a snapshot and starts a new log after it.
// A snapshot that cannot be written is retried after another SnapshotEvery
// commands; the log still holds everything, so nothing is lost meanwhile.
func (s *Store) snapshot() {
	s.nextSnapshot = s.index + uint64(s.opts.SnapshotEvery)
	s.mu.RLock()
	state, err := s.state.MarshalJSON()
	index := s.index
	s.mu.RUnlock()
	if err == nil {
		err = writeSnapshot(s.dir, index, state)
	}
	if err != nil {
		s.logger.Warn("metadata snapshot failed", "dir", s.dir, "index", index, "err", err)
		return
	}
	f, err := createLog(s.dir, index+1)
	if f == nil {
		// The old log is still in place and complete: carry on with it.
		s.logger.Warn("metadata log rotation failed", "dir", s.dir, "index", index, "err", err)
		return
	}
	if cerr := s.log.Close(); cerr != nil {
		s.logger.Warn("closing rotated metadata log", "dir", s.dir, "err", cerr)
	}
	s.log, s.logSize = s.wrap(f), logHeaderSize
	s.snapIndex.Store(index)
	s.snapshots.Add(1)
	if err != nil {
		// The new log's name may not be durable: appending to it could lose
		// commands in a crash, so stop.
		s.fail(fmt.Errorf("syncing directory after log rotation: %w", err))
	}
}

// AppliedIndex returns the index of the last applied command.
func (s *Store) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	index := s.index
	s.mu.RUnlock()
	return Stats{
		Index:         index,
		SnapshotIndex: s.snapIndex.Load(),
		Commands:      s.commands.Load(),
		Syncs:         s.syncs.Load(),
		Snapshots:     s.snapshots.Load(),
	}
}
