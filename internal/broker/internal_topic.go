package broker

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/offsets"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Internal topics are state the broker keeps in stores of its own, shown
// to Kafka clients as read-only, compacted topics, as Kafka shows its
// internal topics: Metadata marks them internal (so regex subscriptions
// skip them), Fetch and ListOffsets read them through the same Partition
// interface as any topic, and producing to, creating, deleting or
// reconfiguring them fails with ErrInternalTopic.
//
// A store provides one as InternalRecords: per partition, its records in
// increasing offset order, gaps allowed (a replaced or deleted entry
// leaves one, as compaction does in Kafka). The core turns them into
// RecordBatch v2 batches (one record a batch, at the record's offset) and
// knows nothing of the keys' and values' encoding: the front end that
// names the format supplies it (Options.OffsetsTopicCodec).

// OffsetsTopic is the name under which consumer groups' committed offsets
// are shown, and OffsetsTopicPartitions its partition count (Kafka's
// offsets.topic.num.partitions default).
const (
	OffsetsTopic           = "__consumer_offsets"
	OffsetsTopicPartitions = 50
)

// OffsetsTopicCodec encodes committed offsets as the records of the
// __consumer_offsets topic (for Kafka clients: Apache Kafka's own
// OffsetCommitKey and OffsetCommitValue).
type OffsetsTopicCodec interface {
	OffsetCommitKey(group, topic string, partition int32) []byte
	OffsetCommitValue(c OffsetCommit) []byte
}

// InternalRecord is one record of an internal topic; a nil Value is a
// tombstone (a null value, as Kafka writes for deleted keys).
type InternalRecord struct {
	Offset     int64
	Timestamp  int64 // Unix milliseconds
	Key, Value []byte
}

// InternalRecords is what a store provides to be shown as an internal
// topic. Implementations must be safe for concurrent use.
type InternalRecords interface {
	// Records returns partition p's records at or after offset from, in
	// offset order, at most limit of them.
	Records(p int32, from int64, limit int) []InternalRecord
	// End is the offset after partition p's last record: its high
	// watermark.
	End(p int32) int64
	// Changed returns a channel closed the next time any partition may
	// have new records.
	Changed() <-chan struct{}
}

// IsInternal reports whether t is an internal topic.
// A quorum queue's log (quorum.go) is one too: the queue owns it.
func (t *Topic) IsInternal() bool {
	return t.internal || isQuorumTopic(t.Name) || isStreamQueueTopic(t.Name) || isDelayedTopic(t.Name)
}

// internalTopicID is a topic id that stays the same across restarts for
// an internal topic that has no metadata record: derived from its name,
// with the UUID version 4 bits set as a random id's are.
func internalTopicID(name string) TopicID {
	sum := sha256.Sum256([]byte("sluice internal topic " + name))
	var id TopicID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// newInternalTopic returns the topic that shows src: n partitions, each a
// Partition over a read-only view log.
func (b *Broker) newInternalTopic(name string, n int32, src InternalRecords) (*Topic, error) {
	configs := map[string]string{"cleanup.policy": "compact"}
	tp := &Topic{
		Topic:    meta.Topic{Name: name, ID: internalTopicID(name), Partitions: n, Configs: configs},
		cfg:      b.resolve(configs),
		internal: true,
	}
	for i := range n {
		p, err := newPartition(name, i, &viewLog{src: src, p: i}, tp.cfg.maxMessageBytes)
		if err != nil {
			return nil, fmt.Errorf("internal topic %s-%d: %w", name, i, err)
		}
		p.now = b.opts.Now
		tp.Partitions = append(tp.Partitions, p)
	}
	return tp, nil
}

// internalTopicErr refuses a definition change of an internal topic.
func (b *Broker) internalTopicErr(name string) error {
	if t, ok := b.Topic(name); ok && t.IsInternal() {
		return fmt.Errorf("%w: %s", ErrInternalTopic, name)
	}
	return nil
}

// viewLog is one partition of an internal topic as a read-only
// PartitionLog. Its start is 0; its high watermark is the source's End.
type viewLog struct {
	src InternalRecords
	p   int32
}

// viewReadLimit caps the records one Read builds batches of.
const viewReadLimit = 4096

func (v *viewLog) Append([]byte) (int64, Pending, error) {
	return 0, nil, fmt.Errorf("%w: produce", ErrInternalTopic)
}

func (v *viewLog) Read(offset int64, maxBytes int) ([]byte, error) {
	end := v.src.End(v.p)
	if offset < 0 || offset > end {
		return nil, fmt.Errorf("%w: offset %d, log holds 0..%d", storage.ErrOffsetOutOfRange, offset, end)
	}
	var out []byte
	for _, r := range v.src.Records(v.p, offset, viewReadLimit) {
		batch := storage.BuildRecordBatch(r.Offset, r.Timestamp, []storage.Record{{Key: r.Key, Value: r.Value}})
		if len(out) > 0 && len(out)+len(batch) > maxBytes {
			break
		}
		out = append(out, batch...)
	}
	return out, nil
}

func (v *viewLog) ScanHeaders(from int64, fn func(storage.BatchHeader) bool) error {
	for {
		recs := v.src.Records(v.p, from, viewReadLimit)
		for _, r := range recs {
			h, err := storage.ParseBatchHeader(storage.BuildRecordBatch(r.Offset, r.Timestamp, []storage.Record{{Key: r.Key, Value: r.Value}}))
			if err != nil {
				return err
			}
			if !fn(h) {
				return nil
			}
			from = r.Offset + 1
		}
		if len(recs) < viewReadLimit {
			return nil
		}
	}
}

func (v *viewLog) OffsetForTimestamp(ts int64) (offset, maxTimestamp int64, ok bool, err error) {
	err = v.ScanHeaders(0, func(h storage.BatchHeader) bool {
		if h.MaxTimestamp >= ts {
			offset, maxTimestamp, ok = h.BaseOffset, h.MaxTimestamp, true
			return false
		}
		return true
	})
	return offset, maxTimestamp, ok, err
}

func (v *viewLog) StartOffset() int64          { return 0 }
func (v *viewLog) HighWatermark() int64        { return v.src.End(v.p) }
func (v *viewLog) Changed() <-chan struct{}    { return v.src.Changed() }
func (v *viewLog) SegmentBaseOffsets() []int64 { return []int64{0} }
func (v *viewLog) Size() int64                 { return 0 }

func (v *viewLog) DeleteRecordsBefore(int64) error {
	return fmt.Errorf("%w: delete records", ErrInternalTopic)
}

func (v *viewLog) EnforceRetention(time.Duration, int64) (int, error) { return 0, nil }
func (v *viewLog) SetSegmentOptions(int64, time.Duration)             {}
func (v *viewLog) Failed() error                                      { return nil }
func (v *viewLog) Recover() error                                     { return nil }
func (v *viewLog) Close() error                                       { return nil }
func (v *viewLog) Delete() error                                      { return fmt.Errorf("%w: delete", ErrInternalTopic) }

// OffsetsTopicPartition is the __consumer_offsets partition that holds a
// group's offsets: Kafka's abs(groupId.hashCode()) % partitions, with
// Java's String.hashCode over UTF-16 code units, so that tools computing
// the partition as Kafka does find the group there.
func OffsetsTopicPartition(group string, partitions int32) int32 {
	var h int32
	for _, r := range group {
		if r >= 0x10000 { // a surrogate pair in UTF-16
			r -= 0x10000
			h = 31*h + int32(0xd800+(r>>10))
			h = 31*h + int32(0xdc00+(r&0x3ff))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -1<<31 { // Kafka's Utils.abs maps MinInt32 to 0
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// offsetsView shows the offsets store as the partitions of
// __consumer_offsets: a commit's record offset is its sequence number in
// the store (stable across restarts and the store's compaction), in the
// partition its group hashes to.
//
// It indexes the store's entries by partition once per change of the
// store, so that fetches (Burrow polls every partition four times a
// second) cost a binary search, not a scan of every offset.
type offsetsView struct {
	store *offsets.Store
	codec OffsetsTopicCodec
	n     int32

	mu    sync.Mutex
	at    <-chan struct{}   // the store's Changed channel when parts was built
	parts [][]offsets.Entry // per partition, in Seq order
}

// index returns the entries by partition as of now or later.
func (o *offsetsView) index() [][]offsets.Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := o.store.Changed() // before reading: a change after it rebuilds next time
	if o.parts != nil && o.at == ch {
		return o.parts
	}
	parts := make([][]offsets.Entry, o.n)
	part := map[string]int32{}
	for _, e := range o.store.Since(0, func(string) bool { return true }, 0) {
		p, ok := part[e.Group]
		if !ok {
			p = OffsetsTopicPartition(e.Group, o.n)
			part[e.Group] = p
		}
		parts[p] = append(parts[p], e)
	}
	o.at, o.parts = ch, parts
	return parts
}

func (o *offsetsView) Records(p int32, from int64, limit int) []InternalRecord {
	entries := o.index()[p]
	i, _ := slices.BinarySearchFunc(entries, from, func(e offsets.Entry, seq int64) int { return cmp.Compare(e.Seq, seq) })
	entries = entries[i:]
	if limit > 0 && len(entries) > limit {
		entries = entries[:limit]
	}
	out := make([]InternalRecord, len(entries))
	for i, e := range entries {
		out[i] = InternalRecord{
			Offset:    e.Seq,
			Timestamp: e.CommitMs,
			Key:       o.codec.OffsetCommitKey(e.Group, e.Topic, e.Partition),
		}
		if !e.Deleted { // a deleted offset's record is a tombstone: a null value
			out[i].Value = o.codec.OffsetCommitValue(e.Commit)
		}
	}
	return out
}

// End is the offset after the partition's last commit or tombstone. The
// store drops tombstones when it rewrites its log, which can move End back
// (docs/kafka-compatibility.md).
func (o *offsetsView) End(p int32) int64 {
	entries := o.index()[p]
	if len(entries) == 0 {
		return 0
	}
	return entries[len(entries)-1].Seq + 1
}

func (o *offsetsView) Changed() <-chan struct{} { return o.store.Changed() }
