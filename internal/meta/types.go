package meta

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
)

// TopicID is a topic's permanent identity: random UUID v4 bytes, generated
// when CreateTopic is proposed and carried in the command. Kafka clients see
// it in Metadata v10+ and Fetch v13+; a topic deleted and re-created under
// the same name gets a new id.
type TopicID [16]byte

// newTopicID returns a random version 4 UUID. The version bits make it never
// equal to the zero id, which Kafka reserves for "no id".
func newTopicID() TopicID {
	var id TopicID
	rand.Read(id[:]) // never fails since Go 1.24
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// IsZero reports whether id is the all-zero id.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String formats id as a canonical 8-4-4-4-12 hex UUID.
func (id TopicID) String() string { return string(id.appendText(nil)) }

func (id TopicID) appendText(b []byte) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = hex.AppendEncode(b, []byte{c})
	}
	return b
}

// MarshalText implements encoding.TextMarshaler (the UUID string form).
func (id TopicID) MarshalText() ([]byte, error) { return id.appendText(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	p, err := ParseTopicID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseTopicID parses the canonical 36-character UUID form.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("meta: malformed topic id %q", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return TopicID{}, fmt.Errorf("meta: malformed topic id %q", s)
	}
	return id, nil
}

// Topic is a topic's definition.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"` // only explicitly set configs, e.g. "retention.ms"
	CreatedMs  int64             `json:"created_ms"`
	// Replicas are the nodes holding each partition, by partition: in a
	// cluster, chosen by the node that proposed the topic (placement.go).
	// Nil for a topic of a single node, which holds every partition
	// (omitted, so that a single node's snapshots and log are as before).
	Replicas [][]int32 `json:"replicas,omitempty"`
	// Reassignments are the moves of partitions in progress, by
	// partition (reassign.go); nil when none is.
	Reassignments map[int32]Reassignment `json:"reassignments,omitempty"`
	// Grouped are the partitions that are Raft groups though placed on
	// one node, sorted: a partition of one replica is a plain log until a
	// move gives it more replicas or another node (reassign.go), and
	// stays a group after, whatever its replicas.
	Grouped []int32 `json:"grouped,omitempty"`
	// Leaders are the partitions' leaders as their groups' leaders last
	// recorded them (leaders.go); nil until one is.
	Leaders map[int32]PartitionLeader `json:"leaders,omitempty"`
}

// IsGrouped reports whether partition p is a Raft group though placed on
// one node (Grouped).
func (t Topic) IsGrouped(p int32) bool {
	_, ok := slices.BinarySearch(t.Grouped, p)
	return ok
}

// clone returns a deep copy whose Configs is never nil, so callers may
// write to it.
func (t Topic) clone() Topic {
	c := make(map[string]string, len(t.Configs))
	maps.Copy(c, t.Configs)
	t.Configs = c
	t.Replicas = cloneReplicas(t.Replicas)
	t.Reassignments = cloneMoves(t.Reassignments)
	t.Grouped = slices.Clone(t.Grouped)
	t.Leaders = maps.Clone(t.Leaders)
	return t
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// OffsetCommit is a consumer group's committed position in one partition.
type OffsetCommit struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
	CommitMs    int64  `json:"commit_ms"`
}

func (c OffsetCommit) tp() TopicPartition { return TopicPartition{c.Topic, c.Partition} }

// compareTP orders by topic, then partition.
func compareTP(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}
