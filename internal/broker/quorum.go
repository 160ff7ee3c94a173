package broker

// The replicated log under a quorum queue (docs/clustering.md, "Quorum
// queues"). A quorum queue declared on a cluster is a one-partition topic
// of its own, named from the queue's id (quorumTopic), placed on the
// queue's members and replicated by the partition's Raft group like any
// replicated partition (replica.go): a publish is a produce of one record
// (the message in its stored form), committed when a majority of the
// members has it in an fsynced Raft log, and appended by every member to
// its copy of the log. The queue's delivery state is replicated beside
// it: the settled ranges and delivered marks that a classic queue writes
// to its ack record are Raft entries of the same group
// (replQueueAcksVersion), which every member applies to its own ack
// record (queue.AckRecord, in the partition's Raft directory). The member
// that leads the group runs the queue (queue.Queue in tail mode over the
// log, router_quorum.go); the others only apply.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/storage"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// quorumTopicPrefix begins the name of every quorum queue's topic. Kafka
// clients see such topics as internal: they may read them, not produce
// to, delete or reconfigure them.
const quorumTopicPrefix = "__sluice_quorum_"

// quorumTopic names the topic of the quorum queue whose id is id.
func quorumTopic(id string) string { return quorumTopicPrefix + id }

// isQuorumTopic reports whether name is a quorum queue's topic.
func isQuorumTopic(name string) bool { return strings.HasPrefix(name, quorumTopicPrefix) }

// streamTopicPrefix begins the name of the topic of a stream queue
// declared on a cluster outside the Kafka vhost (router_quorum.go): a
// replicated one-partition topic, internal as a quorum queue's is.
const streamTopicPrefix = "__sluice_stream_"

// isStreamQueueTopic reports whether name is such a stream queue's topic.
func isStreamQueueTopic(name string) bool { return strings.HasPrefix(name, streamTopicPrefix) }

// applyQueueAcks applies a quorum queue's ack-record entries. A malformed
// entry (it came from another node) is skipped whole and logged.
func (r *replica) applyQueueAcks(e *raftpb.Entry) {
	data := append([]byte{replEntryVersion}, e.GetData()[1:]...)
	_, _, _, payload, err := decodeReplEntry(data)
	if err == nil && r.qacks != nil {
		err = r.qacks.Apply(payload)
	}
	if err != nil {
		r.log.Warn("quorum queue: skipping an ack entry", "index", e.GetIndex(), "err", err)
	}
}

// proposeQueueAcks proposes ack-record entries. It does not wait for them
// to commit: a settle lost with a leader means a redelivery.
func (r *replica) proposeQueueAcks(entries []byte) error {
	data := appendReplEntry(make([]byte, 0, replEntryHeader+len(entries)), uint64(r.self), 0, -1, entries)
	data[0] = replQueueAcksVersion
	return r.host.Propose(context.Background(), r.gid, data)
}

// failWaiting answers every produce waiting here with err: the leader
// they were proposed to is gone, and they may or may not commit (a
// message refused so is sent again by its publisher: at least once).
func (r *replica) failWaiting(err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	ws := r.waiters
	r.waiters = make(map[uint64]*replPending)
	r.mu.Unlock()
	for _, w := range ws {
		w.finish(AppendResult{}, err)
	}
}

func (r *replica) closeQueueAcks() error {
	if r.qacks == nil {
		return nil
	}
	return r.qacks.Close()
}

// quorumLog is this node's member of a quorum queue's replicated log.
type quorumLog struct {
	p *Partition
	r *replica
}

// quorumLog returns this node's member of topic's log; false when this
// node holds no replicated copy of it (not a member, or not open yet).
func (b *Broker) quorumLog(topic string) (quorumLog, bool) {
	tp, ok := b.Topic(topic)
	if !ok || len(tp.Partitions) != 1 {
		return quorumLog{}, false
	}
	p := tp.Partitions[0]
	if p.repl == nil || p.repl.qacks == nil {
		return quorumLog{}, false
	}
	return quorumLog{p: p, r: p.repl}, true
}

// members returns the nodes placed to hold topic's log.
func (b *Broker) quorumMembers(topic string) []uint64 {
	tp, ok := b.Topic(topic)
	if !ok || len(tp.Replicas) == 0 {
		return nil
	}
	out := make([]uint64, 0, len(tp.Replicas[0]))
	for _, id := range tp.Replicas[0] {
		out = append(out, uint64(id))
	}
	return out
}

// leads reports whether this member leads the group and has applied
// everything committed before its term: the queue can run here.
func (l quorumLog) leads() bool { return l.r.settled() }

// leaderTerm is the term this member leads the group in; 0 if it does
// not lead.
func (l quorumLog) leaderTerm() uint64 {
	st, err := l.r.host.Status(l.r.gid)
	if err != nil || st.RaftState != raft.StateLeader {
		return 0
	}
	return st.GetTerm()
}

// leader is the group's leader as this member knows it; 0 for none.
func (l quorumLog) leader() uint64 { return l.r.state().Leader }

// segmentLog is the log the members append to.
func (l quorumLog) segmentLog() (*storage.Log, error) {
	rl, ok := l.p.log.(*replicaLog)
	if !ok {
		return nil, errors.New("broker: a quorum queue's log is not a replicated log")
	}
	return rl.diskLog.Log, nil
}

// recordAcks is a tail's Record (queue.Tail, queue.DelayedTail): it
// proposes the ack-record entries without waiting for them to commit; one
// not proposed (the leader changed) is logged, its messages delivered or
// released again by the next leader.
func (l quorumLog) recordAcks(lg *slog.Logger) func(entries []byte) {
	return func(entries []byte) {
		if err := l.r.proposeQueueAcks(entries); err != nil {
			lg.Debug("an ack entry was not proposed (the leader changed); its messages may be delivered again", "err", err)
		}
	}
}

// acks is the ack record as applied here.
func (l quorumLog) acks() *queue.AckRecord { return l.r.qacks }

// publish proposes one record batch (a message); the Pending is done
// once it is committed and applied here. Any member may propose: Raft
// forwards a follower's proposal to the leader. The messages published
// while the member's last proposal is handed to Raft go together in its
// next entry (quorumBatcher): one entry, index record and answer for
// many messages, in the order they came.
func (l quorumLog) publish(batch []byte) Pending {
	return l.r.qpub.add(l.p, batch)
}

// quorumBatcher gathers a member's publishes into Raft entries.
type quorumBatcher struct {
	mu      sync.Mutex
	queued  []quorumPub
	running bool
}

type quorumPub struct {
	batch []byte
	w     *quorumPubPending
}

// quorumPubPending is one message's Pending.
type quorumPubPending struct {
	done chan struct{}
	err  error
}

func (w *quorumPubPending) Done() <-chan struct{} { return w.done }
func (w *quorumPubPending) Wait() error           { <-w.done; return w.err }

// quorumEntryBytes bounds the messages gathered into one entry (one
// message always goes, whatever its size).
const quorumEntryBytes = 1 << 20

func (q *quorumBatcher) add(p *Partition, batch []byte) Pending {
	w := &quorumPubPending{done: make(chan struct{})}
	q.mu.Lock()
	q.queued = append(q.queued, quorumPub{batch: batch, w: w})
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go q.run(p)
	}
	return w
}

// run proposes what is queued, an entry at a time, until nothing is.
func (q *quorumBatcher) run(p *Partition) {
	for {
		q.mu.Lock()
		if len(q.queued) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(q.queued) && (n == 0 || size+len(q.queued[n].batch) <= quorumEntryBytes) {
			size += len(q.queued[n].batch)
			n++
		}
		take := slices.Clone(q.queued[:n])
		q.queued = slices.Delete(q.queued, 0, n)
		q.mu.Unlock()
		all := make([]byte, 0, size)
		for _, m := range take {
			all = append(all, m.batch...)
		}
		_, pending, err := p.Append(all)
		if err != nil {
			if KindOf(err) == KindUnavailable {
				err = fmt.Errorf("%w: %w", queue.ErrRejected, err)
			}
			for _, m := range take {
				m.w.err = err
				close(m.w.done)
			}
			continue
		}
		go func() {
			err := pending.Wait()
			for _, m := range take {
				m.w.err = err
				close(m.w.done)
			}
		}()
	}
}

// deleteBefore moves the log start of every member to offset, no further
// than the slowest member has applied, so that a member catching up is
// always sent the entries it lacks, and never past the start of the entry
// holding offset: the log then starts where an entry does, so that a
// member sent a snapshot (a new one: partitionStorage.Snapshot) starts
// its log there and is sent every entry with an unsettled message. The
// leader asks it; it does not wait.
func (l quorumLog) deleteBefore(offset int64) {
	st, err := l.r.host.Status(l.r.gid)
	if err != nil {
		return
	}
	slowest := st.GetCommit()
	for _, pr := range st.Progress {
		slowest = min(slowest, pr.Match)
	}
	if slowest == 0 {
		return
	}
	rec, err := l.r.idx.get(slowest)
	if err != nil {
		return // trimmed from the index: nothing to say about it
	}
	if offset = l.r.idx.entryStart(min(offset, rec.next)); offset <= l.p.log.StartOffset() {
		return
	}
	go func() {
		if _, err := l.r.proposeDelete(offset); err != nil && !errors.Is(err, ErrClosed) {
			l.r.log.Debug("quorum queue: moving the log start", "offset", offset, "err", err)
		}
	}()
}
