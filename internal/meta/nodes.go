package meta

import (
	"fmt"
	"maps"
	"slices"
)

// The registry of nodes: every node of a cluster registers itself in the
// metadata, with the addresses its clients and the other nodes reach it
// at, so that any node can tell a Kafka client where every broker is (and
// which one leads a partition), and the management API can list the
// cluster. A node registers when it starts, once the metadata group has
// a leader; registering again with the same addresses writes nothing, so
// a restart that changed nothing costs no log entry, and one that changed
// an address replaces the entry.
//
// A single node (no cluster settings) does not register: it is not a
// node of a cluster (its metadata node id would be 0, which names no
// node), and a registration would be a log write on every first start
// and a "nodes" list in every snapshot of a server that never needs one.
// The Kafka and management views of a single node are made from its
// settings instead, exactly as before the registry existed.

// MaxNodeID is the largest node id: a node id is also a Kafka broker id,
// an int32.
const MaxNodeID = 1<<31 - 1

// Node is one node of the cluster as registered. Addresses are host:port
// as clients should use them (advertised, never an unspecified host);
// empty when the node has no such listener.
type Node struct {
	// ID is the node's id (cluster.NodeID), from 1 to MaxNodeID: its
	// Kafka broker id and its replica id in every Raft group.
	ID uint64 `json:"id"`
	// Rack is the node's rack (Kafka broker.rack); "" for none.
	Rack string `json:"rack,omitempty"`
	// ClusterAddr is where the other nodes reach it.
	ClusterAddr string `json:"cluster_addr"`
	// KafkaAddr and KafkaTLSAddr are its Kafka listeners' advertised
	// addresses, plain and TLS.
	KafkaAddr    string `json:"kafka_addr,omitempty"`
	KafkaTLSAddr string `json:"kafka_tls_addr,omitempty"`
	// AMQPAddr and AMQPSAddr are its AMQP 0-9-1 listeners, plain and TLS.
	AMQPAddr  string `json:"amqp_addr,omitempty"`
	AMQPSAddr string `json:"amqps_addr,omitempty"`
	// HTTPAddr and HTTPSAddr serve its management API.
	HTTPAddr  string `json:"http_addr,omitempty"`
	HTTPSAddr string `json:"https_addr,omitempty"`
}

// RegisterNodeCmd adds a node to the registry or replaces its entry.
type RegisterNodeCmd Node

func (c *RegisterNodeCmd) validate() error {
	if c.ID == 0 || c.ID > MaxNodeID {
		return fmt.Errorf("%w: register_node: node id %d: want 1 to %d", ErrInvalidCommand, c.ID, MaxNodeID)
	}
	if c.ClusterAddr == "" {
		return fmt.Errorf("%w: register_node: node %d without a cluster address", ErrInvalidCommand, c.ID)
	}
	return validUTF8(c.Rack, c.ClusterAddr, c.KafkaAddr, c.KafkaTLSAddr, c.AMQPAddr, c.AMQPSAddr, c.HTTPAddr, c.HTTPSAddr)
}

func (c *RegisterNodeCmd) check(*State) error { return c.validate() }

func (c *RegisterNodeCmd) apply(st *State) Result {
	if st.nodes == nil {
		st.nodes = make(map[uint64]Node)
	}
	st.nodes[c.ID] = Node(*c)
	return Result{}
}

// UnregisterNodeCmd removes a node from the registry: the last step of
// removing a node from the cluster, once it is no longer a member of the
// metadata group. Removing a node that is not registered changes nothing.
type UnregisterNodeCmd struct {
	ID uint64 `json:"id"`
}

func (c *UnregisterNodeCmd) check(*State) error {
	if c.ID == 0 || c.ID > MaxNodeID {
		return fmt.Errorf("%w: unregister_node: node id %d: want 1 to %d", ErrInvalidCommand, c.ID, MaxNodeID)
	}
	return nil
}

func (c *UnregisterNodeCmd) apply(st *State) Result {
	delete(st.nodes, c.ID)
	return Result{}
}

// Nodes returns the registered nodes, by id.
func (st *State) Nodes() []Node {
	out := make([]Node, 0, len(st.nodes))
	for _, id := range slices.Sorted(maps.Keys(st.nodes)) {
		out = append(out, st.nodes[id])
	}
	return out
}

// loadNodes adds the snapshot's nodes to st, refusing what no sequence of
// commands could have produced.
func (st *State) loadNodes(nodes []Node) error {
	for i := range nodes {
		c := (*RegisterNodeCmd)(&nodes[i])
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: node: %w", err)
		}
		if _, dup := st.nodes[c.ID]; dup {
			return fmt.Errorf("meta: state: duplicate node %d", c.ID)
		}
		c.apply(st)
	}
	return nil
}

// RegisterNode adds n to the registry or replaces its entry; an identical
// registration writes nothing.
func (s *Store) RegisterNode(n Node) error {
	return s.proposeUnlessNoop(NewCommand((*RegisterNodeCmd)(&n)), func(st *State) bool {
		old, ok := st.nodes[n.ID]
		return ok && old == n
	})
}

// UnregisterNode removes node id from the registry; a node that is not
// registered writes nothing.
func (s *Store) UnregisterNode(id uint64) error {
	return s.proposeUnlessNoop(NewCommand(&UnregisterNodeCmd{ID: id}), func(st *State) bool {
		_, ok := st.nodes[id]
		return !ok
	})
}

// Nodes returns the registered nodes, by id (none on a single node).
func (s *Store) Nodes() []Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Nodes()
}

// Node returns the registered node id.
func (s *Store) Node(id uint64) (Node, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.state.nodes[id]
	return n, ok
}
