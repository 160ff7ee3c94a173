package meta

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"go.etcd.io/raft/v3/raftpb"
)

// Errors of a clustered store.
var (
	// ErrNoLeader: the metadata group has no leader this node knows of
	// (an election is under way, or this node is cut off from a
	// majority), so the change was not made. Kafka maps it to
	// NOT_CONTROLLER, AMQP to a connection-level "not available".
	ErrNoLeader = errors.New("meta: no metadata leader")
	// ErrProposalTimeout: the change was handed to the leader but was not
	// applied on this node within ClusterOptions.ProposeTimeout (the
	// leader lost its majority, or this node is far behind). Unlike
	// ErrNoLeader, the change may still be applied later.
	ErrProposalTimeout = errors.New("meta: metadata change not committed in time (it may still apply)")
)

// ClusterOptions make a Store the metadata group's replica on this node.
type ClusterOptions struct {
	// Host runs the metadata group (cluster.MetaGroup). Required.
	Host *multiraft.Host
	// Voters are the group's first members (the keys of
	// cluster.Config.Peers). Used only when the directory is new; after
	// that, membership lives in the group's log.
	Voters []cluster.NodeID
	// ProposeTimeout bounds how long a change waits to be applied on
	// this node. Default 10s.
	ProposeTimeout time.Duration
	// ObserveCommit, when set, is called with the time from proposing a
	// change on this node to this node applying it (for the commit
	// latency metric), for each change that applied.
	ObserveCommit func(time.Duration)
}

// raftDir is the Raft log's directory inside the store directory.
const raftDir = "raft"

// clustered is the Raft side of a clustered Store.
type clustered struct {
	host    *multiraft.Host
	self    cluster.NodeID
	storage *multiraft.DiskStorage
	timeout time.Duration
	observe func(time.Duration) // ClusterOptions.ObserveCommit

	nextID   atomic.Uint64
	received atomic.Uint64 // snapshots applied from a leader
	mu       sync.Mutex    // guards waiters
	waiters  map[uint64]*proposal
}

// OpenCluster opens or creates the store in dir as this node's replica of
// the metadata group: the group's Raft log (entries with their terms, the
// HardState, and snapshots that are metadata snapshots) lives in dir/raft,
// and every committed command is applied with the same State.Apply as on
// a single node, so every node's State is the same. The metadata group is
// added to the host; Close removes it.
//
// Changes go through Raft: a Store method checks the command against this
// node's state (a request that cannot succeed is refused here), proposes
// it (a follower forwards it to the leader), and returns once this node
// has applied it, with the result Apply gave: ErrNoLeader or
// ErrProposalTimeout if that does not happen. Reads are served from this
// node's state, which may lag the leader's by the entries not yet applied
// here.
//
// A directory holding a single-node log (meta.log, snapshot.json) is
// refused: turning a single node into a cluster is not supported yet.
func OpenCluster(dir string, opts Options, co ClusterOptions) (*Store, error) {
	if co.Host == nil {
		return nil, errors.New("meta: OpenCluster needs a multiraft host")
	}
	if co.ProposeTimeout <= 0 {
		co.ProposeTimeout = 10 * time.Second
	}
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
	for _, name := range []string{logName, snapshotName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("meta: %s holds a single-node metadata log (%s); it cannot join a cluster", dir, name)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	storage, err := multiraft.OpenDiskStorage(filepath.Join(dir, raftDir))
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		logger:   opts.Logger.With("component", "meta"),
		lockFile: lock,
		state:    NewState(),
		done:     make(chan struct{}),
		raft: &clustered{
			host:    co.Host,
			self:    co.Host.NodeID(),
			storage: storage,
			timeout: co.ProposeTimeout,
			observe: co.ObserveCommit,
			waiters: make(map[uint64]*proposal),
		},
	}
	close(s.done) // no writer goroutine
	snap, err := storage.Snapshot()
	if err == nil && len(snap.GetData()) > 0 {
		var index uint64
		index, s.state, err = decodeSnapshot(snap.GetData())
		s.index = index
		s.snapIndex.Store(index)
	}
	if err != nil {
		storage.Close()
		lock.Close()
		return nil, err
	}
	// Request ids start from the clock so that a restarted node does not
	// reuse the ids of its proposals still in the log.
	s.raft.nextID.Store(uint64(time.Now().UnixNano()))
	err = co.Host.AddGroup(multiraft.GroupConfig{
		ID:            cluster.MetaGroup,
		Storage:       storage,
		StateMachine:  raftMachine{s},
		Voters:        co.Voters,
		Applied:       s.index,
		SnapshotEvery: uint64(opts.SnapshotEvery),
	})
	if err != nil {
		storage.Close()
		lock.Close()
		return nil, err
	}
	return s, nil
}

// closeCluster is Close for a clustered store: the group leaves the host,
// waiting proposals are answered ErrClosed.
func (s *Store) closeCluster() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	c := s.raft
	c.host.RemoveGroup(cluster.MetaGroup)
	c.mu.Lock()
	for id, p := range c.waiters {
		p.err = ErrClosed
		close(p.done)
		delete(c.waiters, id)
	}
	c.mu.Unlock()
	err := c.storage.Close()
	if lerr := s.lockFile.Close(); err == nil {
		err = lerr
	}
	return err
}

// proposeRaft proposes already prepared commands through Raft and waits
// for this node to apply each.
func (s *Store) proposeRaft(ps []*proposal) {
	c := s.raft
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	var ids []uint64
	for _, p := range ps {
		if p == nil {
			ids = append(ids, 0)
			continue
		}
		id := c.nextID.Add(1)
		ids = append(ids, id)
		data := appendEntry(nil, c.self, id, p.rec[recordHeaderSize:])
		s.closeMu.RLock()
		closed := s.closed
		if !closed {
			c.mu.Lock()
			c.waiters[id] = p
			c.mu.Unlock()
		}
		s.closeMu.RUnlock()
		if closed {
			p.err = ErrClosed
			close(p.done)
			continue
		}
		if err := c.host.Propose(ctx, cluster.MetaGroup, data); err != nil {
			if errors.Is(err, multiraft.ErrProposalDropped) {
				err = ErrNoLeader
			} else if errors.Is(err, multiraft.ErrUnknownGroup) || errors.Is(err, multiraft.ErrClosed) {
				err = ErrClosed
			} else if errors.Is(err, multiraft.ErrStorageFailed) {
				err = fmt.Errorf("%w: %w", ErrStoreFailed, err)
			}
			c.answer(id, Result{}, err)
		}
	}
	for i, p := range ps {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			if c.observe != nil && p.err == nil {
				c.observe(time.Since(start))
			}
		case <-ctx.Done():
			err := ErrProposalTimeout
			if c.host.Leader(cluster.MetaGroup) == 0 {
				err = ErrNoLeader
			}
			c.answer(ids[i], Result{}, err)
			<-p.done
		}
	}
}

// answer answers the waiting proposal id, if it is still waiting.
func (c *clustered) answer(id uint64, res Result, err error) {
	c.mu.Lock()
	p := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	if p != nil {
		p.res, p.err = res, err
		close(p.done)
	}
}

// raftMachine is the Store as the metadata group's state machine.
type raftMachine struct{ s *Store }

// Apply applies committed entries with State.Apply, in log order, and
// answers this node's proposals among them. An entry that does not decode
// is skipped on every node alike (it cannot come from a Store, which
// checks commands before proposing them).
func (m raftMachine) Apply(ents []*raftpb.Entry) {
	s := m.s
	type answer struct {
		id  uint64
		res Result
		err error
	}
	var answers []answer
	s.mu.Lock()
	for _, e := range ents {
		s.index = e.GetIndex()
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		origin, id, payload, err := decodeEntry(e.GetData())
		var cmd Command
		if err == nil {
			cmd, err = decodeCommand(payload)
		}
		if err != nil {
			s.logger.Error("skipping an undecodable metadata entry", "index", e.GetIndex(), "err", err)
			if origin == s.raft.self {
				answers = append(answers, answer{id, Result{}, err})
			}
			continue
		}
		res, err := s.state.Apply(cmd)
		s.commands.Add(1)
		if origin == s.raft.self {
			answers = append(answers, answer{id, res, err})
		}
	}
	s.mu.Unlock()
	for _, a := range answers {
		s.raft.answer(a.id, a.res, a.err)
	}
}

// ApplySnapshot replaces the state with the leader's snapshot.
func (m raftMachine) ApplySnapshot(snap *raftpb.Snapshot) {
	s := m.s
	index, st, err := decodeSnapshot(snap.GetData())
	if err != nil {
		// The leader sent what its own Snapshot produced; a snapshot that
		// does not decode means a newer or broken version: keep the old
		// state and say so loudly.
		s.logger.Error("metadata snapshot from the leader does not decode", "index", snap.GetMetadata().GetIndex(), "err", err)
		return
	}
	s.mu.Lock()
	s.state.handOver(st)
	s.state, s.index = st, index
	s.mu.Unlock()
	s.snapIndex.Store(index)
	s.raft.received.Add(1)
}

// Snapshot encodes the state as a metadata snapshot (the snapshot.json
// format, with the index of the last entry applied).
func (m raftMachine) Snapshot() ([]byte, error) {
	s := m.s
	s.mu.RLock()
	state, err := s.state.MarshalJSON()
	index := s.index
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	s.snapIndex.Store(index)
	s.snapshots.Add(1)
	return encodeSnapshot(index, state), nil
}

// A metadata entry in the Raft log: version (1 byte, 1), the proposing
// node (8), its request id (8), then the command as in a meta.log record.
const (
	entryVersion    = 1
	entryHeaderSize = 17
)

func appendEntry(dst []byte, origin cluster.NodeID, id uint64, payload []byte) []byte {
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint64(dst, origin)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, payload...)
}

var errBadEntry = fmt.Errorf("%w: not a metadata entry", ErrInvalidCommand)

// decodeEntry splits an entry's data. It comes from the network (a
// leader's append): it is checked, never trusted.
func decodeEntry(b []byte) (origin cluster.NodeID, id uint64, payload []byte, err error) {
	if len(b) < entryHeaderSize || b[0] != entryVersion {
		return 0, 0, nil, errBadEntry
	}
	if len(b)-entryHeaderSize > MaxRecordSize {
		return 0, 0, nil, ErrCommandTooLarge
	}
	return binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:17]), b[entryHeaderSize:], nil
}
