package broker

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/offsets"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Consumer offsets and producer ids: what the Kafka coordinators keep. The
// offsets live in the core's own offsets store (package offsets), not in
// the metadata log; producer ids stay metadata commands.

// OffsetCommit is one committed offset of a consumer group.
type OffsetCommit = offsets.Commit

// TopicPartition names a topic partition.
type TopicPartition = offsets.Partition

// TopicID is a topic's permanent id (a UUID).
type TopicID = meta.TopicID

// openOffsets opens the offsets store in DataDir/offsets and carries over
// any offsets an older version left in the metadata state.
func (b *Broker) openOffsets() error {
	// Commits are as durable as the logs' --fsync policy makes data.
	var syncInterval time.Duration
	switch b.opts.Storage.Sync {
	case storage.SyncInterval:
		syncInterval = cmp.Or(b.opts.Storage.SyncInterval, storage.DefaultSyncInterval)
	case storage.SyncNever:
		syncInterval = -1
	}
	s, err := offsets.Open(filepath.Join(b.opts.DataDir, "offsets"), offsets.Options{
		Now: b.opts.Now, Logger: b.opts.Logger, WrapLog: b.opts.WrapOffsetsLog,
		SyncInterval: syncInterval,
	})
	if err != nil {
		return fmt.Errorf("open consumer offsets: %w", err)
	}
	b.offsets = s
	if b.offsetsInMeta() {
		return nil // the metadata's offsets are the cluster's, not an old version's
	}
	if err := b.migrateOffsets(); err != nil {
		return fmt.Errorf("moving consumer offsets out of the metadata log: %w", err)
	}
	return nil
}

// migrateOffsets moves the offsets an older version committed to the
// metadata state into the offsets store: each group's offsets that the
// store does not have yet are committed there (durably), then deleted from
// meta. A crash in between repeats the copy, which skips what the store
// already has, so an offset committed since is never overwritten.
func (b *Broker) migrateOffsets() error {
	for _, group := range b.meta.OffsetGroups() {
		var carry []OffsetCommit
		for _, oc := range b.meta.GroupOffsets(group) {
			if _, ok := b.offsets.Get(group, oc.Topic, oc.Partition); ok {
				continue
			}
			carry = append(carry, OffsetCommit{
				Topic: oc.Topic, Partition: oc.Partition, Offset: oc.Offset,
				LeaderEpoch: oc.LeaderEpoch, Metadata: oc.Metadata, CommitMs: oc.CommitMs,
			})
		}
		if err := b.offsets.Commit(group, carry, nil); err != nil {
			return err
		}
		if err := b.meta.DeleteGroupOffsets(group, nil); err != nil {
			return err
		}
		b.log.Info("consumer offsets moved from the metadata log", "group", group, "offsets", len(carry))
	}
	return nil
}

// CommitOffsets durably commits a group's offsets, all or none: if any
// names an unknown topic (ErrUnknownTopic) or partition
// (ErrUnknownPartition) when it is written, none is committed. A zero
// CommitMs is set to now; a later entry for the same partition wins.
func (b *Broker) CommitOffsets(group string, commits []OffsetCommit) error {
	check := func() error {
		for _, c := range commits {
			if _, err := b.Partition(c.Topic, c.Partition); err != nil {
				return err
			}
		}
		return nil
	}
	if b.offsetsInMeta() {
		if err := check(); err != nil {
			return err
		}
		cs := make([]meta.OffsetCommit, len(commits))
		for i, c := range commits {
			cs[i] = meta.OffsetCommit{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset,
				LeaderEpoch: c.LeaderEpoch, Metadata: c.Metadata, CommitMs: c.CommitMs}
		}
		return metaErr(b.meta.CommitOffsets(group, cs))
	}
	return offsetsErr(b.offsets.Commit(group, commits, check))
}

// offsetsInMeta reports whether committed offsets are metadata commands:
// in a cluster they are, so that they are replicated by the metadata
// group and a group whose coordinator moves to another node (the node
// went down) finds them there. A single node keeps them in its own
// offsets store (package offsets), which is faster and as durable.
func (b *Broker) offsetsInMeta() bool { return b.opts.NodeID != 0 }

// fromMeta converts committed offsets kept in the metadata.
func fromMeta(cs []meta.OffsetCommit) []OffsetCommit {
	out := make([]OffsetCommit, len(cs))
	for i, c := range cs {
		out[i] = OffsetCommit{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset,
			LeaderEpoch: c.LeaderEpoch, Metadata: c.Metadata, CommitMs: c.CommitMs}
	}
	return out
}

// DeleteGroupOffsets deletes a group's offsets in tps, or all of them when
// tps is nil. Deleting offsets that do not exist is not an error.
func (b *Broker) DeleteGroupOffsets(group string, tps []TopicPartition) error {
	if b.offsetsInMeta() {
		var mtps []meta.TopicPartition
		if tps != nil {
			mtps = make([]meta.TopicPartition, len(tps))
			for i, tp := range tps {
				mtps[i] = meta.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
			}
		}
		return metaErr(b.meta.DeleteGroupOffsets(group, mtps))
	}
	return offsetsErr(b.offsets.Delete(group, tps))
}

// GroupOffsets returns a group's committed offsets sorted by topic and
// partition.
func (b *Broker) GroupOffsets(group string) []OffsetCommit {
	if b.offsetsInMeta() {
		return fromMeta(b.meta.GroupOffsets(group))
	}
	return b.offsets.Group(group)
}

// GroupOffset returns one committed offset.
func (b *Broker) GroupOffset(group, topic string, partition int32) (OffsetCommit, bool) {
	if b.offsetsInMeta() {
		c, ok := b.meta.GroupOffset(group, topic, partition)
		if !ok {
			return OffsetCommit{}, false
		}
		return fromMeta([]meta.OffsetCommit{c})[0], true
	}
	return b.offsets.Get(group, topic, partition)
}

// OffsetGroups returns the groups that have committed offsets, sorted.
func (b *Broker) OffsetGroups() []string {
	if b.offsetsInMeta() {
		return b.meta.OffsetGroups()
	}
	return b.offsets.Groups()
}

// OffsetStats returns the offsets store's counters.
func (b *Broker) OffsetStats() offsets.Stats { return b.offsets.Stats() }

// InitProducerID hands out a producer id for a Kafka idempotent or
// transactional producer (meta's Store.InitProducerID), durable before it
// returns.
func (b *Broker) InitProducerID(transactionalID string) (producerID int64, epoch int16, err error) {
	id, epoch, err := b.meta.InitProducerID(transactionalID)
	return id, epoch, metaErr(err)
}

// offsetsErr gives the offsets store's failures the core's meaning: a log
// that cannot be written is ErrStorage, a closed one ErrClosed.
func offsetsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, offsets.ErrFailed):
		return fmt.Errorf("%w: %w", ErrStorage, err)
	case errors.Is(err, offsets.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// metaErr is offsetsErr for the metadata store. The meta error stays in
// the chain for callers that still test for it.
func metaErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, meta.ErrStoreFailed):
		return fmt.Errorf("%w: %w", ErrStorage, err)
	case errors.Is(err, meta.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, meta.ErrNoLeader) || errors.Is(err, meta.ErrProposalTimeout):
		return fmt.Errorf("%w: %w", ErrMetaUnavailable, err)
	}
	return err
}
