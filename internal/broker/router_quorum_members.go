package broker

// Adding and removing members of quorum queues (docs/clustering.md,
// "Quorum queues"), what rabbitmq-queues add_member, delete_member, grow
// and shrink do. A quorum queue's members are the replicas of its log's
// one partition, so a change of members is a reassignment of that
// partition (reassign.go): the leader adds the new member as a learner,
// promotes it once caught up and removes a leaving one, one Raft
// membership change at a time. A new member is sent the log from its
// start, its Raft snapshot carrying the ack record (partitionStorage.
// Snapshot), so that it holds every unsettled message and knows every
// settle. The calls return once the change is recorded, not done: the
// queue's members (QueueStatus) show the move while it runs.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"

	"github.com/sluice-mq/sluice/internal/meta"
)

// Errors of member changes.
var (
	// ErrAlreadyMember: the node is a member of the queue already.
	ErrAlreadyMember = newError(KindConflict, "broker: the node is already a member of the quorum queue")
	// ErrNotMember: the node is not a member of the queue.
	ErrNotMember = newError(KindNotFound, "broker: the node is not a member of the quorum queue")
	// ErrNotQuorumQueue: the queue is not a quorum queue.
	ErrNotQuorumQueue = newError(KindInvalid, "broker: not a quorum queue")
	// ErrMembersMoving: a change of the queue's members is still under way.
	ErrMembersMoving = newError(KindConflict, "broker: a change of the quorum queue's members is under way")
	// ErrTooFewMembers: the change would remove the queue's last member
	// (RabbitMQ's last_member).
	ErrTooFewMembers = newError(KindConflict, "broker: the last member of a quorum queue cannot be removed")
	// ErrNotQuorumStrategy: a grow's strategy is neither all nor even.
	ErrNotQuorumStrategy = newError(KindInvalid, "broker: unknown strategy")
)

// QuorumMemberResult is the outcome of a change of one queue's members.
type QuorumMemberResult struct {
	Vhost, Name string
	// Size is the number of members once the change is done (now, for a
	// change refused).
	Size int
	Err  error
}

// AddQuorumMember adds node to the members of quorum queue name of vhost
// vh.
func (r *Router) AddQuorumMember(vh, name string, node uint64) error {
	_, err := r.changeQuorumMembers(vh, name, func(cur []int32) ([]int32, error) {
		return withMember(cur, node)
	})
	return err
}

// DeleteQuorumMember removes node from the members of quorum queue name of
// vhost vh.
func (r *Router) DeleteQuorumMember(vh, name string, node uint64) error {
	_, err := r.changeQuorumMembers(vh, name, func(cur []int32) ([]int32, error) {
		return withoutMember(cur, node)
	})
	return err
}

// withMember is cur with node added at the end.
func withMember(cur []int32, node uint64) ([]int32, error) {
	if slices.Contains(cur, int32(node)) {
		return nil, ErrAlreadyMember
	}
	return append(slices.Clone(cur), int32(node)), nil
}

// withoutMember is cur without node, which keeps one member at least.
func withoutMember(cur []int32, node uint64) ([]int32, error) {
	i := slices.Index(cur, int32(node))
	if i < 0 {
		return nil, ErrNotMember
	}
	if len(cur) <= 1 {
		return nil, ErrTooFewMembers
	}
	return slices.Delete(slices.Clone(cur), i, i+1), nil
}

// GrowQuorumQueues adds node to every quorum queue whose vhost and name
// match the patterns (nil matches all) and that does not have it, as
// rabbitmq-queues grow does: strategy "all" every such queue, "even" only
// those with an even number of members. Queues refused are in the results
// with their error.
func (r *Router) GrowQuorumQueues(node uint64, strategy string, vhosts, names *regexp.Regexp) ([]QuorumMemberResult, error) {
	if strategy != "all" && strategy != "even" {
		return nil, fmt.Errorf("%w: strategy %q (all or even)", ErrNotQuorumStrategy, strategy)
	}
	if !r.isNode(node) {
		return nil, fmt.Errorf("%w: no node %d", ErrNotFound, node)
	}
	var out []QuorumMemberResult
	for _, q := range r.quorumQueues(vhosts, names) {
		members, ok := r.quorumAssignment(q)
		if !ok || slices.Contains(members, int32(node)) || strategy == "even" && len(members)%2 != 0 {
			continue
		}
		size, err := r.changeQuorumMembers(q.Vhost, q.Name, func(cur []int32) ([]int32, error) {
			return withMember(cur, node)
		})
		out = append(out, QuorumMemberResult{Vhost: q.Vhost, Name: q.Name, Size: size, Err: err})
	}
	return out, nil
}

// ShrinkQuorumQueues removes node from every quorum queue it is a member
// of, as rabbitmq-queues shrink does; a queue whose last member it is
// is in the results with ErrTooFewMembers.
func (r *Router) ShrinkQuorumQueues(node uint64) []QuorumMemberResult {
	var out []QuorumMemberResult
	for _, q := range r.quorumQueues(nil, nil) {
		members, ok := r.quorumAssignment(q)
		if !ok || !slices.Contains(members, int32(node)) {
			continue
		}
		size, err := r.changeQuorumMembers(q.Vhost, q.Name, func(cur []int32) ([]int32, error) {
			return withoutMember(cur, node)
		})
		out = append(out, QuorumMemberResult{Vhost: q.Vhost, Name: q.Name, Size: size, Err: err})
	}
	return out
}

// quorumQueues lists the quorum queues whose vhost and name match,
// sorted.
func (r *Router) quorumQueues(vhosts, names *regexp.Regexp) []meta.Queue {
	var out []meta.Queue
	for _, v := range r.meta.Vhosts() {
		if vhosts != nil && !vhosts.MatchString(v.Name) {
			continue
		}
		for _, q := range r.meta.Queues(v.Name) {
			if q.Quorum && (names == nil || names.MatchString(q.Name)) {
				out = append(out, q)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vhost != out[j].Vhost {
			return out[i].Vhost < out[j].Vhost
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// quorumAssignment is the members of q's log as the metadata has them.
func (r *Router) quorumAssignment(q meta.Queue) ([]int32, bool) {
	mt, ok := r.opts.Topics.meta.Topic(quorumTopic(q.ID))
	if !ok || len(mt.Replicas) != 1 {
		return nil, false
	}
	return mt.Replicas[0], true
}

// isNode reports whether id is a registered node.
func (r *Router) isNode(id uint64) bool {
	for _, n := range r.meta.Nodes() {
		if n.ID == id {
			return true
		}
	}
	return false
}

// changeQuorumMembers records the move of quorum queue name's log to the
// members change makes of the current ones, and returns their number.
func (r *Router) changeQuorumMembers(vh, name string, change func(cur []int32) ([]int32, error)) (int, error) {
	q, ok := r.meta.Queue(vh, name)
	if !ok {
		return 0, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	if !q.Quorum {
		return 0, fmt.Errorf("%w: queue '%s' in vhost '%s'", ErrNotQuorumQueue, name, vh)
	}
	b := r.opts.Topics
	topic := quorumTopic(q.ID)
	mt, ok := b.meta.Topic(topic)
	if !ok || len(mt.Replicas) != 1 {
		return 0, fmt.Errorf("%w: the log of queue '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	cur := mt.Replicas[0]
	if _, moving := mt.Reassignments[0]; moving {
		return len(cur), ErrMembersMoving
	}
	target, err := change(cur)
	if err != nil {
		return len(cur), err
	}
	if err := b.checkAssignment([][]int32{target}, 1); err != nil {
		return len(cur), err
	}
	err = b.meta.ReassignPartitions(topic, mt.ID, []meta.PartitionTarget{{Partition: 0, Target: target}})
	if errors.Is(err, meta.ErrUnknownTopic) {
		err = fmt.Errorf("%w: the log of queue '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	if err != nil {
		return len(cur), metaErr(err)
	}
	return len(target), nil
}
