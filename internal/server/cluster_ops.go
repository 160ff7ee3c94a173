package server

import "github.com/sluice-mq/sluice/internal/mgmt"

// What the management API shows operators of a cluster's partitions
// (/api/cluster/partitions, the counts in /api/nodes): each placed
// topic's partitions as the Kafka view of this node tells clients.

// clusterPartitionsFunc is mgmt's ClusterPartitions: nil on a single node.
func (s *Server) clusterPartitionsFunc() func() []mgmt.PartitionState {
	if s.cluster == nil {
		return nil
	}
	return s.clusterPartitions
}

// clusterPartitions lists every partition of every placed topic with its
// leader, replicas, ISR and offline replicas as ClusterView.Partition
// says. A topic without a placement (made by a single node before it
// joined a cluster) is held by every node and left out: no node can lose
// it.
func (s *Server) clusterPartitions() []mgmt.PartitionState {
	v := s.cluster.view.Load()
	if v == nil || s.meta == nil {
		return nil
	}
	var out []mgmt.PartitionState
	for _, t := range s.meta.Topics() {
		if t.Replicas == nil {
			continue
		}
		for p := range t.Partitions {
			r := v.Partition(t.Name, p)
			out = append(out, mgmt.PartitionState{Topic: t.Name, Partition: p, Leader: r.Leader,
				Replicas: r.Replicas, ISR: r.ISR, Offline: r.Offline})
		}
	}
	return out
}
