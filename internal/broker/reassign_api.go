package broker

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/sluice-mq/sluice/internal/meta"
)

// The front ends' side of moving leaders and replicas (reassign.go).

// Errors of reassignments.
var (
	// ErrNoReassignmentInProgress: a cancellation named a partition that
	// is not moving.
	ErrNoReassignmentInProgress = newError(KindInvalid, "broker: no reassignment of the partition is in progress")
)

// Assignment returns the replicas partition p of topic is assigned to,
// the preferred replica first (nil for a topic of a single node, held by
// every node); ok is false for an unknown topic or partition.
func (b *Broker) Assignment(topic string, p int32) (replicas []int32, ok bool) {
	if b.internalTopicErr(topic) != nil {
		return nil, false
	}
	return b.meta.PartitionReplicas(topic, p)
}

// ElectPreferredLeaders asks the leaders of partitions of topic, through
// the metadata log, to hand leadership to their preferred replicas
// (reassign.go). It returns once the request is committed, not once
// leadership has moved.
func (b *Broker) ElectPreferredLeaders(topic string, partitions []int32) error {
	mt, ok := b.meta.Topic(topic)
	if !ok {
		return ErrUnknownTopic
	}
	return metaErr(b.meta.ElectPreferredLeaders(topic, mt.ID, partitions))
}

// PartitionMove is a requested move of one partition: Target nil cancels
// the move in progress.
type PartitionMove struct {
	Partition int32
	Target    []int32
}

// ReassignPartitions records the moves of partitions of topic
// (meta.Store.ReassignPartitions); the partitions' leaders carry them out
// (StepReassignments). errs[i] answers moves[i]: a move that fails its
// checks is left out, the others are recorded together.
func (b *Broker) ReassignPartitions(topic string, moves []PartitionMove) (errs []error) {
	errs = make([]error, len(moves))
	mt, ok := b.meta.Topic(topic)
	if !ok || b.internalTopicErr(topic) != nil {
		for i := range errs {
			errs[i] = ErrUnknownTopic
		}
		return errs
	}
	var targets []meta.PartitionTarget
	var at []int
	seen := make(map[int32]bool, len(moves)) // a map: the list comes from the network
	for i, mv := range moves {
		_, moving := mt.Reassignments[mv.Partition]
		named := seen[mv.Partition]
		seen[mv.Partition] = true
		switch {
		case mv.Partition < 0 || mv.Partition >= mt.Partitions:
			errs[i] = ErrUnknownTopic
		case named:
			errs[i] = fmt.Errorf("%w: partition %d named twice", ErrInvalidReplicaAssignment, mv.Partition)
		case mv.Target == nil && !moving:
			errs[i] = ErrNoReassignmentInProgress
		default:
			errs[i] = b.ReassignmentCheck(mt, mv.Partition, mv.Target)
		}
		if errs[i] == nil {
			targets = append(targets, meta.PartitionTarget{Partition: mv.Partition, Target: slices.Clone(mv.Target)})
			at = append(at, i)
		}
	}
	if len(targets) == 0 {
		return errs
	}
	err := b.meta.ReassignPartitions(topic, mt.ID, targets)
	switch {
	case errors.Is(err, meta.ErrUnknownTopic):
		err = ErrUnknownTopic
	default:
		err = metaErr(err)
	}
	for _, i := range at {
		errs[i] = err
	}
	return errs
}

// Move is a partition's move in progress as Kafka lists it.
type Move struct {
	Topic     string
	Partition int32
	// Replicas is the partition's whole assignment during the move;
	// Adding and Removing the replicas that join and leave.
	Replicas, Adding, Removing []int32
}

// Reassignments lists the moves in progress, by topic and partition.
func (b *Broker) Reassignments() []Move {
	var out []Move
	for _, t := range b.meta.Topics() {
		for p, mv := range t.Reassignments {
			if int(p) >= len(t.Replicas) {
				continue
			}
			out = append(out, Move{Topic: t.Name, Partition: p, Replicas: slices.Clone(t.Replicas[p]),
				Adding: mv.Adding(), Removing: mv.Removing()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}
