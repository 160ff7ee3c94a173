package meta

import (
	"cmp"
	"fmt"
	"slices"
)

// Placement: which node holds each partition of a topic in a cluster.
//
// The node that proposes a topic (or new partitions) chooses, from the
// registry of nodes as it sees it, and the command carries the choice:
// Apply only records it, so that every node applying the command gets
// the same assignment whatever its registry said at the time.
//
// Until partition data is replicated, each partition lives on exactly
// one node (replication factor 1). Partitions go round-robin over the
// registered nodes, starting at a node that varies per topic so that
// topics of few partitions do not all land on the lowest ids. When
// nodes have racks, the round goes through a rack-alternating order of
// the nodes (as Kafka's rack-aware assignment does): the first node of
// each rack, then the second of each, and so on, so that consecutive
// partitions sit in different racks and losing one rack loses the
// fewest consecutive partitions.

// PlacementOrder is the order in which Place deals partitions to nodes:
// by id, or rack-alternating when any node has a rack (racks in name
// order, nodes without one as a rack of their own named "").
func PlacementOrder(nodes []Node) []int32 {
	sorted := slices.SortedFunc(slices.Values(nodes), func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	racked := slices.ContainsFunc(sorted, func(n Node) bool { return n.Rack != "" })
	out := make([]int32, 0, len(sorted))
	if !racked {
		for _, n := range sorted {
			out = append(out, int32(n.ID))
		}
		return out
	}
	byRack := map[string][]int32{}
	var racks []string
	for _, n := range sorted {
		if _, ok := byRack[n.Rack]; !ok {
			racks = append(racks, n.Rack)
		}
		byRack[n.Rack] = append(byRack[n.Rack], int32(n.ID))
	}
	slices.Sort(racks)
	for i := 0; len(out) < len(sorted); i++ {
		for _, r := range racks {
			if ids := byRack[r]; i < len(ids) {
				out = append(out, ids[i])
			}
		}
	}
	return out
}

// Place assigns count partitions, numbered from first, one node each:
// partition p goes to order[(start+p) mod len(order)], where order is
// PlacementOrder(nodes). Nil when there are no nodes.
func Place(nodes []Node, first, count int32, start int) [][]int32 {
	order := PlacementOrder(nodes)
	if len(order) == 0 || count <= 0 {
		return nil
	}
	start %= len(order)
	if start < 0 {
		start += len(order)
	}
	out := make([][]int32, count)
	for i := range count {
		p := int(first + i)
		out[i] = []int32{order[(start+p)%len(order)]}
	}
	return out
}

// PlacementStart is the start Place must use to continue a placed
// topic's round-robin: where its partition 0 went (0 if that node is
// gone from nodes).
func PlacementStart(nodes []Node, replicas [][]int32) int {
	if len(replicas) == 0 || len(replicas[0]) == 0 {
		return 0
	}
	if i := slices.Index(PlacementOrder(nodes), replicas[0][0]); i >= 0 {
		return i
	}
	return 0
}

// checkReplicas refuses an assignment that does not give each of count
// partitions at least one node, a node twice, or an id that names no
// node.
func checkReplicas(cmd string, replicas [][]int32, count int32) error {
	if int64(len(replicas)) != int64(count) {
		return fmt.Errorf("%w: %s: %d replica lists for %d partitions", ErrInvalidCommand, cmd, len(replicas), count)
	}
	for p, rs := range replicas {
		if len(rs) == 0 {
			return fmt.Errorf("%w: %s: partition %d without a replica", ErrInvalidCommand, cmd, p)
		}
		for i, id := range rs {
			if id <= 0 {
				return fmt.Errorf("%w: %s: partition %d: replica %d", ErrInvalidCommand, cmd, p, id)
			}
			if slices.Contains(rs[:i], id) {
				return fmt.Errorf("%w: %s: partition %d: replica %d twice", ErrInvalidCommand, cmd, p, id)
			}
		}
	}
	return nil
}

func cloneReplicas(r [][]int32) [][]int32 {
	if r == nil {
		return nil
	}
	out := make([][]int32, len(r))
	for i, rs := range r {
		out[i] = slices.Clone(rs)
	}
	return out
}

// PartitionReplicas returns the nodes holding partition p of topic, nil
// for a topic without an assignment (a single node's, held by every
// node). ok is false for an unknown topic or partition. The slice is
// shared: the caller must not change it. It copies nothing, for the
// Kafka front end's leadership check on every produced partition.
func (s *Store) PartitionReplicas(topic string, p int32) (replicas []int32, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, found := s.state.topics[topic]
	if !found || p < 0 || p >= t.Partitions {
		return nil, false
	}
	if t.Replicas == nil {
		return nil, true
	}
	return t.Replicas[p], true
}
