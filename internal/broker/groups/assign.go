package groups

import (
	"cmp"
	"slices"
)

// The server-side assignors of the consumer group protocol (KIP-848). An
// assignor maps every partition of the topics the members subscribe to onto
// one subscribed member; it is a pure function of the members'
// subscriptions, the topics' partition counts and (for stickiness) the
// previous target assignment.

// Assignor names a member may ask for in ServerAssignor.
const (
	AssignorUniform = "uniform" // the default, as in Kafka
	AssignorRange   = "range"
)

// knownAssignor reports whether name is a server-side assignor Sluice has.
func knownAssignor(name string) bool { return name == AssignorUniform || name == AssignorRange }

// tp is one partition of a topic, by topic id.
type tp struct {
	topic TopicID
	part  int32
}

func compareTP(a, b tp) int {
	if c := slices.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.part, b.part)
}

// tpSet is a set of partitions.
type tpSet map[tp]struct{}

func (s tpSet) sorted() []tp {
	out := make([]tp, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	slices.SortFunc(out, compareTP)
	return out
}

func (s tpSet) clone() tpSet {
	out := make(tpSet, len(s))
	for p := range s {
		out[p] = struct{}{}
	}
	return out
}

func (s tpSet) equal(o tpSet) bool {
	if len(s) != len(o) {
		return false
	}
	for p := range s {
		if _, ok := o[p]; !ok {
			return false
		}
	}
	return true
}

// assignSpec is an assignor's input. Members are in a stable order (by
// member id); subs[i] is the set of topics member i subscribes to (only
// topics that exist); partitions gives each subscribed topic's partition
// count; prev is the previous target assignment by member id.
type assignSpec struct {
	members    []string
	subs       []map[TopicID]bool
	partitions map[TopicID]int32
	prev       map[string]tpSet
}

// assign runs the named assignor (an unknown name runs uniform).
func assign(name string, s assignSpec) map[string]tpSet {
	if name == AssignorRange {
		return assignRange(s)
	}
	return assignUniform(s)
}

// assignRange is Kafka's range assignor run on the server: for each topic,
// its subscribers (in member id order) get contiguous ranges of partitions,
// the first (partitions mod subscribers) one more than the others. Members
// subscribed to the same co-partitioned topics so get the same partition
// numbers of each.
func assignRange(s assignSpec) map[string]tpSet {
	out := make(map[string]tpSet, len(s.members))
	for _, m := range s.members {
		out[m] = tpSet{}
	}
	for _, t := range sortedTopics(s.partitions) {
		var subs []string
		for i, m := range s.members {
			if s.subs[i][t] {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := s.partitions[t]
		per, extra := n/int32(len(subs)), n%int32(len(subs))
		next := int32(0)
		for i, m := range subs {
			k := per
			if int32(i) < extra {
				k++
			}
			for p := next; p < next+k; p++ {
				out[m][tp{t, p}] = struct{}{}
			}
			next += k
		}
	}
	return out
}

// assignUniform spreads the partitions as evenly as the subscriptions allow
// while moving as few as possible from the previous target assignment
// (Kafka's uniform assignor has the same two goals). Partitions keep their
// previous owner while it still subscribes to the topic; the others go, one
// at a time in partition order, to the least loaded subscribed member; then
// partitions move from a member to a less loaded subscriber of their topic
// while that narrows the gap by more than one, so that in the end no
// partition could move to a member with two fewer partitions than its
// owner. With identical subscriptions every member ends with ⌊P/M⌋ or
// ⌈P/M⌉ partitions.
func assignUniform(s assignSpec) map[string]tpSet {
	idx := make(map[string]int, len(s.members))
	out := make(map[string]tpSet, len(s.members))
	load := make([]int, len(s.members))
	for i, m := range s.members {
		idx[m] = i
		out[m] = tpSet{}
	}
	owner := make(map[tp]int)
	var all []tp
	for _, t := range sortedTopics(s.partitions) {
		for p := int32(0); p < s.partitions[t]; p++ {
			all = append(all, tp{t, p})
		}
	}
	for _, m := range s.members {
		i := idx[m]
		for _, p := range s.prev[m].sorted() {
			if p.part < s.partitions[p.topic] && s.subs[i][p.topic] {
				owner[p] = i
				load[i]++
			}
		}
	}
	// least returns the least loaded subscriber of topic t, lowest index on
	// ties; -1 if nobody subscribes.
	least := func(t TopicID) int {
		best := -1
		for i := range s.members {
			if s.subs[i][t] && (best < 0 || load[i] < load[best]) {
				best = i
			}
		}
		return best
	}
	for _, p := range all {
		if _, ok := owner[p]; ok {
			continue
		}
		if i := least(p.topic); i >= 0 {
			owner[p] = i
			load[i]++
		}
	}
	// Balance. Each move lowers the sum of squared loads, so this ends.
	for moved := true; moved; {
		moved = false
		for _, p := range all {
			o, ok := owner[p]
			if !ok {
				continue
			}
			if i := least(p.topic); i >= 0 && load[i]+1 < load[o] {
				owner[p] = i
				load[o]--
				load[i]++
				moved = true
			}
		}
	}
	for p, i := range owner {
		out[s.members[i]][p] = struct{}{}
	}
	return out
}

func sortedTopics(m map[TopicID]int32) []TopicID {
	out := make([]TopicID, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b TopicID) int { return slices.Compare(a[:], b[:]) })
	return out
}
