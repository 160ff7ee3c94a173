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
// Durability and compaction. A committed entry is durable in the Raft
// log of a majority before it is applied, so the segment log of a
// replicated partition is written without an fsync per append (the
// produce is answered once its batches are written here); a background
// syncer fsyncs it every syncEvery, with the replica index
// (replica_index.go), then writes a checkpoint (the last applied Raft
// index and the segment log's end offset then, fsynced) and lets the
// DiskStorage drop the entries it covers. The segment log is then the
// only copy of the data: entries a follower still needs are rebuilt from
// it (partitionStorage), and one that needs what retention deleted gets
// the DiskStorage's snapshot, whose data is the end offset at its index.
//
// Restart. The segment log is cut back to the checkpoint's end offset
// (what was written after it is applied again from the Raft log, which
// still holds every entry after the checkpoint). A segment log shorter
// than the checkpoint says (a disk that lost fsynced data), or an index
// that does not reach it, is reset to start empty at the snapshot's end
// offset and rebuilt from the Raft log after the snapshot; that loses
// this replica's older records, which the other replicas keep.

import (
	"bytes"
	"cmp"
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

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/fsutil"
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
// on this node: in a cluster, held here and placed on more than one node,
// or a quorum queue's log whatever its members, or a partition that a
// move made a group (Grouped). A Kafka partition of one replica stays a
// plain log until it is moved: Raft over one voter would add a second
// write and nothing else, since its data lives on one node whatever the
// protocol. A quorum queue's log is a Raft group even with one member, as
// in RabbitMQ, so that members can be added to it (and the last but one
// removed) through the group's configuration.
func (b *Broker) replicated(tp *Topic, i int32) bool {
	return b.opts.Replication.Host != nil && b.opts.NodeID != 0 && tp.Replicas != nil &&
		int(i) < len(tp.Replicas) && (len(tp.Replicas[i]) > 1 || isQuorumTopic(tp.Name) || tp.IsGrouped(i)) && b.holds(tp, i)
}

// partitionGroup is the Raft group id of partition i of a topic: a hash
// of the topic's permanent id and the partition, never 0 (no group),
// cluster.MetaGroup nor cluster.RPCGroup. Two partitions whose ids collide (a chance of about
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
	if g == uint64(cluster.RPCGroup) { // from a hash of 0 or 2: about 2⁻⁶³
		g = uint64(cluster.RPCGroup) + 1
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
	store   *partitionStorage
	voters  []cluster.NodeID
	lag     time.Duration
	isAlive func(node uint64) bool // nil: every node counts as alive
	timeout time.Duration
	log     *slog.Logger
	p       *Partition
	started bool
	// converted: the group was made from a plain log as it opened
	// (replica_convert.go): it stands for leader at once.
	converted bool

	nextID  atomic.Uint64
	mu      sync.Mutex // guards waiters and closed
	waiters map[uint64]*replPending
	closed  bool

	// Apply's own, one goroutine at a time.
	applied uint64
	end     int64 // the segment log's end offset after applied
	idx     *replicaIndex
	// broken stops applying: the segment log cannot take the entries
	// (a snapshot it cannot follow online, a failed write). Apply's own.
	broken error

	fsys  storage.FS
	ldir  string     // the segment log's directory
	synMu sync.Mutex // guards the fields below, shared by Apply and the syncer
	syn   syncState
	kick  chan struct{}
	quit  chan struct{} // closed by stop: the syncer stops waiting
	done  chan struct{} // closed when the syncer has stopped
	// appliedTerm is the term of the last entry applied, read by settled.
	appliedTerm atomic.Uint64
	// qacks is the ack record of the quorum queue whose log this
	// partition is (quorum.go); nil for a Kafka topic's partition.
	qacks *queue.AckRecord
	// qpub gathers the quorum queue's publishes into entries.
	qpub quorumBatcher

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

// openReplicaLog opens the segment log of a replicated partition, its
// Raft log and its index, deciding where applying resumes (see the file
// comment).
func (b *Broker) openReplicaLog(tp *Topic, i int32) (PartitionLog, error) {
	ro := b.opts.Replication
	dir := b.partitionDir(tp.Name, i)
	rdir := dir + ".raft"
	fsys := b.opts.Storage.FS
	if fsys == nil {
		fsys = storage.OSFS()
	}
	log := b.log.With("topic", tp.Name, "partition", i)
	opts := b.logOptions(tp.cfg)
	converted := false
	if b.convertsPlainLog(tp, i, rdir) {
		n, end, err := convertPlainLog(dir, rdir, opts, cluster.NodeID(b.opts.NodeID))
		if err != nil {
			return nil, fmt.Errorf("turning the plain log into a Raft group: %w", err)
		}
		converted = true
		log.Info("partition of one replica moved: its plain log is now a Raft group of this node", "entries", n, "log_end", end)
	}
	store, err := multiraft.OpenDiskStorage(rdir)
	if err != nil {
		return nil, err
	}
	snap, err := store.Snapshot()
	if err != nil {
		store.Close()
		return nil, err
	}
	snapIndex, snapTerm := snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	snapEnd := decodeReplSnapshot(snap.GetData())
	applied, end := snapIndex, snapEnd
	if ck, ckEnd, ok := readAppliedCheckpoint(rdir); ok && ck >= snapIndex {
		applied, end = ck, ckEnd
	}
	// The Raft log is the durable copy until the syncer's checkpoint.
	opts.Sync = storage.SyncNever
	l, idx, err := openReplicaData(fsys, dir, rdir, opts, applied, end, snapIndex, snapTerm)
	if err != nil {
		log.Error("replicated partition: its segment log or index does not reach its checkpoint; starting it empty at its snapshot, to be rebuilt from the Raft log",
			"checkpoint", applied, "checkpoint_end", end, "snapshot", snapIndex, "snapshot_end", snapEnd, "err", err)
		applied, end = snapIndex, snapEnd
		if err := storage.ResetOffline(fsys, dir, snapEnd); err != nil {
			store.Close()
			return nil, err
		}
		if err := os.Remove(filepath.Join(rdir, replIndexName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			store.Close()
			return nil, err
		}
		if l, idx, err = openReplicaData(fsys, dir, rdir, opts, applied, end, snapIndex, snapTerm); err != nil {
			store.Close()
			return nil, err
		}
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
		voters: voters, lag: ro.LagTime, timeout: ro.ProposeTimeout, isAlive: ro.Alive,
		log:     log,
		waiters: make(map[uint64]*replPending), applied: applied, end: end, idx: idx, converted: converted,
		caughtUp: make(map[cluster.NodeID]time.Time),
		fsys:     fsys, ldir: dir,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	r.syn = syncState{applied: applied, end: end, synced: applied}
	r.store = &partitionStorage{DiskStorage: store, r: r}
	if isQuorumTopic(tp.Name) || isDelayedTopic(tp.Name) {
		// Its acks are applied again from the checkpoint on, as its
		// messages are: applying a settle twice changes nothing.
		if r.qacks, err = queue.OpenAckRecord(rdir); err != nil {
			l.Close()
			idx.close()
			store.Close()
			return nil, err
		}
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
	dl, ok := l.(diskLog)
	if !ok {
		l.Close()
		idx.close()
		store.Close()
		return nil, errors.New("broker: a replicated partition needs a disk log")
	}
	return &replicaLog{diskLog: dl, r: r}, nil
}

// openReplicaData cuts the segment log back to end, opens it and the
// index, and checks that both reach applied.
func openReplicaData(fsys storage.FS, dir, rdir string, opts storage.Options, applied uint64, end int64, snapIndex, snapTerm uint64) (PartitionLog, *replicaIndex, error) {
	if err := storage.TruncateAfter(fsys, dir, end); err != nil {
		return nil, nil, err
	}
	l, err := openDiskLog(dir, opts)
	if err != nil {
		return nil, nil, err
	}
	if hw := l.HighWatermark(); hw != end {
		l.Close()
		return nil, nil, fmt.Errorf("segment log ends at %d, its checkpoint at %d", hw, end)
	}
	idx, err := openReplicaIndex(rdir, snapIndex+1, snapTerm, applied)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return l, idx, nil
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
	// Read before the group and the syncer run: MemoryStorage's
	// InitialState takes no lock.
	hs, _, _ := r.store.InitialState()
	fresh := hs.GetTerm() == 0
	err := r.host.AddGroup(multiraft.GroupConfig{
		ID: r.gid, Storage: r.store, StateMachine: r, Voters: r.voters, Applied: r.applied,
		// Apply skips what it has applied already (a restart may hand
		// it entries again): see ApplyBeforeSave.
		ApplyBeforeSave: true,
	})
	if err != nil {
		return fmt.Errorf("raft group of %s-%d: %w", p.Topic, p.Index, err)
	}
	r.started = true
	go r.syncer()
	if fresh && len(r.voters) > 0 && r.voters[0] == r.self || r.converted {
		go r.campaignFirst()
	}
	return nil
}

// AwaitLeaders waits, until deadline at most, for every partition of
// topic that this node replicates to know its Raft leader, so that a
// client that asks for metadata after CreateTopics or CreatePartitions
// finds leaders, as it does from Kafka, whose controller names them at
// creation (franz-go, for one, asks again only after 5 s). With the
// first replica standing at once (campaignFirst) this takes a few Raft
// round trips. Partitions replicated elsewhere are described from their
// assignment, whose first replica is the one standing.
func (b *Broker) AwaitLeaders(topic string, deadline time.Time) {
	for {
		b.mu.RLock()
		t := b.topics[topic]
		b.mu.RUnlock()
		if t == nil {
			return
		}
		all := true
		for _, p := range t.Partitions {
			if r := p.repl; r != nil && r.host.Leader(r.gid) == 0 {
				all = false
				break
			}
		}
		if all || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// campaignFirst makes the first replica of a new partition stand for
// leader at once, as Kafka's controller names it leader at creation:
// otherwise the group has no leader until an election timeout (one to two
// seconds) passes on some replica, and clients that asked for metadata
// meanwhile wait for their next refresh. The other replicas may not have
// joined the group yet (they apply the topic's creation on their own
// clocks), so it stands again a few times while no leader is known; the
// election timeout remains the fallback, and Raft's pre-vote keeps an
// extra campaign harmless.
func (r *replica) campaignFirst() {
	for _, wait := range []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		select {
		case <-r.quit:
			return
		case <-time.After(wait):
		}
		if r.host.Leader(r.gid) != 0 {
			return
		}
		if err := r.host.Campaign(r.gid); err != nil {
			return
		}
	}
}

// replicaLog is a replicated partition's segment log; closing it takes the
// partition out of its Raft group first.
type replicaLog struct {
	// diskLog, not the PartitionLog interface: the partition finds the
	// segment log's other abilities on it (zero-copy reads, the
	// transaction index's sidecars, the cleaner's segment rewrites).
	diskLog
	r *replica
}

// Close leaves the group, makes what was applied durable with a last
// checkpoint (so that a restart applies nothing again), and closes the
// logs.
func (l *replicaLog) Close() error {
	l.r.stop()
	l.r.syncOnce()
	return errors.Join(l.r.store.Close(), l.r.idx.close(), l.r.closeQueueAcks(), l.diskLog.Close())
}

func (l *replicaLog) Delete() error {
	l.r.stop()
	err := errors.Join(l.r.store.Close(), l.r.idx.close(), l.r.closeQueueAcks())
	return errors.Join(err, os.RemoveAll(l.r.dir), l.diskLog.Delete())
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
		close(r.quit)
		close(r.kick)
		<-r.done
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
	id, w, err := r.wait()
	if err != nil {
		return AppendResult{}, nil, err
	}
	return r.proposeEntry(id, w, appendReplEntry(make([]byte, 0, replEntryHeader+len(batches)), uint64(r.self), id, at, batches), at)
}

// wait registers the waiter of a new proposal: answered when its entry
// is applied here, or ErrReplicationTimeout after the propose timeout.
func (r *replica) wait() (uint64, *replPending, error) {
	w := &replPending{done: make(chan struct{})}
	id := r.nextID.Add(1)
	// The timer is set before the waiter is published (under r.mu), so
	// that finish, on another goroutine, reads it safely.
	w.timer = time.AfterFunc(r.timeout, func() { r.answer(id, AppendResult{}, ErrReplicationTimeout) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		w.timer.Stop()
		return 0, nil, ErrClosed
	}
	r.waiters[id] = w
	return id, w, nil
}

// proposeMarker proposes a transaction marker (a control batch), which
// every replica writes when it is applied, as WriteMarker does on a
// single node.
func (r *replica) proposeMarker(batch []byte) (Pending, error) {
	id, w, err := r.wait()
	if err != nil {
		return nil, err
	}
	data := appendReplEntry(make([]byte, 0, replEntryHeader+len(batch)), uint64(r.self), id, -1, batch)
	data[0] = replMarkerVersion
	if _, _, err := r.proposeEntry(id, w, data, -1); err != nil {
		return nil, err
	}
	return w, nil
}

// proposeEntry proposes data, the entry of the waiting produce id.
func (r *replica) proposeEntry(id uint64, w *replPending, data []byte, at int64) (AppendResult, Pending, error) {
	p := r.p
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
// records them in the replica index, and answers the produces this node
// proposed once their batches are written (the Raft log of a majority
// holds them durably; the syncer makes the segment log durable later).
// An entry already applied (at or below the checkpoint) is skipped:
// applying is not repeated.
func (r *replica) Apply(ents []*raftpb.Entry) {
	if r.broken != nil {
		return
	}
	type answer struct {
		id  uint64
		res AppendResult
		ap  Pending
		err error
	}
	var (
		answers []answer
		pending []Pending
		recs    []indexRecord
		confs   []*raftpb.Entry
	)
	last, lastTerm := r.applied, uint64(0)
	for _, e := range ents {
		if e.GetIndex() <= r.applied {
			continue
		}
		if e.GetIndex() != last+1 {
			r.fail(fmt.Errorf("entry %d applied after %d", e.GetIndex(), last))
			return
		}
		last, lastTerm = e.GetIndex(), e.GetTerm()
		rec := indexRecord{term: e.GetTerm(), first: r.end, next: r.end}
		switch {
		case e.GetType() != raftpb.EntryNormal:
			rec.kind = kindConf
			confs = append(confs, e)
		case len(e.GetData()) > 0 && e.GetData()[0] == replQueueAcksVersion:
			// Kept whole in the side file too: a follower sent this
			// entry rebuilt must settle what the original settled.
			rec.kind = kindConf
			confs = append(confs, e)
			r.applyQueueAcks(e)
		case len(e.GetData()) > 0 && e.GetData()[0] == replDeleteVersion:
			// Kept whole in the side file, as a configuration change
			// is: rebuilt, it must delete the same records.
			rec.kind = kindConf
			confs = append(confs, e)
			start, err, origin, id := r.applyDelete(e, pending)
			if err == nil && r.qacks != nil {
				r.qacks.TrimBelow(start) // a quorum queue's settles below its log start
			}
			if origin == uint64(r.self) {
				answers = append(answers, answer{id, AppendResult{BaseOffset: -1, LogStart: start}, nil, err})
			}
		case len(e.GetData()) > 0:
			if v := e.GetData()[0]; v == replKeptVersion || v == replKeptMarkerVersion {
				rec.kind = kindKept
			}
			res, ap, err, origin, id := r.applyEntry(e)
			if err == nil && !res.Duplicate && res.BaseOffset >= 0 {
				if res.BaseOffset != r.end {
					r.fail(fmt.Errorf("entry %d appended at offset %d, the log ended at %d", e.GetIndex(), res.BaseOffset, r.end))
					return
				}
				rec.next = res.BaseOffset + res.count
				r.end = rec.next
			}
			if ap != nil {
				pending = append(pending, ap)
			}
			if origin == uint64(r.self) {
				answers = append(answers, answer{id, res.AppendResult, ap, err})
			}
		}
		recs = append(recs, rec)
	}
	if err := r.idx.add(recs, confs); err != nil {
		// The index cannot be trusted to match the Raft log: stop
		// applying; a restart cuts the log back to the last checkpoint.
		r.fail(fmt.Errorf("writing the replica index: %w", err))
	} else if last > r.applied {
		r.applied = last
		r.appliedTerm.Store(lastTerm)
		r.synMu.Lock()
		r.syn.applied, r.syn.end = last, r.end
		r.synMu.Unlock()
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	failed := r.broken
	if len(pending) == 0 {
		for _, a := range answers {
			r.answer(a.id, a.res, coreError(cmp.Or(a.err, failed)))
		}
		return
	}
	// The produces are answered once their batches are written, without
	// holding up the group's next round (the syncer's fsync of the
	// segment log may keep the writer busy a while). A write that fails
	// fails the log: the appends after it fail too, and applying stops
	// at the first of them (the offsets no longer follow).
	go func() {
		var werr error
		for _, ap := range pending {
			if err := ap.Wait(); err != nil && werr == nil {
				werr = err
				r.log.Error("replicated partition: writing committed records failed", "err", err)
			}
		}
		for _, a := range answers {
			err := a.err
			if err == nil && a.ap != nil {
				err = a.ap.Wait()
			}
			r.answer(a.id, a.res, coreError(cmp.Or(err, failed)))
		}
	}()
}

// appliedProduce is an applied entry's outcome: count is the number of
// offsets its batches took.
type appliedProduce struct {
	AppendResult
	count int64
}

// applyEntry applies one produce or marker entry.
func (r *replica) applyEntry(e *raftpb.Entry) (res appliedProduce, ap Pending, err error, origin, id uint64) {
	data := e.GetData()
	epoch := int32(min(e.GetTerm(), math.MaxInt32))
	var v byte
	if len(data) > 0 {
		v = data[0]
	}
	if v == replKeptVersion || v == replKeptMarkerVersion {
		epoch = -1 // as the batches hold it
	}
	marker := v == replMarkerVersion || v == replKeptMarkerVersion
	if v != replEntryVersion {
		data = append([]byte{replEntryVersion}, data[1:]...)
	}
	origin, id, at, batches, err := decodeReplEntry(data)
	if err != nil {
		r.log.Warn("replicated partition: skipping an entry that is not a produce", "index", e.GetIndex(), "err", err)
		return appliedProduce{AppendResult: AppendResult{BaseOffset: -1}}, nil, err, 0, 0
	}
	count := countOffsets(batches)
	if marker {
		base, ap, err := r.p.writeMarkerLocal(bytes.Clone(batches), epoch)
		return appliedProduce{AppendResult: AppendResult{BaseOffset: base}, count: count}, ap, err, origin, id
	}
	// appendLocal stamps the batches: they are the Raft log's memory.
	out, ap, err := r.p.appendLocal(bytes.Clone(batches), nil, epoch, at)
	if err != nil {
		out.BaseOffset = -1
	}
	return appliedProduce{AppendResult: out, count: count}, ap, err, origin, id
}

// applyDelete applies a DeleteRecords entry once the writes before it
// are done: the log start moves to the offset asked (at most the applied
// end) on every replica alike.
func (r *replica) applyDelete(e *raftpb.Entry, pending []Pending) (start int64, err error, origin, id uint64) {
	data := append([]byte{replEntryVersion}, e.GetData()[1:]...)
	origin, id, _, payload, err := decodeReplEntry(data)
	if err != nil || len(payload) != 8 {
		r.log.Warn("replicated partition: skipping a malformed DeleteRecords entry", "index", e.GetIndex())
		return -1, ErrCorruptMessage, origin, id
	}
	for _, ap := range pending {
		if err := ap.Wait(); err != nil {
			return -1, err, origin, id
		}
	}
	offset := min(int64(binary.BigEndian.Uint64(payload)), r.end)
	if offset > r.p.log.StartOffset() {
		if err := r.p.log.DeleteRecordsBefore(offset); err != nil {
			return -1, err, origin, id
		}
	}
	return r.p.log.StartOffset(), nil, origin, id
}

// proposeDelete proposes DeleteRecords before offset and returns the log
// start once the entry is applied here.
func (r *replica) proposeDelete(offset int64) (int64, error) {
	id, w, err := r.wait()
	if err != nil {
		return -1, err
	}
	data := appendReplEntry(nil, uint64(r.self), id, -1, binary.BigEndian.AppendUint64(nil, uint64(offset)))
	data[0] = replDeleteVersion
	if _, _, err := r.proposeEntry(id, w, data, -1); err != nil {
		return -1, err
	}
	if err := w.Wait(); err != nil {
		return -1, err
	}
	return w.Result().LogStart, nil
}

// countOffsets is the number of offsets whole, valid batches take.
func countOffsets(batches []byte) int64 {
	var n int64
	for b := batches; len(b) >= batchHeaderBytes; {
		size := 12 + int(binary.BigEndian.Uint32(b[posLength:]))
		if size < batchHeaderBytes || size > len(b) {
			break
		}
		n += int64(binary.BigEndian.Uint32(b[posLastOffsetDelta:])) + 1
		b = b[size:]
	}
	return n
}

// fail stops applying (Apply's goroutine).
func (r *replica) fail(err error) {
	r.broken = err
	r.log.Error("replicated partition: applying stopped; restart the node to rebuild this replica from its checkpoint", "err", err)
	r.synMu.Lock()
	r.syn.stopped = true
	r.synMu.Unlock()
}

// ApplySnapshot follows a snapshot from the leader, which this replica
// gets when it needs entries the leader's segment log no longer holds
// (retention, DeleteRecords or the cleaner removed them, or this replica
// is new to a partition whose log no longer starts at 0): its log must
// continue at the snapshot's end offset. A log that ends there already
// just goes on; any other is emptied in place to start there
// (storage.Log.ResetTo: its older records are gone from the leader too).
// If that fails this replica applies nothing more, says so, and its next
// start resets the log (the checkpoint points at the snapshot).
func (r *replica) ApplySnapshot(snap *raftpb.Snapshot) {
	md := snap.GetMetadata()
	end, acks := decodeReplSnapshotAcks(snap.GetData())
	if r.broken == nil && r.end != end {
		r.log.Warn("replicated partition: the leader no longer holds what this replica lacks; starting its log afresh where the leader's snapshot ends",
			"log_end", r.end, "snapshot_end", end, "snapshot_index", md.GetIndex())
		if err := r.resetLog(end); err != nil {
			r.fail(fmt.Errorf("a Raft snapshot at index %d needs the log to continue at offset %d; resetting it failed: %w", md.GetIndex(), end, err))
		}
	}
	if r.broken != nil {
		if err := writeAppliedCheckpoint(r.dir, md.GetIndex(), end); err != nil {
			r.log.Error("replicated partition: writing the checkpoint failed", "err", err)
		}
		return
	}
	if err := r.idx.reset(md.GetIndex()+1, md.GetTerm()); err != nil {
		r.fail(err)
		return
	}
	if r.qacks != nil && len(acks) > 0 {
		// The leader's settles as it sent the snapshot: those of the
		// entries after it too, which applying again changes nothing.
		if err := r.qacks.Apply(acks); err != nil {
			r.fail(fmt.Errorf("a Raft snapshot at index %d: its ack record: %w", md.GetIndex(), err))
			return
		}
		r.qacks.TrimBelow(r.p.log.StartOffset())
	}
	r.applied = md.GetIndex()
	r.appliedTerm.Store(md.GetTerm())
	r.synMu.Lock()
	r.syn.applied, r.syn.end = r.applied, r.end
	r.synMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// resetLog empties the segment log to continue at end, and forgets the
// producer and transaction state of the records it dropped.
func (r *replica) resetLog(end int64) error {
	l, ok := r.p.log.(*replicaLog)
	if !ok {
		return errors.New("broker: not a replicated partition's log")
	}
	if err := l.diskLog.Log.ResetTo(end); err != nil {
		return err
	}
	r.end = end
	return r.p.rebuildProducers()
}

// Snapshot is not used: the syncer compacts through Host.Compact.
func (r *replica) Snapshot() ([]byte, error) {
	return nil, errors.New("broker: partitions take no Raft snapshots on a schedule")
}

// syncState is what the syncer makes durable: Apply's progress, and how
// far it has got.
type syncState struct {
	applied uint64
	end     int64
	synced  uint64 // the index of the last checkpoint written
	stopped bool   // applying stopped: no more checkpoints
	// compactedAt is when the Raft log was last compacted, up to
	// compacted.
	compactedAt time.Time
	compacted   uint64
}

// syncEvery is how often the syncer of a busy partition fsyncs its
// segment log and checkpoints (three or four fsyncs), and compactEvery
// how often it then lets the Raft log drop what the checkpoint covers
// (a rewrite of the Raft log's tail and two or three more). The Raft log
// holds what is not compacted yet: that is the memory and the replay a
// restart costs, against fsyncs that slow every write on the disk (an
// fsync of the segment log holds up its writer, and with it the
// partition's readers).
const (
	syncEvery    = 250 * time.Millisecond
	compactEvery = 2 * time.Second
)

// syncer makes what Apply wrote durable, every syncEvery while there is
// something new, then lets the Raft log drop it.
func (r *replica) syncer() {
	defer close(r.done)
	var later <-chan time.Time // a compaction put off
	for {
		select {
		case _, ok := <-r.kick:
			if !ok {
				return
			}
		case <-later:
		}
		later = nil
		if r.syncOnce() {
			later = time.After(compactEvery)
		}
		t := time.NewTimer(syncEvery)
		select {
		case <-t.C:
		case <-r.quit:
		}
		t.Stop()
	}
}

// syncOnce fsyncs the segment log and the index, checkpoints, and
// compacts the Raft log up to the checkpoint if it was not for
// compactEvery; it reports whether a compaction is put off.
func (r *replica) syncOnce() (later bool) {
	r.synMu.Lock()
	st := r.syn
	r.synMu.Unlock()
	if st.stopped {
		return false
	}
	if st.applied > st.synced {
		if err := r.syncLog(); err != nil {
			r.log.Warn("replicated partition: fsync of the segment log failed; the Raft log keeps the entries", "err", err)
			return false
		}
		if err := r.idx.sync(); err != nil {
			r.log.Warn("replicated partition: fsync of the replica index failed", "err", err)
			return false
		}
		if r.qacks != nil {
			if err := r.qacks.Sync(); err != nil {
				r.log.Warn("quorum queue: fsync of the ack record failed; the Raft log keeps the entries", "err", err)
				return false
			}
		}
		r.synMu.Lock()
		stopped := r.syn.stopped
		r.synMu.Unlock()
		if stopped {
			return false
		}
		if err := writeAppliedCheckpoint(r.dir, st.applied, st.end); err != nil {
			r.log.Warn("replicated partition: writing the checkpoint failed", "err", err)
			return false
		}
		st.synced = st.applied
		// The index records of batches retention (or DeleteRecords)
		// removed are of no more use: drop them now and then, up to
		// the checkpoint, so that the index does not grow for ever.
		if _, err := r.idx.trim(min(r.idx.firstHeld(r.p.log.StartOffset()), st.synced+1)); err != nil {
			r.log.Warn("replicated partition: trimming the replica index failed", "err", err)
		}
	}
	r.synMu.Lock()
	r.syn.synced = st.synced
	due := st.synced > st.compacted && time.Since(r.syn.compactedAt) >= compactEvery
	if due {
		r.syn.compactedAt, r.syn.compacted = time.Now(), st.synced
	}
	r.synMu.Unlock()
	if !due {
		return st.synced > st.compacted
	}
	if _, err := r.host.Compact(r.gid, st.synced, encodeReplSnapshot(st.end)); err != nil && !errors.Is(err, multiraft.ErrUnknownGroup) && !errors.Is(err, multiraft.ErrClosed) {
		r.log.Warn("replicated partition: compacting the Raft log failed", "err", err)
	}
	return false
}

// syncLog fsyncs the segment log.
func (r *replica) syncLog() error {
	if l, ok := r.p.log.(*replicaLog); ok {
		return l.diskLog.Log.SyncBehind()
	}
	return errors.New("broker: the segment log cannot be synced")
}

// A partition's Raft snapshot records the segment log's end offset at its
// index: version (1), the offset. One sent to a follower
// (partitionStorage.Snapshot) is version 2: the offset, then a quorum
// queue's ack record as ack-record entries (none for a Kafka partition).
func encodeReplSnapshot(end int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{1}, uint64(end))
}

func encodeReplSnapshotAcks(end int64, acks []byte) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{2}, uint64(end)), acks...)
}

func decodeReplSnapshot(b []byte) int64 {
	end, _ := decodeReplSnapshotAcks(b)
	return end
}

// decodeReplSnapshotAcks returns a snapshot's end offset and ack-record
// entries (nil in version 1). Anything else decodes as an empty
// snapshot's 0.
func decodeReplSnapshotAcks(b []byte) (end int64, acks []byte) {
	switch {
	case len(b) == 9 && b[0] == 1:
		return int64(binary.BigEndian.Uint64(b[1:])), nil
	case len(b) >= 9 && b[0] == 2:
		return int64(binary.BigEndian.Uint64(b[1:])), b[9:]
	}
	return 0, nil
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
	// replMarkerVersion marks an entry whose batch is a transaction
	// marker (a control batch) the coordinator wrote, not a produce.
	replMarkerVersion = 2
	// replDeleteVersion marks a DeleteRecords entry: its payload is the
	// offset to delete before (8 bytes).
	replDeleteVersion = 3
	// replQueueAcksVersion marks a quorum queue's ack-record entries
	// (settled ranges, delivered marks: queue.AckRecord), its payload.
	replQueueAcksVersion = 4
	// replKeptVersion and replKeptMarkerVersion are replEntryVersion
	// and replMarkerVersion for batches applied with the leader epoch
	// they hold, not the entry's term: a plain log's batches, rebuilt
	// from a group made of it (replica_convert.go), so that every
	// replica's copy is the holder's, byte for byte.
	replKeptVersion       = 5
	replKeptMarkerVersion = 6
	replEntryHeader       = 1 + 8 + 8 + 8
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

// writeAppliedCheckpoint replaces the checkpoint durably (temporary
// file, fsync, rename, fsync of the directory): the Raft log drops the
// entries it covers right after.
func writeAppliedCheckpoint(dir string, index uint64, end int64) error {
	b := binary.BigEndian.AppendUint64(nil, index)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return fsutil.WriteFileAtomic(dir, checkpointName, b)
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
