package broker

import (
	"fmt"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// ErrNotHeld: the partition lives on another node of the cluster. Kafka
// answers it NOT_LEADER_OR_FOLLOWER (its kind: unavailable here).
var ErrNotHeld = newError(KindUnavailable, "broker: the partition is held by another node")

// elsewhereLog stands for the log of a partition that another node of
// the cluster holds (placement: meta.Topic.Replicas). Until partition
// data is replicated a node keeps no copy of such a partition, but its
// topic still has a Partition at that index, so that everything that
// walks a topic's partitions by index (fetch sessions, offsets, metrics,
// the cleaner, the router's views) needs no special case: here the
// partition is empty and refuses writes with ErrNotHeld. The Kafka front
// end never gets that far: its leadership check answers
// NOT_LEADER_OR_FOLLOWER first, pointing at the node that holds it.
// It touches no file.
type elsewhereLog struct {
	changed chan struct{} // never closed: the log never moves
}

func newElsewhereLog() *elsewhereLog { return &elsewhereLog{changed: make(chan struct{})} }

func (*elsewhereLog) Append([]byte) (int64, Pending, error) { return 0, nil, ErrNotHeld }

func (*elsewhereLog) Read(offset int64, _ int) ([]byte, error) {
	if offset != 0 {
		return nil, fmt.Errorf("%w: offset %d of a partition held elsewhere", storage.ErrOffsetOutOfRange, offset)
	}
	return nil, nil
}

func (*elsewhereLog) ScanHeaders(int64, func(storage.BatchHeader) bool) error { return nil }

func (*elsewhereLog) OffsetForTimestamp(int64) (int64, int64, bool, error) { return 0, 0, false, nil }

func (*elsewhereLog) StartOffset() int64                                 { return 0 }
func (*elsewhereLog) HighWatermark() int64                               { return 0 }
func (l *elsewhereLog) Changed() <-chan struct{}                         { return l.changed }
func (*elsewhereLog) SegmentBaseOffsets() []int64                        { return nil }
func (*elsewhereLog) Size() int64                                        { return 0 }
func (*elsewhereLog) DeleteRecordsBefore(int64) error                    { return ErrNotHeld }
func (*elsewhereLog) EnforceRetention(time.Duration, int64) (int, error) { return 0, nil }
func (*elsewhereLog) SetSegmentOptions(int64, time.Duration)             {}
func (*elsewhereLog) Failed() error                                      { return nil }
func (*elsewhereLog) Recover() error                                     { return nil }
func (*elsewhereLog) Close() error                                       { return nil }
func (*elsewhereLog) Delete() error                                      { return nil }

// holds reports whether this node holds partition p of t: every
// partition on a single node (NodeID 0) and of a topic without an
// assignment; in a cluster, those whose replicas name this node.
func (b *Broker) holds(t *Topic, p int32) bool {
	if b.opts.NodeID == 0 || t.Replicas == nil || int(p) >= len(t.Replicas) {
		return true
	}
	for _, id := range t.Replicas[p] {
		if uint64(id) == b.opts.NodeID {
			return true
		}
	}
	return false
}

// Holds reports whether this node holds partition p of t (placement.go
// of package meta): always on a single node.
func (b *Broker) Holds(t *Topic, p int32) bool { return b.holds(t, p) }

// openPartitionLog opens partition i of tp: its disk log when this node
// holds it, else a stand-in that touches no file.
func (b *Broker) openPartitionLog(tp *Topic, i int32) (PartitionLog, error) {
	if !b.holds(tp, i) {
		return newElsewhereLog(), nil
	}
	if b.replicated(tp, i) {
		return b.openReplicaLog(tp, i)
	}
	return openDiskLog(b.partitionDir(tp.Name, i), b.logOptions(tp.cfg))
}
