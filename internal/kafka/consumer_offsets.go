package kafka

// The __consumer_offsets topic (broker/internal_topic.go) in Apache
// Kafka's own record formats, so that tools that read it (lag checkers
// such as Burrow, kcat with a decoder) understand it: the key is
// OffsetCommitKey version 1 (group, topic, partition), the value
// OffsetCommitValue version 3 (offset, leader epoch, metadata, commit
// timestamp), the versions Kafka writes for a commit. Group metadata
// records (GroupMetadataKey, version 2) are not written: Sluice's group
// membership is not durable. Codecs from kmsg, as every Kafka codec here.

import (
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetsTopicCodec encodes committed offsets as __consumer_offsets
// records; the server gives it to the core.
type OffsetsTopicCodec struct{}

var _ broker.OffsetsTopicCodec = OffsetsTopicCodec{}

// OffsetCommitKey is Kafka's OffsetCommitKey, version 1.
func (OffsetsTopicCodec) OffsetCommitKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = 1, group, topic, partition
	return k.AppendTo(nil)
}

// OffsetCommitValue is Kafka's OffsetCommitValue, version 3.
func (OffsetsTopicCodec) OffsetCommitValue(c broker.OffsetCommit) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = c.Offset, c.LeaderEpoch, c.Metadata, c.CommitMs
	return v.AppendTo(nil)
}
