package server

import (
	"hash/fnv"
	"math"
	"slices"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/kafka"
	"github.com/sluice-mq/sluice/internal/meta"
)

// ClusterView is the cluster as the Kafka front end of one node sees it
// (kafka.Cluster), made from the metadata: the registry of nodes
// (meta.Nodes) and each partition's placement (meta.Topic.Replicas).
//
// A partition of one replica lives on one node, which leads it at leader
// epoch 0 while it is alive; when that node is down the partition has no
// leader (Leader -1, its replica Offline) and clients wait for it to come
// back: nothing else holds its data. A partition replicated on this node
// through a Raft group (broker/replica.go) is described from the group
// instead: its Raft leader, term and ISR (replicated).
//
// A group's or transactional id's coordinator is chosen among the live
// registered nodes: the FNV-1a hash of the key modulo their count picks
// one from the ids in ascending order. Every node computes the same
// answer from the same registry and liveness, with no metadata write;
// the price is that a key moves when the set of live nodes changes, and
// its group state (kept in memory by the coordinator) starts afresh
// there, as after a coordinator failover in Kafka. Committed offsets
// are in the metadata and survive the move.
type ClusterView struct {
	self       int32
	meta       *meta.Store
	controller func() int32
	alive      func(id uint64) bool
	// replicas, when set, tells what this node knows of a replicated
	// partition's Raft group (broker.Broker.ReplicaState): its leader,
	// term and, on the leader, the ISR.
	replicas func(topic string, p int32) (broker.ReplicaState, bool)
}

var _ kafka.Cluster = (*ClusterView)(nil)

// NewClusterView returns node self's view over m. controller returns the
// broker told to clients as the controller (the metadata group's Raft
// leader; -1 for none); nil: -1. alive reports whether a node is up (the
// transport's or Raft's view); nil: every registered node is. This node
// is always alive to itself.
func NewClusterView(self uint64, m *meta.Store, controller func() int32, alive func(id uint64) bool) *ClusterView {
	return &ClusterView{self: int32(self), meta: m, controller: controller, alive: alive}
}

// kafkaCluster is the Kafka front end's view of the cluster: a
// ClusterView over the registry, with the metadata group's leader as the
// controller and the transport's reachability as liveness; on a single
// node, SingleNode as before.
func (s *Server) kafkaCluster() kafka.Cluster {
	c := s.cluster
	if c == nil {
		return kafka.SingleNode{Rack: s.cfg.Rack}
	}
	v := NewClusterView(c.cfg.NodeID, s.meta, func() int32 {
		if l := s.metaLeader(); l != 0 {
			return int32(l)
		}
		return -1
	}, c.tr.Reachable)
	v.replicas = s.broker.ReplicaState
	c.view.Store(v)
	return v
}

// Self is this node's id.
func (v *ClusterView) Self() int32 { return v.self }

func (v *ClusterView) isAlive(id uint64) bool {
	return int32(id) == v.self || v.alive == nil || v.alive(id)
}

// Brokers lists the live registered nodes, by id, at their advertised
// Kafka addresses and racks.
func (v *ClusterView) Brokers() []kafka.Broker {
	nodes := v.meta.Nodes()
	out := make([]kafka.Broker, 0, len(nodes))
	for _, n := range nodes {
		if v.isAlive(n.ID) {
			out = append(out, kafka.Broker{ID: int32(n.ID), Rack: n.Rack, Addr: n.KafkaAddr, TLSAddr: n.KafkaTLSAddr})
		}
	}
	return out
}

// Controller is what the controller func says, -1 without one.
func (v *ClusterView) Controller() int32 {
	if v.controller == nil {
		return -1
	}
	return v.controller()
}

// Coordinator is the live registered node the key hashes to (see
// ClusterView); -1 when none is live. The key type does not matter: a
// group and a transactional id of the same name share a coordinator.
func (v *ClusterView) Coordinator(_ int8, key string) int32 {
	nodes := v.meta.Nodes() // by id
	live := nodes[:0]
	for _, n := range nodes {
		if v.isAlive(n.ID) {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return -1
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(live[h.Sum32()%uint32(len(live))].ID)
}

// Partition is led by the node it is placed on while that node is alive;
// otherwise it has no leader and its replica is offline. A topic without
// a placement (one a single node made before it joined a cluster) is
// held by every node, so this one leads it; so is a topic the metadata
// does not define, which only this node's broker can be showing: an
// internal topic such as __consumer_offsets, a view of this node's own
// stores. A partition past a defined topic's count has no leader. One
// replicated here through Raft, even a group of one voter, is described by
// its group (replicated); one replicated elsewhere by the leader and epoch
// its group's leader recorded in the metadata, while that node is a live
// replica.
func (v *ClusterView) Partition(topic string, p int32) kafka.Replicas {
	rs, ok := v.meta.PartitionReplicas(topic, p)
	if !ok {
		if _, defined := v.meta.Topic(topic); defined {
			return kafka.Replicas{Leader: -1}
		}
	}
	if rs == nil {
		return kafka.Replicas{Leader: v.self, Replicas: []int32{v.self}, ISR: []int32{v.self}}
	}
	if v.replicas != nil { // a Raft group here, even of one voter
		if st, ok := v.replicas(topic, p); ok {
			return v.replicated(rs, st)
		}
	}
	out := kafka.Replicas{Leader: -1, Replicas: append([]int32(nil), rs...)}
	for _, id := range rs {
		if v.isAlive(uint64(id)) {
			out.ISR = append(out.ISR, id)
			if out.Leader < 0 {
				out.Leader = id
			}
		} else {
			out.Offline = append(out.Offline, id)
		}
	}
	// Replicated elsewhere: the leader its group's leader recorded, while
	// it is a live replica (meta/leaders.go); else the guess above.
	if l, ok := v.meta.PartitionLeader(topic, p); ok && slices.Contains(rs, l.Leader) && v.isAlive(uint64(l.Leader)) {
		out.Leader, out.LeaderEpoch = l.Leader, l.Epoch
	}
	if out.ISR == nil {
		out.ISR = []int32{}
	}
	return out
}

// replicated is Partition for a partition replicated here through Raft:
// led by its group's leader as this node knows it (-1 during an
// election), at its term as leader epoch; the ISR is the leader's (its
// followers' progress, replica.lag.time.max.ms), and on a follower, which
// cannot know it, the replicas that are reachable; Offline, the replicas
// that are not.
func (v *ClusterView) replicated(rs []int32, st broker.ReplicaState) kafka.Replicas {
	out := kafka.Replicas{Leader: -1, LeaderEpoch: int32(min(st.Term, math.MaxInt32)), Replicas: append([]int32(nil), rs...), ISR: st.ISR}
	if st.Leader != 0 {
		out.Leader = int32(st.Leader)
	}
	follower := st.ISR == nil
	for _, id := range rs {
		if !v.isAlive(uint64(id)) {
			out.Offline = append(out.Offline, id)
		} else if follower {
			out.ISR = append(out.ISR, id)
		}
	}
	if out.ISR == nil {
		out.ISR = []int32{}
	}
	return out
}
