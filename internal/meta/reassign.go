package meta

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Moving replicas and leaders of replicated partitions (the Kafka admin
// APIs AlterPartitionReassignments and ElectLeaders; docs/clustering.md,
// "Moving replicas and leaders").
//
// A reassignment is recorded in the metadata, not carried out by it: the
// command reassign_partitions sets a partition's target replica set and
// widens its assignment (Topic.Replicas) to the target followed by the
// original replicas that leave, so that every node of either set holds a
// replica while the partition's Raft group changes its membership. The
// group's leader drives that change (broker/reassign.go) and, once the
// group's voters are exactly the target, proposes complete_reassignment,
// which narrows the assignment to the target; the nodes that left then
// drop their replica. Both commands are checked against the topic's id,
// so that a topic deleted and created again under the same name is never
// reassigned by a stale command.
//
// A partition of one replica has no Raft group (its log is a plain log):
// a move from one replica (to more, or to another node) or to one marks
// it Grouped, and the node holding a plain log of it turns that into a
// group of one voter before the move goes on as any other; it stays a
// group after, so that a move can end on one node.
//
// elect_preferred_leaders changes no state: it is a request, carried by
// the metadata log to every node, that whichever node leads one of the
// named partitions hands its leadership to the partition's preferred
// replica. Only the leader can transfer leadership, and any node can
// propose a metadata command, so this reaches it without a second
// node-to-node channel. Observers see it as a Change of that kind.

// Errors of reassignments.
var (
	// ErrNoReassignment: a completion named a move that is not in
	// progress, or not to that target (NO_REASSIGNMENT_IN_PROGRESS).
	ErrNoReassignment = errors.New("meta: no such reassignment in progress")
)

// Reassignment is a partition's replica move in progress.
type Reassignment struct {
	// Target is the replica set the partition moves to, the preferred
	// replica first.
	Target []int32 `json:"target"`
	// Original is the replica set the move started from: the assignment
	// when it was recorded (for a move that replaced or cancelled
	// another, the assignment then, which names every node that may be in
	// the partition's Raft group).
	Original []int32 `json:"original"`
	// Base is the replica set before the first of a chain of moves (a
	// move, then the moves that replaced or cancelled it): the nodes that
	// may have created the partition's group. A node outside it joins the
	// group empty, never creating it (broker/reassign.go); a cancellation
	// goes back to it. Empty in moves recorded before it existed: Original
	// then.
	Base []int32 `json:"base,omitempty"`
}

// Before is the replica set before the chain of moves this one belongs to.
func (r Reassignment) Before() []int32 {
	if len(r.Base) > 0 {
		return r.Base
	}
	return r.Original
}

// Adding are the target replicas not in the original set.
func (r Reassignment) Adding() []int32 { return minus(r.Target, r.Original) }

// Removing are the original replicas not in the target set.
func (r Reassignment) Removing() []int32 { return minus(r.Original, r.Target) }

func minus(a, b []int32) []int32 {
	out := []int32{}
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// union is target followed by the original replicas not in it: the
// assignment of a partition being moved.
func union(target, original []int32) []int32 {
	return append(slices.Clone(target), minus(original, target)...)
}

// PartitionTarget is one partition of a ReassignPartitionsCmd.
type PartitionTarget struct {
	Partition int32 `json:"partition"`
	// Target is the new replica set; nil cancels the move in progress,
	// which becomes a move back to its original replicas.
	Target []int32 `json:"target"`
}

// ReassignPartitionsCmd starts (or cancels) moves of partitions of a
// placed topic.
type ReassignPartitionsCmd struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions []PartitionTarget `json:"partitions"`
}

// CompleteReassignmentCmd ends a move whose Raft group has reached its
// target: the assignment becomes the target.
type CompleteReassignmentCmd struct {
	Name      string  `json:"name"`
	ID        TopicID `json:"id"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target"`
}

// ElectPreferredLeadersCmd asks the leaders of the named partitions to
// hand leadership to their preferred replicas. It changes no state.
type ElectPreferredLeadersCmd struct {
	Name       string  `json:"name"`
	ID         TopicID `json:"id"`
	Partitions []int32 `json:"partitions"`
}

// placedTopic returns the topic name with id id, which must be placed.
func (st *State) placedTopic(kind, name string, id TopicID) (*Topic, error) {
	t, err := st.topic(name)
	if err != nil {
		return nil, err
	}
	if t.ID != id {
		return nil, fmt.Errorf("%w: %q has another id", ErrUnknownTopic, name)
	}
	if t.Replicas == nil {
		return nil, fmt.Errorf("%w: %s: %q has no assignment", ErrInvalidCommand, kind, name)
	}
	return t, nil
}

func (c *ReassignPartitionsCmd) check(st *State) error {
	t, err := st.placedTopic("reassign_partitions", c.Name, c.ID)
	if err != nil {
		return err
	}
	seen := map[int32]bool{}
	for _, pt := range c.Partitions {
		if pt.Partition < 0 || pt.Partition >= t.Partitions || seen[pt.Partition] {
			return fmt.Errorf("%w: reassign_partitions: partition %d of %q", ErrInvalidCommand, pt.Partition, c.Name)
		}
		seen[pt.Partition] = true
		if pt.Target == nil {
			continue
		}
		if err := checkReplicas("reassign_partitions", [][]int32{pt.Target}, 1); err != nil {
			return err
		}
	}
	return nil
}

func (c *ReassignPartitionsCmd) apply(st *State) Result {
	t := st.topics[c.Name]
	// New slices and map: readers of the old ones keep theirs.
	replicas := cloneReplicas(t.Replicas)
	moves := maps.Clone(t.Reassignments)
	if moves == nil {
		moves = map[int32]Reassignment{}
	}
	grouped := t.Grouped
	for _, pt := range c.Partitions {
		cur, moving := moves[pt.Partition]
		switch {
		case pt.Target == nil && !moving:
			continue // nothing to cancel
		case pt.Target == nil:
			// Back to where it started, from wherever it is now.
			cur = Reassignment{Target: slices.Clone(cur.Before()), Original: replicas[pt.Partition], Base: cur.Before()}
		case moving:
			// A new target replaces the move's, as in Kafka, from
			// wherever it is now: every node of the assignment may be
			// in the group, so they are all the move's original.
			cur = Reassignment{Target: slices.Clone(pt.Target), Original: replicas[pt.Partition], Base: cur.Before()}
		default:
			cur = Reassignment{Target: slices.Clone(pt.Target), Original: replicas[pt.Partition], Base: replicas[pt.Partition]}
		}
		if slices.Equal(cur.Target, cur.Original) {
			delete(moves, pt.Partition)
			replicas[pt.Partition] = slices.Clone(cur.Target)
			continue
		}
		if (len(cur.Original) == 1 || len(cur.Target) == 1) && !slices.Contains(grouped, pt.Partition) {
			grouped = append(slices.Clone(grouped), pt.Partition)
			slices.Sort(grouped)
		}
		moves[pt.Partition] = cur
		replicas[pt.Partition] = union(cur.Target, cur.Original)
	}
	t.Replicas = replicas
	t.Reassignments = movesOrNil(moves)
	t.Grouped = grouped
	return Result{}
}

func movesOrNil(m map[int32]Reassignment) map[int32]Reassignment {
	if len(m) == 0 {
		return nil
	}
	return m
}

func (c *CompleteReassignmentCmd) check(st *State) error {
	t, err := st.placedTopic("complete_reassignment", c.Name, c.ID)
	if err != nil {
		return err
	}
	r, moving := t.Reassignments[c.Partition]
	if !moving || !slices.Equal(r.Target, c.Target) {
		return fmt.Errorf("%w: partition %d of %q is not moving to %v", ErrNoReassignment, c.Partition, c.Name, c.Target)
	}
	return nil
}

func (c *CompleteReassignmentCmd) apply(st *State) Result {
	t := st.topics[c.Name]
	replicas := cloneReplicas(t.Replicas)
	replicas[c.Partition] = slices.Clone(c.Target)
	moves := maps.Clone(t.Reassignments)
	delete(moves, c.Partition)
	t.Replicas = replicas
	t.Reassignments = movesOrNil(moves)
	return Result{}
}

func (c *ElectPreferredLeadersCmd) check(st *State) error {
	_, err := st.placedTopic("elect_preferred_leaders", c.Name, c.ID)
	return err
}

func (c *ElectPreferredLeadersCmd) apply(*State) Result { return Result{} }

// ReassignPartitions starts moves of partitions of topic (whose id is id)
// to their targets; a nil target cancels a move (it becomes a move back).
// A partition already moving given a new target moves there instead, from
// wherever it is (as in Kafka).
func (s *Store) ReassignPartitions(topic string, id TopicID, targets []PartitionTarget) error {
	_, err := s.propose(NewCommand(&ReassignPartitionsCmd{Name: topic, ID: id, Partitions: targets}))
	return err
}

// CompleteReassignment ends partition p's move to target.
func (s *Store) CompleteReassignment(topic string, id TopicID, p int32, target []int32) error {
	_, err := s.propose(NewCommand(&CompleteReassignmentCmd{Name: topic, ID: id, Partition: p, Target: target}))
	return err
}

// ElectPreferredLeaders asks, through the log, the leaders of partitions
// of topic to hand over to their preferred replicas.
func (s *Store) ElectPreferredLeaders(topic string, id TopicID, partitions []int32) error {
	_, err := s.propose(NewCommand(&ElectPreferredLeadersCmd{Name: topic, ID: id, Partitions: partitions}))
	return err
}

func cloneMoves(m map[int32]Reassignment) map[int32]Reassignment {
	if m == nil {
		return nil
	}
	out := make(map[int32]Reassignment, len(m))
	for p, r := range m {
		out[p] = Reassignment{Target: slices.Clone(r.Target), Original: slices.Clone(r.Original), Base: slices.Clone(r.Base)}
	}
	return out
}
