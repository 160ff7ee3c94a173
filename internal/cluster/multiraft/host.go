package multiraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Storage is a group's Raft log: raft.Storage for reading, plus durable
// writes. DiskStorage is the implementation for a directory.
type Storage interface {
	raft.Storage
	// Save makes a Ready's HardState, entries and snapshot durable (any
	// may be nil or empty) and returns only once they are fsynced: the
	// host sends that Ready's messages after Save returns.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error
	// Compact records a snapshot of the state machine as of index, with
	// the group's conf state, and may drop the log up to index.
	Compact(index uint64, cs *raftpb.ConfState, data []byte) error
}

// LogSnapshotter is a Storage whose Snapshot, what Raft sends a follower,
// may be older than the snapshot its log and InitialState's conf state
// continue from, which LogSnapshot returns. A group is opened from the
// latter: the configuration changes after it are replayed onto that conf
// state (replaying those before it too could pass through a
// configuration without voters, which Raft refuses).
type LogSnapshotter interface {
	LogSnapshot() (*raftpb.Snapshot, error)
}

// StateMachine is what a group replicates into. Its methods are called
// from one goroutine at a time per group, in log order.
type StateMachine interface {
	// Apply applies committed entries, in order. They include empty
	// entries (a new leader's) and configuration changes, which the host
	// has already applied to Raft: a state machine that keeps only
	// EntryNormal data skips the rest.
	Apply(ents []*raftpb.Entry)
	// ApplySnapshot replaces the state with a snapshot received from the
	// leader (its Data is what Snapshot returned on the leader).
	ApplySnapshot(snap *raftpb.Snapshot)
	// Snapshot returns the state as of the last entry applied, for
	// Storage.Compact. Called only when GroupConfig.SnapshotEvery is set.
	Snapshot() ([]byte, error)
}

// GroupConfig describes one group on this node.
type GroupConfig struct {
	ID           cluster.GroupID
	Storage      Storage
	StateMachine StateMachine
	// Voters bootstraps a new group: used only when Storage is empty.
	// Leave it empty for a replica that joins an existing group (it
	// waits for the leader to send it a snapshot).
	Voters []cluster.NodeID
	// Applied is the index of the last entry the state machine holds
	// after a restart (0 for a new group). Committed entries after it are
	// applied again.
	Applied uint64
	// ElectionTick and HeartbeatTick are in host ticks. Defaults 10 and 1.
	ElectionTick, HeartbeatTick int
	// SnapshotEvery is the number of applied entries between snapshots
	// (StateMachine.Snapshot then Storage.Compact). 0: never.
	SnapshotEvery uint64
	// ApplyBeforeSave lets the host apply the committed entries that an
	// earlier round saved before saving the new ones of the round, so
	// that under load an entry's apply does not wait for the next
	// round's fsync. A crash between the two leaves the state machine
	// ahead of the commit index saved: after a restart (Applied clamped
	// to that commit) entries it holds are handed to it again, so it
	// must skip entries at or below what it has applied (a replicated
	// partition does: replica.Apply).
	ApplyBeforeSave bool
}

// Options configure a Host.
type Options struct {
	NodeID    cluster.NodeID
	Transport cluster.Transport
	// TickInterval is the period of the one ticker that drives every
	// group's Raft clock. Default 100ms.
	TickInterval time.Duration
	// Workers is the number of goroutines that handle Ready rounds.
	// Default 4×GOMAXPROCS, at least 16.
	Workers int
	// Logger receives host and Raft events (Raft's Info as Debug).
	// Default slog.Default().
	Logger *slog.Logger
	// OnLeaderChange, when set, is called (from a worker goroutine; it
	// must not block) whenever this node learns of a new leader of a
	// group, or of having none (leader 0).
	OnLeaderChange func(group cluster.GroupID, leader cluster.NodeID, term uint64)
	// NoQuiesce keeps every group ticking even when idle (see
	// quiesce.go); for measurements and tests of the unquiesced host.
	NoQuiesce bool
}

// Errors of the Host.
var (
	ErrClosed       = errors.New("multiraft: host closed")
	ErrUnknownGroup = errors.New("multiraft: unknown group")
	ErrGroupExists  = errors.New("multiraft: group already exists")
	// ErrProposalDropped: Raft dropped the proposal, because this node
	// knows no leader for the group or leadership is being transferred.
	ErrProposalDropped = errors.New("multiraft: proposal dropped (no leader)")
)

// Host runs the Raft groups of one node: one ticker for all of them, a
// small pool of workers that handles the groups with work to do in
// rounds, and one transport shared by all groups. See doc.go.
type Host struct {
	opts   Options
	id     cluster.NodeID
	tr     cluster.Transport
	logger *slog.Logger
	rlog   raft.Logger

	mu     sync.RWMutex // guards groups
	groups map[cluster.GroupID]*group

	schedMu sync.Mutex // guards dirty, idle and the groups' queued and running flags
	// dirty[head:]: the groups with work to do and no worker, oldest
	// first.
	dirty []*group
	head  int
	// idle: workers waiting for work and not yet signalled. A group put
	// on the dirty list signals one of them (signal has room for every
	// worker); a busy worker takes the next group itself when it is done.
	idle   int
	signal chan struct{}

	started   atomic.Bool
	closed    atomic.Bool
	stop      chan struct{}
	loopsDone sync.WaitGroup

	quiet  quiescence
	counts hostCounters
	// alive is the transport's Alive when it has one (a peer heard from
	// recently), else Reachable: node liveness for quiescence.
	alive func(cluster.NodeID) bool
}

// group is one Raft group on this node. mu guards rn and the fields
// after it; proc is held by the worker handling its Ready, so that
// RemoveGroup can wait for it.
type group struct {
	id      cluster.GroupID
	storage Storage
	sm      StateMachine
	cfg     GroupConfig

	proc sync.Mutex

	mu        sync.Mutex
	rn        *raft.RawNode
	removed   bool
	failed    error
	confState *raftpb.ConfState
	// confIndex is the index of the last configuration change applied
	// (or of the snapshot that brought the conf state): confState is the
	// conf state as of every index from confIndex to applied.
	confIndex uint64
	applied   uint64
	snapIndex uint64

	// pending: messages of the quiescence protocol for the worker to
	// send (guarded by mu).
	pending []*raftpb.Message

	// queued: the group has work to do; running: a worker has it.
	// Guarded by Host.schedMu.
	queued, running bool
	leader          atomic.Uint64
	term            atomic.Uint64
	role            atomic.Uint64 // raft.StateType, from the last SoftState

	// quiesced: the group is not ticked (quiesce.go). Written under mu
	// (and Host.quiet.mu for the watches), read anywhere.
	quiesced atomic.Bool
	watching []cluster.NodeID // guarded by Host.quiet.mu
}

// New returns a host. It sets itself as the transport's handler; the
// caller starts and closes the transport (before Start and after Close).
func New(opts Options) *Host {
	if opts.TickInterval <= 0 {
		opts.TickInterval = 100 * time.Millisecond
	}
	if opts.Workers <= 0 {
		// A worker spends most of a round in fsync: enough of them that
		// the groups of a round write to the disk together.
		opts.Workers = max(16, 4*runtime.GOMAXPROCS(0))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	logger := opts.Logger.With("component", "multiraft", "node", opts.NodeID)
	h := &Host{
		opts:   opts,
		id:     opts.NodeID,
		tr:     opts.Transport,
		logger: logger,
		rlog:   raftLogger{logger},
		groups: make(map[cluster.GroupID]*group),
		signal: make(chan struct{}, opts.Workers),
		stop:   make(chan struct{}),
	}
	h.quiet.init()
	h.alive = h.tr.Reachable
	if a, ok := h.tr.(interface{ Alive(cluster.NodeID) bool }); ok {
		h.alive = a.Alive
	}
	h.tr.SetHandler(h.receive)
	return h
}

// NodeID returns this node's id.
func (h *Host) NodeID() cluster.NodeID { return h.id }

// Start starts the ticker and the workers.
func (h *Host) Start() {
	if h.started.Swap(true) {
		return
	}
	h.loopsDone.Add(1 + h.opts.Workers)
	for range h.opts.Workers {
		go h.worker()
	}
	go h.tickLoop()
}

// Close stops the host. Groups stop where they are: Close waits for the
// Readies being handled, no other starts. Their storage and state machines
// belong to their owners, who close them after.
func (h *Host) Close() {
	if h.closed.Swap(true) {
		return
	}
	close(h.stop)
	h.loopsDone.Wait()
	h.mu.Lock()
	for _, g := range h.groups {
		g.mu.Lock()
		g.removed = true
		g.mu.Unlock()
	}
	h.mu.Unlock()
}

// AddGroup starts a replica of a group on this node.
func (h *Host) AddGroup(cfg GroupConfig) error {
	if h.closed.Load() {
		return ErrClosed
	}
	if cfg.ID == 0 || cfg.Storage == nil || cfg.StateMachine == nil {
		return errors.New("multiraft: a group needs an id, storage and a state machine")
	}
	if cfg.ElectionTick <= 0 {
		cfg.ElectionTick = 10
	}
	if cfg.HeartbeatTick <= 0 {
		cfg.HeartbeatTick = 1
	}
	hs, cs, err := cfg.Storage.InitialState()
	if err != nil {
		return err
	}
	last, err := cfg.Storage.LastIndex()
	if err != nil {
		return err
	}
	// The snapshot the log and InitialState continue from: a Storage's
	// Snapshot may give followers an older one (LogSnapshotter).
	snapshot := cfg.Storage.Snapshot
	if ls, ok := cfg.Storage.(LogSnapshotter); ok {
		snapshot = ls.LogSnapshot
	}
	snap, err := snapshot()
	if err != nil {
		return err
	}
	applied := max(cfg.Applied, snap.GetMetadata().GetIndex())
	applied = min(applied, hs.GetCommit())
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              h.id,
		ElectionTick:    cfg.ElectionTick,
		HeartbeatTick:   cfg.HeartbeatTick,
		Storage:         cfg.Storage,
		Applied:         applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// Bounds what a leader that cannot commit holds in memory.
		MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    h.rlog,
		// A leader removed from its group steps down at once rather
		// than lead a group it is no longer part of (membership.go).
		StepDownOnRemoval: true,
	})
	if err != nil {
		return err
	}
	g := &group{id: cfg.ID, storage: cfg.Storage, sm: cfg.StateMachine, cfg: cfg, rn: rn,
		confState: proto.Clone(cs).(*raftpb.ConfState), applied: applied, snapIndex: snap.GetMetadata().GetIndex(),
		confIndex: snap.GetMetadata().GetIndex()}
	if last == 0 && raft.IsEmptyHardState(hs) && len(cfg.Voters) > 0 {
		peers := make([]raft.Peer, len(cfg.Voters))
		for i, id := range cfg.Voters {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return err
		}
	} else if applied > g.snapIndex {
		// Configuration changes after the snapshot that the state
		// machine already holds will not be applied again: replay them
		// into Raft now.
		if err := g.replayConfChanges(g.snapIndex+1, applied); err != nil {
			return err
		}
	}
	h.mu.Lock()
	if _, ok := h.groups[cfg.ID]; ok {
		h.mu.Unlock()
		return ErrGroupExists
	}
	h.groups[cfg.ID] = g
	h.mu.Unlock()
	h.schedule(g)
	return nil
}

func (g *group) replayConfChanges(lo, hi uint64) error {
	ents, err := g.storage.Entries(lo, hi+1, ^uint64(0))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if cc := decodeConfChange(e); cc != nil {
			g.confState = g.rn.ApplyConfChange(cc)
			g.confIndex = e.GetIndex()
		}
	}
	return nil
}

// RemoveGroup stops this node's replica of a group, waiting for a Ready
// being handled to finish. Its storage is left to the caller.
func (h *Host) RemoveGroup(id cluster.GroupID) {
	h.mu.Lock()
	g := h.groups[id]
	delete(h.groups, id)
	h.mu.Unlock()
	if g == nil {
		return
	}
	g.mu.Lock()
	g.removed = true
	h.wakeLocked(g, nil)
	g.mu.Unlock()
	g.proc.Lock()
	g.proc.Unlock() //nolint:staticcheck // waits for the worker to let go
}

func (h *Host) group(id cluster.GroupID) (*group, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	h.mu.RLock()
	g := h.groups[id]
	h.mu.RUnlock()
	if g == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownGroup, id)
	}
	return g, nil
}

// withRaft runs fn on the group's RawNode and schedules the group. With
// wake, a quiesced group is woken first: fn changes what Raft must do.
func (h *Host) withRaft(id cluster.GroupID, wake bool, fn func(rn *raft.RawNode) error) error {
	g, err := h.group(id)
	if err != nil {
		return err
	}
	g.mu.Lock()
	switch {
	case g.removed:
		err = fmt.Errorf("%w %d", ErrUnknownGroup, id)
	case g.failed != nil:
		err = g.failed
	default:
		if wake {
			h.wakeLocked(g, nil)
		}
		err = fn(g.rn)
	}
	g.mu.Unlock()
	h.schedule(g)
	return err
}

// Propose proposes data to the group. It returns once Raft has taken the
// proposal (forwarding it to the leader if this node follows), not once it
// commits: the state machine learns of the commit through Apply. ctx is
// checked only before proposing, since nothing here blocks.
func (h *Host) Propose(ctx context.Context, id cluster.GroupID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := h.withRaft(id, true, func(rn *raft.RawNode) error {
		return dropped(rn.Propose(data))
	})
	h.counts.proposal(err)
	return err
}

// ProposeConfChange proposes a membership change to the group.
func (h *Host) ProposeConfChange(ctx context.Context, id cluster.GroupID, cc *raftpb.ConfChangeV2) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := h.withRaft(id, true, func(rn *raft.RawNode) error {
		return dropped(rn.ProposeConfChange(cc))
	})
	h.counts.proposal(err)
	return err
}

func dropped(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrProposalDropped
	}
	return err
}

// Leader returns the group's leader as this node last heard, 0 if none.
func (h *Host) Leader(id cluster.GroupID) cluster.NodeID {
	g, err := h.group(id)
	if err != nil {
		return 0
	}
	return g.leader.Load()
}

// LeaderTerm returns the group's leader as this node last heard (0 if
// none) and the term it knows, without taking the group's lock.
func (h *Host) LeaderTerm(id cluster.GroupID) (cluster.NodeID, uint64) {
	g, err := h.group(id)
	if err != nil {
		return 0, 0
	}
	return g.leader.Load(), g.term.Load()
}

// Status returns the group's Raft status (with progress of followers when
// this node leads).
func (h *Host) Status(id cluster.GroupID) (raft.Status, error) {
	var st raft.Status
	err := h.withRaft(id, false, func(rn *raft.RawNode) error {
		st = rn.Status()
		return nil
	})
	return st, err
}

// TransferLeadership asks the group's leader (this node) to hand over to
// node to. It does nothing on a follower.
func (h *Host) TransferLeadership(id cluster.GroupID, to cluster.NodeID) error {
	return h.withRaft(id, true, func(rn *raft.RawNode) error {
		rn.TransferLeader(to)
		return nil
	})
}

// Campaign makes this node campaign for leadership of the group at once
// instead of after an election timeout (tests, and a node that knows it
// should lead).
func (h *Host) Campaign(id cluster.GroupID) error {
	return h.withRaft(id, true, func(rn *raft.RawNode) error { return rn.Campaign() })
}

// schedule puts g on the dirty list, once, and signals an idle worker if
// there is one; a group a worker has goes there again when the worker is
// done with it.
func (h *Host) schedule(g *group) {
	h.schedMu.Lock()
	if g.queued {
		h.schedMu.Unlock()
		return
	}
	g.queued = true
	signal := false
	if !g.running {
		h.dirty = append(h.dirty, g)
		if h.idle > 0 {
			h.idle--
			signal = true
		}
	}
	h.schedMu.Unlock()
	if signal {
		h.signal <- struct{}{} // never blocks: room for every worker
	}
}

// tickLoop ticks the Raft clock of every group that is not quiesced,
// quiescing the idle ones it leads, and wakes quiesced groups whose peers'
// liveness changed (quiesce.go).
func (h *Host) tickLoop() {
	defer h.loopsDone.Done()
	t := time.NewTicker(h.opts.TickInterval)
	defer t.Stop()
	var gs []*group
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.RLock()
		gs = gs[:0]
		for _, g := range h.groups {
			gs = append(gs, g)
		}
		h.mu.RUnlock()
		h.pollLiveness()
		for _, g := range gs {
			if g.quiesced.Load() {
				continue // costs nothing until woken
			}
			g.mu.Lock()
			ready := false
			if !g.removed && g.failed == nil && !g.quiesced.Load() {
				if h.opts.NoQuiesce || !h.maybeQuiesceLocked(g) {
					g.rn.Tick()
				}
				ready = g.rn.HasReady()
			}
			g.mu.Unlock()
			if ready {
				h.schedule(g)
			}
		}
		clear(gs)
	}
}

// worker handles the dirty groups' Readies, oldest first, as long as
// there are any, then waits for a signal. A group's Ready does not wait for
// other groups' fsyncs, and its messages leave as soon as its own Save is
// done. Workers take groups from the list themselves: no dispatcher
// goroutine stands between a message or proposal and the Ready it makes.
func (h *Host) worker() {
	defer h.loopsDone.Done()
	for {
		h.schedMu.Lock()
		for h.head == len(h.dirty) && !h.closed.Load() {
			h.idle++
			h.schedMu.Unlock()
			select {
			case <-h.signal:
			case <-h.stop:
				return
			}
			h.schedMu.Lock()
		}
		if h.closed.Load() {
			h.schedMu.Unlock()
			return // no Ready starts once Close has begun
		}
		g := h.dirty[h.head]
		h.dirty[h.head] = nil
		h.head++
		if h.head == len(h.dirty) {
			h.dirty, h.head = h.dirty[:0], 0
		} else if h.head >= 1024 && h.head > len(h.dirty)/2 {
			n := copy(h.dirty, h.dirty[h.head:])
			clear(h.dirty[n:])
			h.dirty, h.head = h.dirty[:n], 0
		}
		g.queued = false
		g.running = true
		h.schedMu.Unlock()

		h.handleReady(g)

		h.schedMu.Lock()
		g.running = false
		if g.queued {
			h.dirty = append(h.dirty, g) // this worker, or another, takes it next
		}
		h.schedMu.Unlock()
	}
}

// handleReady handles one Ready of g in the order Raft requires: persist,
// then queue the messages, apply the snapshot and committed entries,
// Advance.
func (h *Host) handleReady(g *group) {
	g.proc.Lock()
	defer g.proc.Unlock()
	g.mu.Lock()
	pending := g.pending
	g.pending = nil
	if g.removed || g.failed != nil {
		g.mu.Unlock()
		return
	}
	if !g.rn.HasReady() {
		g.mu.Unlock()
		h.send(g, pending)
		return
	}
	rd := g.rn.Ready()
	g.mu.Unlock()

	if rd.SoftState != nil {
		g.role.Store(uint64(rd.SoftState.RaftState))
		term := rd.HardState.GetTerm()
		if term == 0 {
			term = g.term.Load()
		}
		g.term.Store(term)
		if old := g.leader.Swap(rd.SoftState.Lead); old != rd.SoftState.Lead {
			if rd.SoftState.Lead != 0 {
				h.counts.leaderChange(g.id)
			}
			if h.opts.OnLeaderChange != nil {
				h.opts.OnLeaderChange(g.id, rd.SoftState.Lead, term)
			}
		}
	} else if rd.HardState != nil {
		g.term.Store(rd.HardState.GetTerm())
	}
	msgs := rd.Messages
	if raft.StateType(g.role.Load()) == raft.StateLeader {
		// A leader sends its appends before writing them itself, so
		// that its fsync and its followers' overlap (Raft thesis
		// 10.2.1, as etcd does): an entry is applied, and a produce
		// answered, only after a later Ready, once this Save is done,
		// and the commit index that covers it goes out no sooner.
		msgs = h.sendNow(g, msgs)
	}
	committed := rd.CommittedEntries
	if g.cfg.ApplyBeforeSave && len(committed) > 0 && (rd.Snapshot == nil || raft.IsEmptySnap(rd.Snapshot)) {
		// Those saved by an earlier round (below this round's first
		// new entry) are durable here and committed: apply them now,
		// before this round's fsync.
		n := len(committed)
		if len(rd.Entries) > 0 {
			first := rd.Entries[0].GetIndex()
			n = sort.Search(n, func(i int) bool { return committed[i].GetIndex() >= first })
		}
		if n > 0 {
			h.applyCommitted(g, committed[:n])
			committed = committed[n:]
		}
	}
	if rd.HardState != nil || len(rd.Entries) > 0 || (rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot)) {
		if err := g.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			// Nothing of this Ready may be sent or applied: the group
			// stops here (a failed fsync cannot be trusted).
			g.mu.Lock()
			g.failed = err
			g.mu.Unlock()
			h.logger.Error("raft group stopped: saving its log failed", "group", g.id, "err", err)
			return
		}
	}
	h.send(g, append(pending, msgs...))
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		g.sm.ApplySnapshot(rd.Snapshot)
		md := rd.Snapshot.GetMetadata()
		g.applied, g.snapIndex = md.GetIndex(), md.GetIndex()
		g.mu.Lock() // the tick loop reads confState
		g.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
		g.confIndex = md.GetIndex()
		g.mu.Unlock()
	}
	if len(committed) > 0 {
		h.applyCommitted(g, committed)
	}
	if every := g.cfg.SnapshotEvery; every > 0 && g.applied >= g.snapIndex+every {
		h.compact(g)
	}
	g.mu.Lock()
	g.rn.Advance(rd)
	more := !g.removed && g.rn.HasReady()
	g.mu.Unlock()
	if more {
		h.schedule(g)
	}
}

// applyCommitted applies committed entries: configuration changes to
// Raft, then every entry to the state machine. Called by the worker.
func (h *Host) applyCommitted(g *group, ents []*raftpb.Entry) {
	for _, e := range ents {
		if cc := decodeConfChange(e); cc != nil {
			g.mu.Lock()
			g.confState = g.rn.ApplyConfChange(cc)
			g.confIndex = e.GetIndex()
			h.confChangedLocked(g)
			g.mu.Unlock()
		}
	}
	g.sm.Apply(ents)
	g.applied = ents[len(ents)-1].GetIndex()
}

// compact snapshots g's state machine and lets its storage drop the log.
// A failure is logged and retried after another SnapshotEvery entries:
// the log still holds everything.
func (h *Host) compact(g *group) {
	index := g.applied
	g.snapIndex = index
	data, err := g.sm.Snapshot()
	if err == nil {
		err = g.storage.Compact(index, g.confState, data)
	}
	if err != nil {
		h.logger.Warn("raft snapshot failed", "group", g.id, "index", index, "err", err)
	}
}

// Compact lets group id's storage drop its log up to index, recording
// data as the state machine's snapshot there, for a state machine that
// keeps what it applied durably on its own (a replicated partition's
// segment log) instead of answering Snapshot on a schedule. index must
// have been applied. It runs between the group's Ready rounds, so that
// the conf state recorded is the one as of index; when a configuration
// change was applied after index it does nothing (done is false) and
// the caller tries again later with a later index.
func (h *Host) Compact(id cluster.GroupID, index uint64, data []byte) (done bool, err error) {
	g, err := h.group(id)
	if err != nil {
		return false, err
	}
	// The conf state is read between rounds; the storage compacts
	// without holding up the group's rounds (its own lock orders it with
	// Save, and Raft reads below index no more: it has applied them).
	g.proc.Lock()
	g.mu.Lock()
	removed, failed, cs, confIndex := g.removed, g.failed, g.confState, g.confIndex
	g.mu.Unlock()
	applied, snapIndex := g.applied, g.snapIndex
	g.proc.Unlock()
	switch {
	case removed:
		return false, fmt.Errorf("%w %d", ErrUnknownGroup, id)
	case failed != nil:
		return false, failed
	case index > applied:
		return false, fmt.Errorf("multiraft: compacting group %d to %d, past its applied index %d", id, index, applied)
	case index <= snapIndex || confIndex > index:
		return false, nil
	}
	if err := g.storage.Compact(index, cs, data); err != nil {
		return false, err
	}
	return true, nil
}

// decodeConfChange returns the change an entry carries, nil for other
// entries. An undecodable one is skipped: it was proposed by the host,
// through Raft's own encoding.
func decodeConfChange(e *raftpb.Entry) raftpb.ConfChangeI {
	switch e.GetType() {
	case raftpb.EntryConfChange:
		cc := new(raftpb.ConfChange)
		if proto.Unmarshal(e.GetData(), cc) != nil {
			return nil
		}
		return cc
	case raftpb.EntryConfChangeV2:
		cc := new(raftpb.ConfChangeV2)
		if proto.Unmarshal(e.GetData(), cc) != nil {
			return nil
		}
		return cc
	}
	return nil
}

// sendNow sends a leader's appends and heartbeats of one Ready at once,
// to reachable nodes, and returns the other messages, which go out with
// the round after the Ready is saved.
func (h *Host) sendNow(g *group, msgs []*raftpb.Message) (rest []*raftpb.Message) {
	var now map[cluster.NodeID][]cluster.Envelope
	for _, m := range msgs {
		to := m.GetTo()
		t := m.GetType()
		if (t != raftpb.MsgApp && t != raftpb.MsgHeartbeat) || to == h.id || to == 0 || !h.tr.Reachable(to) {
			rest = append(rest, m)
			continue
		}
		if now == nil {
			now = make(map[cluster.NodeID][]cluster.Envelope)
		}
		envs := append(now[to], cluster.Envelope{Group: g.id})
		shallowCopyMessage(&envs[len(envs)-1].Msg, m)
		now[to] = envs
	}
	for to, envs := range now {
		h.tr.Send(to, envs)
	}
	return rest
}

// send sends the messages of g's Ready, once it is saved: one
// Transport.Send per destination (the transport's writer batches the
// sends of all groups to a node into its frames). A destination that is
// not reachable is reported to the group (ReportUnreachable, so that its
// leader probes instead of streaming), and snapshots sent are reported
// finished, or failed when the node was unreachable: the transport does
// not acknowledge delivery, and the follower's answer corrects Raft.
func (h *Host) send(g *group, msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	var out map[cluster.NodeID][]cluster.Envelope
	var snapTo []cluster.NodeID
	for _, m := range msgs {
		to := m.GetTo()
		if to == h.id || to == 0 {
			continue
		}
		if out == nil {
			out = make(map[cluster.NodeID][]cluster.Envelope)
		}
		envs := append(out[to], cluster.Envelope{Group: g.id})
		env := &envs[len(envs)-1]
		shallowCopyMessage(&env.Msg, m)
		if m.GetType() == raftpb.MsgHeartbeatResp && g.quiesced.Load() {
			// The answer to a quiesce heartbeat: the leader must
			// not take it as a reason to wake.
			env.Msg.Reject = proto.Bool(true)
		}
		out[to] = envs
		if m.GetType() == raftpb.MsgSnap {
			snapTo = append(snapTo, to)
		}
	}
	var down []cluster.NodeID
	for to, envs := range out {
		if h.tr.Reachable(to) {
			h.tr.Send(to, envs)
		} else {
			down = append(down, to)
		}
	}
	if len(down) == 0 && len(snapTo) == 0 {
		return
	}
	g.mu.Lock()
	if !g.removed && g.failed == nil {
		for _, to := range down {
			g.rn.ReportUnreachable(to)
		}
		for _, to := range snapTo {
			status := raft.SnapshotFinish
			if slices.Contains(down, to) {
				status = raft.SnapshotFailure
			}
			g.rn.ReportSnapshot(to, status)
		}
	}
	g.mu.Unlock()
}

// receive is the transport's handler: it steps each message into its
// group. Messages that do not fit this node (addressed elsewhere, claiming
// another sender, local to Raft, or malformed) are dropped: a peer is
// authenticated, but a bug there must not break Raft here.
func (h *Host) receive(from cluster.NodeID, envs []cluster.Envelope) {
	if h.closed.Load() {
		return
	}
	var last *group
	for i := range envs {
		m := &envs[i].Msg
		if !validIncoming(h.id, from, m) {
			continue
		}
		g := last
		if g == nil || g.id != envs[i].Group {
			h.mu.RLock()
			g = h.groups[envs[i].Group]
			h.mu.RUnlock()
			if g == nil {
				continue
			}
		}
		h.step(g, m)
		if g != last && last != nil {
			h.schedule(last)
		}
		last = g
	}
	if last != nil {
		h.schedule(last)
	}
}

// step steps a message from a peer into g. Raft trusts its peers and
// panics on some messages no correct peer sends (a heartbeat committing
// past the end of this node's log, an append that rewrites committed
// entries): such a panic stops the group, as a failed fsync does, rather
// than the process. Nothing of the message reached the disk, which Raft
// touches only through Ready.
func (h *Host) step(g *group, m *raftpb.Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed || g.failed != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			g.failed = fmt.Errorf("multiraft: group %d stopped by a message from node %d (%s): %v", g.id, m.GetFrom(), m.GetType(), r)
			h.logger.Error("raft group stopped", "group", g.id, "err", g.failed)
		}
	}()
	quiet := isQuiesceHeartbeat(m)
	if !quiet && !isQuiescedAnswer(m) {
		h.wakeLocked(g, m)
	}
	_ = g.rn.Step(m) // errors: a message for a removed peer, a stale one
	if quiet {
		h.followerQuiesceLocked(g, m)
	}
}

// Err returns the error that stopped a group (its storage failed, or a
// peer sent what Raft cannot take), nil while it runs.
func (h *Host) Err(id cluster.GroupID) error {
	g, err := h.group(id)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

// validIncoming checks what Raft assumes of a message from a peer.
func validIncoming(self, from cluster.NodeID, m *raftpb.Message) bool {
	if m.GetTo() != self || m.GetFrom() != from || from == 0 {
		return false
	}
	t := m.GetType()
	if _, known := raftpb.MessageType_name[int32(t)]; !known || raft.IsLocalMsg(t) {
		return false
	}
	switch t {
	case raftpb.MsgStorageAppend, raftpb.MsgStorageAppendResp, raftpb.MsgStorageApply, raftpb.MsgStorageApplyResp:
		return false
	case raftpb.MsgSnap:
		if m.GetSnapshot().GetMetadata() == nil {
			return false
		}
	}
	if len(m.GetResponses()) > 0 {
		return false
	}
	if t == raftpb.MsgApp {
		// Entries follow Index without gaps, and none is from a later
		// term than the message: what Raft's log assumes of them.
		next := m.GetIndex() + 1
		for _, e := range m.GetEntries() {
			if e.GetIndex() != next || e.GetTerm() > m.GetTerm() {
				return false
			}
			next++
		}
	}
	return true
}

// shallowCopyMessage copies src's fields into dst without copying the
// protobuf internals (which must not be copied): the entries and snapshot
// are shared, which is fine since Raft never changes a message it handed
// over. TestShallowCopyMessageCoversEveryField checks no field is missed.
func shallowCopyMessage(dst, src *raftpb.Message) {
	dst.Type = src.Type
	dst.To = src.To
	dst.From = src.From
	dst.Term = src.Term
	dst.LogTerm = src.LogTerm
	dst.Index = src.Index
	dst.Entries = src.Entries
	dst.Commit = src.Commit
	dst.Vote = src.Vote
	dst.Snapshot = src.Snapshot
	dst.Reject = src.Reject
	dst.RejectHint = src.RejectHint
	dst.Context = src.Context
	dst.Responses = src.Responses
}

// raftLogger sends Raft's log to slog; Raft's Info is chatty, so it is
// Debug here.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic(s)
}
func (r raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	r.l.Error(s)
	panic(s)
}
