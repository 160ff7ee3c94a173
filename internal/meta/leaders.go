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

// RecordLeadersCmd records the leaders of partitions of a placed topic.
type RecordLeadersCmd struct {
	Name    string         `json:"name"`
	ID      TopicID        `json:"id"`
	Leaders []LeaderRecord `json:"leaders"`
}

func (c *RecordLeadersCmd) check(st *State) error {
	t, err := st.placedTopic("record_leaders", c.Name, c.ID)
	if err != nil {
		return err
	}
	for _, l := range c.Leaders {
		if l.Partition < 0 || l.Partition >= t.Partitions || l.Leader <= 0 || l.Epoch < 0 {
			return fmt.Errorf("%w: record_leaders: partition %d of %q led by %d in epoch %d", ErrInvalidCommand, l.Partition, c.Name, l.Leader, l.Epoch)
		}
	}
	return nil
}

func (c *RecordLeadersCmd) apply(st *State) Result {
	t := st.topics[c.Name]
	leaders := maps.Clone(t.Leaders) // readers of the old map keep theirs
	if leaders == nil {
		leaders = make(map[int32]PartitionLeader, len(c.Leaders))
	}
	for _, l := range c.Leaders {
		if cur, ok := leaders[l.Partition]; !ok || l.Epoch >= cur.Epoch {
			leaders[l.Partition] = PartitionLeader{Leader: l.Leader, Epoch: l.Epoch}
		}
	}
	t.Leaders = leaders
	return Result{}
}

// RecordLeaders records the leaders of partitions of topic (whose id is id).
func (s *Store) RecordLeaders(topic string, id TopicID, leaders []LeaderRecord) error {
	_, err := s.propose(NewCommand(&RecordLeadersCmd{Name: topic, ID: id, Leaders: leaders}))
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
