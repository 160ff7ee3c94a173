// Package cluster holds what every part of a Sluice cluster agrees on: how
// nodes and Raft groups are named, a node's cluster settings, and the
// interface between the Raft groups and the node-to-node transport.
//
// A cluster replicates with Raft on go.etcd.io/raft/v3, used as a library:
// its RawNode (Step / Ready / Advance), our storage, our transport. Many
// Raft groups run on every node (multi-Raft):
//
//   - group [MetaGroup] replicates the metadata command log (internal/meta):
//     topics, users, ACLs, exchanges, queues, the nodes of the cluster;
//   - one group per replicated partition (and, later, per quorum queue),
//     whose Raft log is its segment log.
//
// In every group a replica's Raft ID is its node's [NodeID], so a message's
// From and To name nodes directly. All groups between two nodes share one
// transport connection; messages are batched per Ready round and
// heartbeats coalesced per node pair.
//
// The pieces, each in its own package:
//
//	cluster/transport  node-to-node connections: handshake (cluster id,
//	                   node id, secret or mutual TLS), framing, batching,
//	                   coalesced heartbeats, fault injection for tests
//	cluster/multiraft  the host of many RawNodes on one node: ticking,
//	                   Ready handling, persistence before send, proposals
//	                   and their results, leadership and membership
//
// A server started without cluster settings (Config.Enabled false) uses
// none of this and behaves as a single node.
package cluster

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
)

// NodeID names a node. It is also the node's Kafka broker id and its
// replica id in every Raft group. 0 is not a node.
type NodeID = uint64

// GroupID names a Raft group. 0 is not a group.
type GroupID = uint64

// MetaGroup is the metadata group, present on every node.
const MetaGroup GroupID = 1

// RPCGroup is not a Raft group: envelopes addressed to it carry calls
// between nodes (package rpc) over the Raft transport's connections.
const RPCGroup GroupID = 2

// Config is one node's cluster settings (flags --node-id, --cluster-addr,
// --cluster-peers, --cluster-id, --cluster-secret-file, --rack; the same
// as env and config-file keys).
type Config struct {
	// NodeID is this node's id, one of Peers' keys.
	NodeID NodeID
	// Addr is the host:port this node listens on for other nodes.
	// Default: its own entry in Peers.
	Addr string
	// Peers is every voting node of the initial cluster, this one
	// included, with its cluster address. It seeds the metadata group
	// the first time a node starts; afterwards membership lives in the
	// metadata group and changes through Raft configuration changes.
	Peers map[NodeID]string
	// ClusterID names the cluster; a node with another id is refused.
	ClusterID string
	// Secret, when set, authenticates nodes to each other (each proves
	// it holds it without sending it). With TLS client certificates the
	// certificate is checked too.
	Secret []byte
	// ServerTLS and ClientTLS, when set, carry node-to-node traffic over
	// TLS (the certificates of the security settings).
	ServerTLS, ClientTLS *tls.Config
	// Rack is this node's rack (Kafka broker.rack), used to spread
	// replicas.
	Rack string
	// Join: this node joins a running cluster (--cluster-join): it does
	// not bootstrap the metadata group from Peers but waits for a member
	// to add it; Peers then only tell it where some members are.
	Join bool
}

// Enabled reports whether cluster settings were given.
func (c Config) Enabled() bool { return c.NodeID != 0 }

// ParsePeers parses "1=host:port,2=host:port,...".
func ParsePeers(s string) (map[NodeID]string, error) {
	peers := make(map[NodeID]string)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("cluster peer %q: want id=host:port", part)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(id), 10, 31)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("cluster peer %q: node id must be a number from 1 to 2^31-1", part)
		}
		if _, dup := peers[n]; dup {
			return nil, fmt.Errorf("cluster peer %q: node %d given twice", part, n)
		}
		peers[n] = strings.TrimSpace(addr)
	}
	return peers, nil
}

// FormatPeers is the inverse of ParsePeers, in node id order.
func FormatPeers(peers map[NodeID]string) string {
	ids := make([]NodeID, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d=%s", id, peers[id])
	}
	return strings.Join(parts, ",")
}

// Validate checks a config that is Enabled.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.NodeID > 1<<31-1 {
		return fmt.Errorf("node id %d: at most 2^31-1 (it is the Kafka broker id)", c.NodeID)
	}
	if len(c.Peers) == 0 {
		return fmt.Errorf("node id set but no cluster peers")
	}
	if _, ok := c.Peers[c.NodeID]; !ok {
		return fmt.Errorf("node id %d is not among the cluster peers", c.NodeID)
	}
	if c.ClusterID == "" {
		return fmt.Errorf("a cluster id is required")
	}
	return nil
}

// Envelope is one Raft message of one group.
type Envelope struct {
	Group GroupID
	Msg   raftpb.Message
}

// Transport carries Raft messages between nodes. Implementations keep one
// connection per peer node for all groups.
type Transport interface {
	// Send queues envs for node to, in order, without blocking on the
	// network. Messages to an unreachable node are dropped (Raft
	// retries); the host learns of it from Reachable.
	Send(to NodeID, envs []Envelope)
	// SetHandler sets the function called with every batch received,
	// from one goroutine per peer, in the order the peer sent them. It
	// must be called before Start.
	SetHandler(func(from NodeID, envs []Envelope))
	// Reachable reports whether a connection to the node is up (a
	// handshake completed and it has not failed since).
	Reachable(to NodeID) bool
	// Start listens and dials peers.
	Start() error
	// Close stops listening and closes every connection.
	Close() error
}
