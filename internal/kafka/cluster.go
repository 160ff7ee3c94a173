package kafka

// The cluster as Kafka clients see it: which brokers there are and where,
// which one is the controller, which coordinates a group or transactional
// id, and who holds each partition. The front end asks a Cluster for all
// of it (Options.Cluster) and never assumes it is alone.
//
// A server given no Cluster is a single node: SingleNode answers with
// this broker (NodeID) as the only broker, controller, coordinator and
// replica, at the address of the listener each client came through, as
// before clusters existed; and the produce and fetch paths skip their
// leadership check entirely, so a single node pays nothing for it.
//
// In a cluster (the Raft integration implements Cluster over the registry
// of nodes and the partitions' Raft groups), Raft leaders are partition
// leaders, in-sync followers the ISR and terms leader epochs. A client
// is told each other broker's address for the kind of listener it came
// through (plain or TLS), and this broker's as the listener it reached;
// a broker without such a listener is left out, as Kafka leaves out a
// broker without the client's listener name.

import (
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster answers the front end's questions about the cluster. Its
// methods are called on every Metadata, DescribeCluster and
// FindCoordinator request, and (when it is not SingleNode) for every
// partition of every Produce and Fetch: they must be cheap and safe for
// concurrent use.
type Cluster interface {
	// Self is this broker's id.
	Self() int32
	// Brokers lists the live brokers, this one included, by id.
	Brokers() []Broker
	// Controller is the id of the broker told to clients as the
	// controller; -1 for none.
	Controller() int32
	// Coordinator is the broker that coordinates key (FindCoordinator's
	// key type: 0 group, 1 transactional id, 2 share-group state); -1
	// when none is available.
	Coordinator(keyType int8, key string) int32
	// Partition tells who holds partition p of topic (an existing
	// partition).
	Partition(topic string, p int32) Replicas
}

// Broker is one broker of the cluster.
type Broker struct {
	ID int32
	// Rack is its broker.rack; "" for none.
	Rack string
	// Addr and TLSAddr are its advertised Kafka listeners, host:port;
	// "" when it has no such listener.
	Addr, TLSAddr string
}

// Replicas is who holds a partition.
type Replicas struct {
	// Leader is the broker that takes its produces; -1 for none.
	Leader int32
	// LeaderEpoch is the leader's epoch (its Raft term).
	LeaderEpoch int32
	// Replicas are the brokers holding a replica, the leader first;
	// ISR those in sync with the leader; Offline those among Replicas
	// that are down.
	Replicas, ISR, Offline []int32
}

// SingleNode is the Cluster of a server that is not part of one: this
// broker, NodeID, alone, leading every partition at leader epoch 0.
type SingleNode struct {
	// Rack is the broker's rack told to clients; "" for none (as
	// before racks existed).
	Rack string
}

// Self is NodeID.
func (SingleNode) Self() int32 { return NodeID }

// Brokers is this broker alone; its address is the listener's each
// client came through.
func (s SingleNode) Brokers() []Broker { return []Broker{{ID: NodeID, Rack: s.Rack}} }

// Controller is this broker.
func (SingleNode) Controller() int32 { return NodeID }

// Coordinator is this broker for every key.
func (SingleNode) Coordinator(int8, string) int32 { return NodeID }

// Partition is led by this broker, its only replica.
func (SingleNode) Partition(string, int32) Replicas {
	return Replicas{Leader: NodeID, Replicas: []int32{NodeID}, ISR: []int32{NodeID}}
}

// Key types of FindCoordinator (and of Cluster.Coordinator).
const (
	coordinatorGroup int8 = 0
	coordinatorTxn   int8 = 1
)

// coordinates reports whether this broker coordinates key of keyType.
// A single node coordinates everything and asks nothing, as the produce
// path skips its leadership check; in a cluster the group and
// transaction APIs answer NOT_COORDINATOR for a key coordinated
// elsewhere, so that the client asks FindCoordinator again.
func (c *conn) coordinates(keyType int8, key string) bool {
	return c.s.single || c.s.cluster.Coordinator(keyType, key) == c.s.self
}

// endpoint is a broker as told to one client.
type endpoint struct {
	id   int32
	host string
	port int32
	rack *string
}

// brokers lists the brokers as the connection's client must reach them:
// this one at the listener it came through, the others at their
// listener of the same kind, those without one left out.
func (c *conn) brokers() []endpoint {
	bs := c.s.cluster.Brokers()
	out := make([]endpoint, 0, len(bs))
	for i := range bs {
		if e, ok := c.endpointOf(&bs[i]); ok {
			out = append(out, e)
		}
	}
	return out
}

// endpoint returns broker id as the client must reach it; false if it is
// not a live broker with a listener of the client's kind.
func (c *conn) endpoint(id int32) (endpoint, bool) {
	if id < 0 {
		return endpoint{}, false
	}
	bs := c.s.cluster.Brokers()
	for i := range bs {
		if bs[i].ID == id {
			return c.endpointOf(&bs[i])
		}
	}
	return endpoint{}, false
}

func (c *conn) endpointOf(b *Broker) (endpoint, bool) {
	e := endpoint{id: b.ID}
	if b.Rack != "" {
		e.rack = &b.Rack
	}
	if b.ID == c.s.self {
		e.host, e.port = c.advertised()
		return e, true
	}
	addr := b.Addr
	if c.overTLS {
		addr = b.TLSAddr
	}
	host, port, ok := splitHostPort(addr)
	e.host, e.port = host, port
	return e, ok
}

// splitHostPort parses an advertised host:port; false for "" or garbage
// (such a broker cannot be told to clients).
func splitHostPort(addr string) (string, int32, bool) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", 0, false
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return host, int32(port), true
}

// produceNotLeader fills sp for a partition this broker does not lead:
// NOT_LEADER_OR_FOLLOWER, and from v10 (KIP-951) the current leader, whose
// endpoint it adds to resp.Brokers once, so the client can go there
// without a Metadata round trip.
func (c *conn) produceNotLeader(resp *kmsg.ProduceResponse, sp *kmsg.ProduceResponseTopicPartition, r Replicas) {
	sp.ErrorCode = kerr.NotLeaderForPartition.Code
	if resp.Version < 10 || r.Leader < 0 {
		return
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = r.Leader, r.LeaderEpoch
	for _, b := range resp.Brokers {
		if b.NodeID == r.Leader {
			return
		}
	}
	if e, ok := c.endpoint(r.Leader); ok {
		b := kmsg.NewProduceResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = e.id, e.host, e.port, e.rack
		resp.Brokers = append(resp.Brokers, b)
	}
}

// fetchLeader is NOT_LEADER_OR_FOLLOWER, with the current leader in sp
// from v12 (KIP-951), for a partition this broker does not lead; else 0.
func (c *conn) fetchLeader(topic string, p int32, version int16, sp *kmsg.FetchResponseTopicPartition) int16 {
	r := c.s.cluster.Partition(topic, p)
	if r.Leader == c.s.self {
		return 0
	}
	if version >= 12 && r.Leader >= 0 {
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = r.Leader, r.LeaderEpoch
	}
	return kerr.NotLeaderForPartition.Code
}

// fetchLeaderEndpoints adds to resp (v16+, KIP-951's NodeEndpoints) the
// endpoint of every current leader a partition of it names, once each.
func (c *conn) fetchLeaderEndpoints(resp *kmsg.FetchResponse) {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			id := p.CurrentLeader.LeaderID
			if p.ErrorCode != kerr.NotLeaderForPartition.Code || id < 0 ||
				slices.ContainsFunc(resp.Brokers, func(b kmsg.FetchResponseBroker) bool { return b.NodeID == id }) {
				continue
			}
			if e, ok := c.endpoint(id); ok {
				b := kmsg.NewFetchResponseBroker()
				b.NodeID, b.Host, b.Port, b.Rack = e.id, e.host, e.port, e.rack
				resp.Brokers = append(resp.Brokers, b)
			}
		}
	}
}
