package mgmt

import (
	"cmp"
	"net/http"
	"slices"
)

// The health of a cluster's partitions: /api/cluster/partitions lists the
// under-replicated and offline ones, and /api/nodes counts, per node, the
// partitions it leads and those it holds a replica of. Both come from
// what this node knows (Options.ClusterPartitions, the view its Kafka
// front end tells clients): the leader of a partition replicated here is
// its Raft group's leader, and its ISR is exact on the node that leads
// it; elsewhere the ISR is the replicas this node reaches. Asking the
// controller, or each partition's leader, gives the authoritative answer;
// any node gives a close one.

// PartitionState is one partition of a placed topic as this node sees it.
type PartitionState struct {
	Topic     string
	Partition int32
	// Leader is the node leading it; -1 for none (offline).
	Leader int32
	// Replicas are the nodes it is placed on, ISR those in sync, Offline
	// those this node does not reach.
	Replicas, ISR, Offline []int32
}

// underReplicated: it has a leader but fewer replicas in sync than
// placed, as Kafka's UnderReplicatedPartitions counts.
func (p PartitionState) underReplicated() bool {
	return p.Leader >= 0 && len(p.ISR) < len(p.Replicas)
}

// partitionStateJSON is a partition in /api/cluster/partitions.
func partitionStateJSON(p PartitionState) map[string]any {
	ids := func(s []int32) []int32 {
		if s == nil {
			return []int32{}
		}
		return s
	}
	return map[string]any{
		"topic": p.Topic, "partition": p.Partition, "leader": p.Leader,
		"replicas": ids(p.Replicas), "isr": ids(p.ISR), "offline_replicas": ids(p.Offline),
	}
}

// clusterPartitionStates is every placed partition, by topic and
// partition; nil on a single node.
func (a *API) clusterPartitionStates() []PartitionState {
	if a.opts.ClusterPartitions == nil {
		return nil
	}
	ps := a.opts.ClusterPartitions()
	slices.SortFunc(ps, func(x, y PartitionState) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return ps
}

// partitionCounts is, per node id, the partitions it leads and those it
// holds a replica of.
func partitionCounts(ps []PartitionState) (leaders, replicas map[int32]int) {
	leaders, replicas = map[int32]int{}, map[int32]int{}
	for _, p := range ps {
		if p.Leader >= 0 {
			leaders[p.Leader]++
		}
		for _, r := range p.Replicas {
			replicas[r]++
		}
	}
	return leaders, replicas
}

// singleNodePartitions counts a single node's partitions: it leads and
// holds every partition of every topic.
func (a *API) singleNodePartitions() int {
	n := 0
	for _, t := range a.opts.Meta.Topics() {
		n += int(t.Partitions)
	}
	return n
}

// clusterPartitions serves /api/cluster/partitions: how many partitions
// there are, and the under-replicated and offline ones in full. A single
// node has none of either.
func (a *API) clusterPartitions(r *http.Request, s *session) (any, error) {
	under, offline := []map[string]any{}, []map[string]any{}
	if a.opts.ClusterPartitions == nil {
		return map[string]any{"node": a.opts.NodeName, "partitions": a.singleNodePartitions(),
			"under_replicated": under, "offline": offline}, nil
	}
	ps := a.clusterPartitionStates()
	for _, p := range ps {
		switch {
		case p.Leader < 0:
			offline = append(offline, partitionStateJSON(p))
		case p.underReplicated():
			under = append(under, partitionStateJSON(p))
		}
	}
	return map[string]any{"node": a.opts.NodeName, "partitions": len(ps), "under_replicated": under, "offline": offline}, nil
}
