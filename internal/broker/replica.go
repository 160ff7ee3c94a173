package broker

// Replicated partitions (docs/clustering.md, "Replicated partitions").
//
// A partition placed on more than one node is one Raft group of its own,
// whose voters are the nodes of its assignment. The group's Raft log (a
// multiraft.DiskStorage beside the partition's directory, <dir>.raft)
// holds produce requests as the leader checked them; the partition's
// segment log holds only what Raft committed, appended by Apply on every
// replica through the very code a single node appends with
// (Partition.appendLocal): offsets, idempotent-producer decisions and
// transaction state are computed from the same log by the same code in
// the same order, so every replica comes out the same. Each batch is
// stamped with the Raft term of its entry as its PartitionLeaderEpoch.
//
// The leader answers a produce once its entry is applied here: committed
// (a majority has it in an fsynced Raft log) and in this node's segment
// log. Readers see the segment log only, so the high watermark is the
// commit index as applied on this node, and nothing uncommitted is ever
// read.
//
// Restart. The segment log is fsynced per apply round like any log, and
// after each round a checkpoint (the last applied Raft index and the
// segment log's end offset then) is written beside the Raft log. A
// replica that restarts resumes after the checkpoint's index when its
// segment log ends where the checkpoint says; otherwise (a crash between
// the append and the checkpoint, or a lost checkpoint) the segment log
// cannot be trusted to hold exactly the applied entries, so it is
// dropped and rebuilt by applying the whole Raft log again. That is why
// the Raft log of a replicated partition is never compacted for now: it
// is the durable copy from which a replica can always be rebuilt.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Errors of replicated partitions.
var (
	// ErrNotEnoughReplicas: fewer replicas are in sync than the topic's
	// min.insync.replicas; an acks=all produce is refused unwritten.
	ErrNotEnoughReplicas = newError(KindUnavailable, "broker: fewer in-sync replicas than min.insync.replicas")
	// ErrReplicationTimeout: a produce was proposed but not committed and
	// applied here in time (the leader lost its majority, or changed).
	// It may still be committed later: a retry of an idempotent producer
	// is then answered as a duplicate.
	ErrReplicationTimeout = newError(KindUnavailable, "broker: produce not replicated in time (it may still be committed)")
)

// Replication settings (Options.Replication).
type ReplicationOptions struct {
	// Host runs the partitions' Raft groups; nil: no partition is
	// replicated (a single node).
	Host *multiraft.Host
	// LagTime is replica.lag.time.max.ms: a follower is in sync while
	// it has matched the leader's commit within it. Default 30s.
	LagTime time.Duration
	// ProposeTimeout bounds how long a produce waits for its entry to be
	// applied. Default 10s.
	ProposeTimeout time.Duration
	// Alive, when set, tells whether a node is up (the transport hears
	// from it). A follower counts as caught up only while its node is
	// alive: an idle leader's Raft progress would otherwise keep a dead
	// follower "recently active" and caught up for ever (Raft updates it
	// only with writes and CheckQuorum, and a quiesced group does
	// neither), so it would never leave the ISR.
	Alive func(node uint64) bool
}

// replicated reports whether partition i of tp is replicated through Raft
// on this node: in a cluster, held here and placed on more than one node.
// A partition of one replica stays a plain log: Raft over one voter would
// add a second write and nothing else, since its data lives on one node
// whatever the protocol.
func (b *Broker) replicated(tp *Topic, i int32) bool {
	return b.opts.Replication.Host != nil && b.opts.NodeID != 0 && tp.Replicas != nil &&
		int(i) < len(tp.Replicas) && len(tp.Replicas[i]) > 1 && b.holds(tp, i)
}

// partitionGroup is the Raft group id of partition i of a topic: a hash
// of the topic's permanent id and the partition, never 0 (no group) nor
// cluster.MetaGroup. Two partitions whose ids collide (a chance of about
// n²/2⁶⁵) cannot both be opened on a node: the second fails to open with
// multiraft.ErrGroupExists, and is reported, never mixed up.
func partitionGroup(id meta.TopicID, i int32) cluster.GroupID {
	h := fnv.New64a()
	h.Write(id[:])
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i))
	h.Write(b[:])
	g := h.Sum64()
	if g <= uint64(cluster.MetaGroup) {
		g += 2
	}
	return cluster.GroupID(g)
}

// replica is this node's replica of a replicated partition: the Raft
// group's state machine, and the leader's waiting produces.
type replica struct {
	host    *multiraft.Host
	self    cluster.NodeID
	gid     cluster.GroupID
	dir     string // the Raft log and the checkpoint
	store   *multiraft.DiskStorage
	voters  []cluster.NodeID
	lag     time.Duration
	isAlive func(node uint64) bool // nil: every node counts as alive
	timeout time.Duration
	log     *slog.Logger
	p       *Partition
	started bool

	nextID  atomic.Uint64
	mu      sync.Mutex // guards waiters and closed
	waiters map[uint64]*replPending
	closed  bool

	// Apply's own, one goroutine at a time.
	applied uint64
	// appliedTerm is the term of the last entry applied, read by settled.
	appliedTerm atomic.Uint64

	isrMu       sync.Mutex // guards the fields below
	leaderTerm  uint64     // the term the ISR below was sampled in
	leaderSince time.Time
	caughtUp    map[cluster.NodeID]time.Time
	cache       replicaState
	cachedAt    time.Time
	// The last membership change StepReassignments proposed, and when
	// (reassign.go).
	moveStep   string
	moveStepAt time.Time
}

// ReplicaState is what this node knows of a replicated partition's group.
type ReplicaState struct {
	// Leader is the group's leader as this node knows it; 0 for none.
	Leader uint64
	// Term is the group's current Raft term, the leader epoch.
	Term uint64
	// ISR are the replicas in sync with the leader; nil unless this node
	// leads (only the leader knows its followers' progress).
	ISR []int32
}

type replicaState = ReplicaState

// openReplicaLog opens the segment log of a replicated partition and its
// Raft log, deciding where applying resumes (see the file comment).
func (b *Broker) openReplicaLog(tp *Topic, i int32) (PartitionLog, error) {
	ro := b.opts.Replication
	dir := b.partitionDir(tp.Name, i)
	rdir := dir + ".raft"
	l, err := openDiskLog(dir, b.logOptions(tp.cfg))
	if err != nil {
		return nil, err
	}
	index, end, ok := readAppliedCheckpoint(rdir)
	var applied uint64
	switch {
	case ok && l.HighWatermark() == end:
		applied = index
	case !ok && l.HighWatermark() == 0:
	default:
		b.log.Warn("replicated partition: its log does not end where its checkpoint says; rebuilding it from the Raft log",
			"topic", tp.Name, "partition", i, "log_end", l.HighWatermark(), "checkpoint_end", end, "checkpoint", ok)
		if err := l.Delete(); err != nil {
			return nil, err
		}
		if l, err = openDiskLog(dir, b.logOptions(tp.cfg)); err != nil {
			return nil, err
		}
	}
	store, err := multiraft.OpenDiskStorage(rdir)
	if err != nil {
		l.Close()
		return nil, err
	}
	voters := make([]cluster.NodeID, 0, len(tp.Replicas[i]))
	for _, id := range tp.Replicas[i] {
		voters = append(voters, cluster.NodeID(id))
	}
	if b.joinsByMove(tp, i) {
		voters = nil // filled from the leader's log (reassign.go)
	}
	r := &replica{
		host: ro.Host, self: cluster.NodeID(b.opts.NodeID), dir: rdir,
		store: store, voters: voters, lag: ro.LagTime, timeout: ro.ProposeTimeout, isAlive: ro.Alive,
		log:     b.log.With("topic", tp.Name, "partition", i),
		waiters: make(map[uint64]*replPending), applied: applied,
		caughtUp: make(map[cluster.NodeID]time.Time),
	}
	if r.lag <= 0 {
		r.lag = 30 * time.Second
	}
	if r.timeout <= 0 {
		r.timeout = 10 * time.Second
	}
	// Request ids start from the clock so that a restarted leader does
	// not take the ids of its proposals still in the log for its own.
	r.nextID.Store(uint64(time.Now().UnixNano()))
	return &replicaLog{PartitionLog: l, r: r}, nil
}

// startReplica joins partition p of the topic whose permanent id is id
// to its Raft group, once p is complete: entries may be applied to it
// from now on. A new topic's partitions are opened before its id exists
// (it is given when its definition is committed), so they join their
// groups after that (CreateTopics); until then a zero id leaves them out.
func startReplica(p *Partition, id meta.TopicID) error {
	rl, ok := p.log.(*replicaLog)
	if !ok || id == (meta.TopicID{}) || rl.r.started {
		return nil
	}
	r := rl.r
	r.gid = partitionGroup(id, p.Index)
	r.p = p
	p.repl = r
	err := r.host.AddGroup(multiraft.GroupConfig{
		ID: r.gid, Storage: r.store, StateMachine: r, Voters: r.voters, Applied: r.applied,
	})
	if err != nil {
		return fmt.Errorf("raft group of %s-%d: %w", p.Topic, p.Index, err)
	}
	r.started = true
	return nil
}

// replicaLog is a replicated partition's segment log; closing it takes the
// partition out of its Raft group first.
type replicaLog struct {
	PartitionLog
	r *replica
}

func (l *replicaLog) Close() error {
	l.r.stop()
	return errors.Join(l.r.store.Close(), l.PartitionLog.Close())
}

func (l *replicaLog) Delete() error {
	l.r.stop()
	err := l.r.store.Close()
	return errors.Join(err, os.RemoveAll(l.r.dir), l.PartitionLog.Delete())
}

// stop leaves the group and fails the waiting produces.
func (r *replica) stop() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	ws := r.waiters
	r.waiters = nil
	r.mu.Unlock()
	if r.started {
		r.host.RemoveGroup(r.gid)
	}
	for _, w := range ws {
		w.finish(AppendResult{}, ErrClosed)
	}
}

// replPending is a produce waiting for its entry to be applied.
type replPending struct {
	done  chan struct{}
	res   AppendResult
	err   error
	timer *time.Timer
	once  sync.Once
}

func (w *replPending) Done() <-chan struct{} { return w.done }
func (w *replPending) Wait() error           { <-w.done; return w.err }

// Result is where the batches landed, once Wait returned nil: a
// replicated append learns its offsets only when it is applied.
func (w *replPending) Result() AppendResult { <-w.done; return w.res }

func (w *replPending) finish(res AppendResult, err error) {
	w.once.Do(func() {
		w.res, w.err = res, err
		if w.timer != nil {
			w.timer.Stop()
		}
		close(w.done)
	})
}

// ResultPending is the Pending of a replicated append: its offsets are
// known only once it is applied, and come with it.
type ResultPending interface {
	Pending
	Result() AppendResult
}

// propose checks a produce as AppendTxn does before the log (framing,
// control batches, the transaction check), and proposes it to the
// partition's Raft group. Sequence checks happen when it is applied.
func (r *replica) propose(batches []byte, check TxnCheck) (AppendResult, Pending, error) {
	p := r.p
	if _, err := p.checkProduce(batches, check); err != nil {
		return AppendResult{}, nil, err
	}
	at := int64(-1)
	if p.stored.Load().logAppendTime {
		at = p.now().UnixMilli()
	}
	w := &replPending{done: make(chan struct{})}
	id := r.nextID.Add(1)
	// The timer is set before the waiter is published (under r.mu), so
	// that finish, on another goroutine, reads it safely.
	w.timer = time.AfterFunc(r.timeout, func() { r.answer(id, AppendResult{}, ErrReplicationTimeout) })
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		w.timer.Stop()
		return AppendResult{}, nil, ErrClosed
	}
	r.waiters[id] = w
	r.mu.Unlock()
	data := appendReplEntry(make([]byte, 0, replEntryHeader+len(batches)), uint64(r.self), id, at, batches)
	if err := r.host.Propose(context.Background(), r.gid, data); err != nil {
		if errors.Is(err, multiraft.ErrProposalDropped) {
			err = fmt.Errorf("%w: %w", ErrNotHeld, err)
		} else {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		r.answer(id, AppendResult{}, err)
		return AppendResult{}, nil, err
	}
	return AppendResult{BaseOffset: -1, LogAppendTime: at, LogStart: p.log.StartOffset()}, w, nil
}

// answer answers the waiting produce id, if it still waits.
func (r *replica) answer(id uint64, res AppendResult, err error) {
	r.mu.Lock()
	w := r.waiters[id]
	delete(r.waiters, id)
	r.mu.Unlock()
	if w != nil {
		w.finish(res, err)
	}
}

// Apply appends the committed produces to the segment log, in order,
// waits until they are durable, checkpoints, and answers the produces
// this node proposed. An entry already applied (at or below the
// checkpoint) is skipped: applying is not repeated.
func (r *replica) Apply(ents []*raftpb.Entry) {
	type answer struct {
		id  uint64
		res AppendResult
		ap  Pending
		err error
	}
	var answers []answer
	var pending []Pending
	last, lastTerm := r.applied, uint64(0)
	for _, e := range ents {
		if e.GetIndex() <= r.applied {
			continue
		}
		last, lastTerm = e.GetIndex(), e.GetTerm()
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		origin, id, at, batches, err := decodeReplEntry(e.GetData())
		if err != nil {
			r.log.Warn("replicated partition: skipping an entry that is not a produce", "index", e.GetIndex(), "err", err)
			continue
		}
		epoch := int32(min(e.GetTerm(), math.MaxInt32))
		// appendLocal stamps the batches: they are the Raft log's memory.
		res, ap, err := r.p.appendLocal(bytes.Clone(batches), nil, epoch, at)
		if ap != nil {
			pending = append(pending, ap)
		}
		if origin == uint64(r.self) {
			answers = append(answers, answer{id, res, ap, err})
		}
	}
	var failed error
	for _, ap := range pending {
		if err := ap.Wait(); err != nil && failed == nil {
			failed = err
			r.log.Error("replicated partition: writing committed records failed", "err", err)
		}
	}
	if last > r.applied {
		r.applied = last
		if lastTerm != 0 {
			r.appliedTerm.Store(lastTerm)
		}
		if failed == nil {
			if err := writeAppliedCheckpoint(r.dir, last, r.p.log.HighWatermark()); err != nil {
				r.log.Warn("replicated partition: writing the checkpoint failed", "err", err)
			}
		}
	}
	for _, a := range answers {
		err := a.err
		if err == nil && a.ap != nil {
			err = a.ap.Wait()
		}
		r.answer(a.id, a.res, coreError(err))
	}
}

// ApplySnapshot is never called: the Raft log of a replicated partition
// is not compacted, so a follower is always caught up from the log.
func (r *replica) ApplySnapshot(*raftpb.Snapshot) {
	r.log.Error("replicated partition: a Raft snapshot was received, which partitions do not use")
}

// Snapshot is not used (GroupConfig.SnapshotEvery is 0).
func (r *replica) Snapshot() ([]byte, error) {
	return nil, errors.New("broker: partitions take no Raft snapshots")
}

// state is what this node knows of the group, the ISR computed when it
// leads; sampled at most every 50ms, as it is asked for every produce.
func (r *replica) state() ReplicaState {
	now := time.Now()
	r.isrMu.Lock()
	defer r.isrMu.Unlock()
	if !r.cachedAt.IsZero() && now.Sub(r.cachedAt) < 50*time.Millisecond {
		return r.cache
	}
	st, err := r.host.Status(r.gid)
	if err != nil {
		return ReplicaState{}
	}
	out := ReplicaState{Leader: st.Lead, Term: st.GetTerm()}
	if st.RaftState == raft.StateLeader {
		if st.GetTerm() != r.leaderTerm {
			r.leaderTerm, r.leaderSince = st.GetTerm(), now
			clear(r.caughtUp)
		}
		out.ISR = []int32{}
		for _, v := range groupVoters(st, r.voters) {
			if v != r.self {
				pr, ok := st.Progress[v]
				if ok && pr.RecentActive && pr.Match >= st.GetCommit() && r.alive(v) {
					r.caughtUp[v] = now
				}
				t, seen := r.caughtUp[v]
				if !seen {
					t = r.leaderSince
				}
				if now.Sub(t) > r.lag {
					continue
				}
			}
			out.ISR = append(out.ISR, int32(v))
		}
	}
	r.cache, r.cachedAt = out, now
	return out
}

// alive reports whether node is up, as far as the transport knows.
func (r *replica) alive(node uint64) bool { return r.isAlive == nil || r.isAlive(node) }

// settled reports whether this replica leads and has applied everything
// its group committed up to an entry of its own term: before that, a new
// leader's log may still be short of what the previous leader showed.
func (r *replica) settled() bool {
	st, err := r.host.Status(r.gid)
	return err == nil && st.RaftState == raft.StateLeader && st.Applied >= st.GetCommit() && r.appliedTerm.Load() == st.GetTerm()
}

// CheckInSync refuses an acks=all produce to a replicated partition with
// fewer replicas in sync than the topic's min.insync.replicas
// (ErrNotEnoughReplicas); nil for any other partition.
func (p *Partition) CheckInSync() error {
	if p.repl == nil {
		return nil
	}
	if isr := p.repl.state().ISR; len(isr) < int(p.minInsync.Load()) {
		return fmt.Errorf("%w: %d in sync (%v), min.insync.replicas %d", ErrNotEnoughReplicas, len(isr), isr, p.minInsync.Load())
	}
	return nil
}

// ReplicaState returns what this node knows of partition p of topic's
// Raft group; ok is false unless it is replicated here.
func (b *Broker) ReplicaState(topic string, p int32) (st ReplicaState, ok bool) {
	b.mu.RLock()
	t := b.topics[topic]
	b.mu.RUnlock()
	if t == nil || p < 0 || int(p) >= len(t.Partitions) || t.Partitions[p].repl == nil {
		return ReplicaState{}, false
	}
	return t.Partitions[p].repl.state(), true
}

// stampLeaderEpoch sets the PartitionLeaderEpoch of every batch of
// batches (whole, valid batches). The field is outside the CRC.
func stampLeaderEpoch(batches []byte, epoch int32) {
	for b := batches; len(b) >= batchHeaderBytes; {
		size := 12 + int(binary.BigEndian.Uint32(b[posLength:]))
		if size < batchHeaderBytes || size > len(b) {
			return
		}
		binary.BigEndian.PutUint32(b[12:], uint32(epoch))
		b = b[size:]
	}
}

// A Raft entry of a replicated partition: version (1), the proposing
// node, its request id, the leader's LogAppendTime (-1: none), then the
// batches as the producer sent them.
const (
	replEntryVersion = 1
	replEntryHeader  = 1 + 8 + 8 + 8
)

func appendReplEntry(dst []byte, origin, id uint64, appendTime int64, batches []byte) []byte {
	dst = append(dst, replEntryVersion)
	dst = binary.BigEndian.AppendUint64(dst, origin)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = binary.BigEndian.AppendUint64(dst, uint64(appendTime))
	return append(dst, batches...)
}

// decodeReplEntry decodes a Raft entry of a replicated partition. The
// batches are validated when applied, as any produce's are.
func decodeReplEntry(b []byte) (origin, id uint64, appendTime int64, batches []byte, err error) {
	if len(b) < replEntryHeader || b[0] != replEntryVersion {
		return 0, 0, 0, nil, errors.New("broker: malformed replicated produce")
	}
	return binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:]), int64(binary.BigEndian.Uint64(b[17:])), b[replEntryHeader:], nil
}

// The checkpoint: applied index, segment log end, CRC32C of both.
const checkpointName = "applied"

func writeAppliedCheckpoint(dir string, index uint64, end int64) error {
	b := binary.BigEndian.AppendUint64(nil, index)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, checkpointName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, checkpointName))
}

func readAppliedCheckpoint(dir string) (index uint64, end int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if err != nil {
		return 0, 0, false
	}
	return decodeAppliedCheckpoint(b)
}

func decodeAppliedCheckpoint(b []byte) (index uint64, end int64, ok bool) {
	if len(b) != 20 || crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), true
}

// checkReplicationFactor checks a requested replication factor (0: one)
// against the cluster: more than one needs replication (a cluster) and
// at most as many as registered nodes.
func (b *Broker) checkReplicationFactor(rf int16) error {
	if rf <= 1 {
		return nil
	}
	if b.opts.Replication.Host == nil {
		return ErrInvalidReplicationFactor
	}
	if n := len(b.meta.Nodes()); int(rf) > n {
		return fmt.Errorf("%w: replication factor %d, %d registered nodes", ErrInvalidReplicationFactor, rf, n)
	}
	return nil
}

// placeReplicas is place with rf replicas a partition (<= 1: one): the
// first is where place puts it, the others the next nodes of the same
// rack-alternating order, so that a partition's replicas are on distinct
// nodes (and racks, while there are enough) and leaders spread as the
// first replicas do.
func (b *Broker) placeReplicas(existing [][]int32, first, count int32, rf int) [][]int32 {
	out := b.place(existing, first, count)
	if rf <= 1 || out == nil {
		return out
	}
	order := meta.PlacementOrder(b.meta.Nodes())
	if rf > len(order) {
		return out
	}
	for i, rs := range out {
		k := slices.Index(order, rs[0])
		if k < 0 {
			continue
		}
		for j := 1; j < rf; j++ {
			rs = append(rs, order[(k+j)%len(order)])
		}
		out[i] = rs
	}
	return out
}

// Replicated reports whether the partition is replicated through Raft.
func (p *Partition) Replicated() bool { return p.repl != nil }

// LeaderEpoch is a replicated partition's current leader epoch (its Raft
// term) and whether this node leads it.
func (p *Partition) LeaderEpoch() (epoch int32, leads bool) {
	if p.repl == nil {
		return 0, true
	}
	st := p.repl.state()
	return int32(min(st.Term, math.MaxInt32)), st.Leader == uint64(p.repl.self)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch from the epochs stamped
// in the batches: the largest epoch at most epoch that the log holds, and
// the offset where the next epoch starts (the high watermark if none
// does). With no batch of such an epoch, epoch itself and the log start.
// It scans the batch headers from the start: the question is asked once
// a leader change a consumer, not per fetch.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64, error) {
	start, hw, _ := p.Offsets()
	found, end := int32(-1), int64(-1)
	err := p.log.ScanHeaders(start, func(h storage.BatchHeader) bool {
		if h.BaseOffset >= hw {
			return false
		}
		if h.PartitionLeaderEpoch <= epoch {
			found = max(found, h.PartitionLeaderEpoch)
			return true
		}
		end = h.BaseOffset
		return false
	})
	if err != nil {
		return -1, -1, coreError(err)
	}
	if end < 0 {
		end = hw
	}
	if found < 0 {
		return epoch, start, nil
	}
	return found, end, nil
}
