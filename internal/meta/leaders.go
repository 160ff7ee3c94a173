package meta

import (
	"fmt"
	"maps"
)

// Leaders of replicated partitions, as Kafka's metadata log carries them
// (docs/clustering.md, "Replicated partitions"): a node that becomes the
// Raft leader of a partition's group records it with its term through
// record_leaders, so that every node, also one that holds no replica of
// the partition, can name its leader and leader epoch in Metadata. A record
// is only a report: the group's Raft state decides who leads; a record of
// an older term never replaces a newer one, and a reader checks that the
// node recorded is still a live replica.

// PartitionLeader is a partition's leader as last recorded: the node and
// its Raft term (the leader epoch).
type PartitionLeader struct {
	Leader int32 `json:"leader"`
	Epoch  int32 `json:"epoch"`
}

// LeaderRecord is one partition of a RecordLeadersCmd.
type LeaderRecord struct {
	Partition int32 `json:"partition"`
	Leader    int32 `json:"leader"`
	Epoch     int32 `json:"epoch"`
}

// TopicLeaders are the leaders recorded for partitions of one topic,
// named by name and id.
type TopicLeaders struct {
	Name    string         `json:"name"`
	ID      TopicID        `json:"id"`
	Leaders []LeaderRecord `json:"leaders"`
}

// RecordLeadersCmd records the leaders of partitions of topics: all that a
// node found to record in one round, whatever the number of topics.
type RecordLeadersCmd struct {
	Topics []TopicLeaders `json:"topics"`
}

// check refuses malformed records only: a topic deleted (or made again
// under its name) since the node looked, or a partition it no longer has,
// is skipped when applied, since a record is only a report.
func (c *RecordLeadersCmd) check(*State) error {
	for _, t := range c.Topics {
		for _, l := range t.Leaders {
			if l.Partition < 0 || l.Leader <= 0 || l.Epoch < 0 {
				return fmt.Errorf("%w: record_leaders: partition %d of %q led by %d in epoch %d", ErrInvalidCommand, l.Partition, t.Name, l.Leader, l.Epoch)
			}
		}
	}
	return nil
}

func (c *RecordLeadersCmd) apply(st *State) Result {
	for _, tl := range c.Topics {
		t := st.topics[tl.Name]
		if t == nil || t.ID != tl.ID || t.Replicas == nil {
			continue
		}
		leaders := maps.Clone(t.Leaders) // readers of the old map keep theirs
		if leaders == nil {
			leaders = make(map[int32]PartitionLeader, len(tl.Leaders))
		}
		for _, l := range tl.Leaders {
			if cur, ok := leaders[l.Partition]; l.Partition < t.Partitions && (!ok || l.Epoch >= cur.Epoch) {
				leaders[l.Partition] = PartitionLeader{Leader: l.Leader, Epoch: l.Epoch}
			}
		}
		t.Leaders = leaders
	}
	return Result{}
}

// RecordLeaders records the leaders of partitions of topics.
func (s *Store) RecordLeaders(topics []TopicLeaders) error {
	_, err := s.propose(NewCommand(&RecordLeadersCmd{Topics: topics}))
	return err
}

// PartitionLeader returns partition p of topic's leader as last recorded.
func (s *Store) PartitionLeader(topic string, p int32) (PartitionLeader, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, found := s.state.topics[topic]
	if !found {
		return PartitionLeader{}, false
	}
	l, ok := t.Leaders[p]
	return l, ok
}
