package broker

import (
	"math"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
)

// Leaders in the metadata (meta/leaders.go): every node names the leader
// of every partition in Metadata, also of the partitions it holds no
// replica of, as every Kafka broker does from the controller's records.
// Only a group's members know its leader, so each node records, through
// the metadata log, the partitions it leads whose record names another
// node or an older term: a leader change costs one metadata entry (one for
// all that a round finds, when a node's failure moves many), as in Kafka,
// where the controller writes each partition's new leader to its log.

// leaderRecordInterval is how often this node looks for leaderships to
// record.
const leaderRecordInterval = 200 * time.Millisecond

// RunLeaderRecords records this node's leaderships (recordLeaders) every
// leaderRecordInterval until stop is closed. A broker without replication
// returns at once.
func (b *Broker) RunLeaderRecords(stop <-chan struct{}) {
	if b.opts.Replication.Host == nil {
		return
	}
	tick := time.NewTicker(leaderRecordInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			b.recordLeaders()
		}
	}
}

// recordLeaders proposes, in one command, the partitions this node leads
// whose recorded leader is another node or an older term. Internal topics (a
// quorum queue's log among them) are not described to Kafka clients and
// are left out. A failed proposal is tried again on the next round.
func (b *Broker) recordLeaders() {
	host := b.opts.Replication.Host
	self := int32(b.opts.NodeID)
	b.mu.RLock()
	topics := make([]*Topic, 0, len(b.topics))
	for _, t := range b.topics {
		if !t.IsInternal() {
			topics = append(topics, t)
		}
	}
	b.mu.RUnlock()
	var all []meta.TopicLeaders
	for _, t := range topics {
		var recs []meta.LeaderRecord
		for _, p := range t.Partitions {
			r := p.repl
			if r == nil || !r.started {
				continue
			}
			leader, term := host.LeaderTerm(r.gid)
			if int32(leader) != self || term == 0 {
				continue
			}
			epoch := int32(min(term, math.MaxInt32))
			if cur, ok := b.meta.PartitionLeader(t.Name, p.Index); ok && cur.Leader == self && cur.Epoch == epoch {
				continue
			}
			recs = append(recs, meta.LeaderRecord{Partition: p.Index, Leader: self, Epoch: epoch})
		}
		if len(recs) > 0 {
			all = append(all, meta.TopicLeaders{Name: t.Name, ID: t.ID, Leaders: recs})
		}
	}
	if len(all) == 0 {
		return
	}
	if err := b.meta.RecordLeaders(all); err != nil {
		b.log.Debug("recording partition leaders", "topics", len(all), "err", err)
	}
}
