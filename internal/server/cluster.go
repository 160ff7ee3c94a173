package server

// A server started with cluster settings (node_id) is one node of a
// cluster: it runs the node-to-node transport and a multi-Raft host, and
// its metadata store is this node's replica of the metadata group
// (meta.OpenCluster), so topics, users, permissions, ACLs and the
// registry of nodes are the same on every node. See docs/clustering.md.

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/cluster/rpc"
	"github.com/sluice-mq/sluice/internal/cluster/transport"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/metrics"
	"github.com/sluice-mq/sluice/internal/mgmt"
)

// clusterStartTimeout bounds how long a starting node waits for the
// metadata group to have a leader and for its own replica to catch up:
// a node needs a majority of the metadata group's voters to start.
const clusterStartTimeout = 60 * time.Second

// clusterNode is the cluster side of a Server; nil on a single node.
type clusterNode struct {
	cfg     cluster.Config
	tr      *transport.Transport
	host    *multiraft.Host
	rpc     *rpc.Mux
	metrics *metrics.ClusterHooks
	// view is the Kafka view of the cluster, once made (kafkaCluster).
	view atomic.Pointer[ClusterView]
	// peers: the registry's addresses given to tr (membership.go).
	peers peerSync
	// startSig receives SIGINT and SIGTERM until the metadata group is
	// reached (openClusterMeta).
	startSig chan os.Signal
}

// forwarder is what carries messages to queues on other nodes; nil on a
// single node.
func (s *Server) forwarder() *rpc.Mux {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.rpc
}

// openCluster starts the transport and the Raft host.
func (s *Server) openCluster() error {
	cc, err := s.cfg.Cluster(s.log)
	if err != nil {
		return err
	}
	tr, err := transport.New(cc, transport.Options{Logger: s.log})
	if err != nil {
		return fmt.Errorf("cluster transport: %w", err)
	}
	// Calls between nodes (forwarded publishes) share the transport's
	// connections with Raft; the mux takes them out before the host.
	mux := rpc.New(tr)
	host := multiraft.New(multiraft.Options{
		NodeID: cc.NodeID, Transport: mux, Logger: s.log,
		OnLeaderChange: func(g cluster.GroupID, leader cluster.NodeID, term uint64) {
			if g == cluster.MetaGroup {
				s.log.Info("metadata leader", "leader", leader, "term", term)
			}
		},
	})
	if cc.Join {
		// The metadata leader may be a node this one was not told of
		// (membership.go).
		tr.SetAcceptUnknown(true)
	}
	if err := tr.Start(); err != nil {
		return fmt.Errorf("cluster transport: %w", err)
	}
	host.Start()
	s.cluster = &clusterNode{cfg: cc, tr: tr, host: host, rpc: mux}
	// A SIGINT or SIGTERM from now until the metadata group is reached
	// stops the start (openClusterMeta): caught before "cluster node" is
	// logged, so that one sent right after that line is not missed.
	s.cluster.startSig = make(chan os.Signal, 1)
	signal.Notify(s.cluster.startSig, syscall.SIGINT, syscall.SIGTERM)
	// The cluster's metrics exist on a clustered node only.
	s.cluster.metrics = s.mx.WatchCluster(metrics.ClusterSources{Raft: host.Stats, Transport: tr.Stats, Nodes: s.clusterNodeCounts,
		Partitions: s.partitionHealth})
	s.log.Info("cluster node", "node_id", cc.NodeID, "cluster_addr", tr.Addr(),
		"peers", cluster.FormatPeers(cc.Peers), "cluster_id", cc.ClusterID, "tls", cc.ServerTLS != nil)
	return nil
}

// openClusterMeta opens this node's replica of the metadata group and
// waits until the group has a leader and this replica has applied what
// the leader has committed, so that the server starts from the cluster's
// definitions, not from a stale or empty copy.
func (s *Server) openClusterMeta(dir string, opts meta.Options) (*meta.Store, error) {
	c := s.cluster
	voters := make([]cluster.NodeID, 0, len(c.cfg.Peers))
	for id := range c.cfg.Peers {
		voters = append(voters, id)
	}
	slices.Sort(voters)
	if c.cfg.Join {
		voters = nil // it waits to be added instead (membership.go)
	}
	defer signal.Stop(c.startSig)
	m, err := meta.OpenCluster(dir, opts, meta.ClusterOptions{Host: c.host, Voters: voters, ObserveCommit: c.metrics.MetaCommitted})
	if err != nil {
		return nil, err
	}
	if c.cfg.Join {
		err := s.waitToJoin(func() (bool, error) {
			s.syncPeers(m)
			st, err := c.host.Status(cluster.MetaGroup)
			return err == nil && st.Lead != 0 && st.GetCommit() > 0 && st.Applied >= st.GetCommit(), err
		})
		if err != nil {
			m.Close()
			return nil, err
		}
		return m, nil
	}
	// A SIGINT or SIGTERM while waiting stops the start at once, as for a
	// joining node (the command's own handler reads signals only once
	// Start has returned).
	sig := c.startSig
	deadline := time.Now().Add(clusterStartTimeout)
	for {
		s.syncPeers(m) // membership.go
		st, err := c.host.Status(cluster.MetaGroup)
		if err != nil {
			m.Close()
			return nil, err
		}
		if st.Lead != 0 && st.GetCommit() > 0 && st.Applied >= st.GetCommit() {
			return m, nil
		}
		if time.Now().After(deadline) {
			if v, l, err := c.host.Membership(cluster.MetaGroup); err == nil && len(v) > 0 {
				voters = v // the configuration in the log, not the seed
				if !slices.Contains(v, c.cfg.NodeID) && !slices.Contains(l, c.cfg.NodeID) {
					m.Close()
					return nil, fmt.Errorf("metadata group: this node is not a member (voters %v): it was removed from the cluster; to add it again, start it with an empty data directory and --cluster-join", v)
				}
			}
			m.Close()
			return nil, fmt.Errorf("metadata group: no leader or not caught up after %s (leader %d, commit %d, applied %d): a node needs a majority of %v running",
				clusterStartTimeout, st.Lead, st.GetCommit(), st.Applied, voters)
		}
		select {
		case <-s.stop:
			m.Close()
			return nil, errors.New("stopped while joining the cluster")
		case v := <-sig:
			m.Close()
			return nil, fmt.Errorf("%w (%s) while waiting for the metadata group", ErrStartInterrupted, v)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// registerNode records this node's addresses in the registry of nodes,
// retrying while the metadata group has no leader, until it succeeds or
// the server stops.
func (s *Server) registerNode() {
	a := s.cfg.NodeAddrs()
	n := meta.Node{
		ID: s.cluster.cfg.NodeID, Rack: s.cfg.Rack, ClusterAddr: a.ClusterAddr,
		KafkaAddr: a.KafkaAddr, KafkaTLSAddr: a.KafkaTLSAddr, AMQPAddr: a.AMQPAddr, AMQPSAddr: a.AMQPSAddr,
		HTTPAddr: a.HTTPAddr, HTTPSAddr: a.HTTPSAddr,
	}
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := s.meta.RegisterNode(n)
		if err == nil {
			return
		}
		s.log.Warn("registering this node in the cluster", "err", err)
		select {
		case <-s.stop:
			return
		case <-time.After(delay):
		}
	}
}

// closeCluster stops the Raft host, then the transport; after the
// metadata store has closed.
func (s *Server) closeCluster() error {
	if s.cluster == nil {
		return nil
	}
	s.cluster.host.Close()
	return s.cluster.tr.Close()
}

// nodeName is a cluster node's RabbitMQ-style name: sluice-<id>@<host of
// its cluster address>, unique even with several nodes on one host (as
// rabbit-1@host, rabbit-2@host are).
func nodeName(id cluster.NodeID, clusterAddr string) string {
	host, _, err := net.SplitHostPort(clusterAddr)
	if err != nil {
		host = clusterAddr
	}
	return fmt.Sprintf("sluice-%d@%s", id, host)
}

// clusterNodeName is this node's name in the management API: "" (the
// default, sluice@<hostname>) on a single node.
func (s *Server) clusterNodeName() string {
	if s.cluster == nil {
		return ""
	}
	return nodeName(s.cluster.cfg.NodeID, s.cluster.cfg.Peers[s.cluster.cfg.NodeID])
}

// clusterFaultHandler serves POST /debug/cluster (faultinject builds):
// op=block or op=unblock, peer=<node id> or peer=all.
func (s *Server) clusterFaultHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var block bool
		switch q.Get("op") {
		case "block":
			block = true
		case "unblock":
		default:
			http.Error(w, "op: block or unblock", http.StatusBadRequest)
			return
		}
		var peers []cluster.NodeID
		if p := q.Get("peer"); p == "all" {
			for id := range s.cluster.cfg.Peers {
				peers = append(peers, id)
			}
			for _, n := range s.meta.Nodes() {
				peers = append(peers, n.ID)
			}
		} else if id, err := strconv.ParseUint(p, 10, 64); err == nil && id != 0 {
			peers = append(peers, id)
		} else {
			http.Error(w, "peer: a node id or all", http.StatusBadRequest)
			return
		}
		for _, id := range peers {
			s.cluster.tr.Block(id, block)
		}
		s.log.Warn("fault injection: node-to-node traffic", "op", q.Get("op"), "peer", q.Get("peer"))
		w.WriteHeader(http.StatusNoContent)
	})
}

// clusterNodesFunc is mgmt's ClusterNodes: nil on a single node.
func (s *Server) clusterNodesFunc() func() []mgmt.ClusterNode {
	if s.cluster == nil {
		return nil
	}
	return s.clusterNodes
}

// clusterNodes lists the registry of nodes for /api/nodes, with what this
// node knows of each: whether it reaches it and its part in the metadata
// group.
func (s *Server) clusterNodes() []mgmt.ClusterNode {
	c := s.cluster
	st, _ := c.host.Status(cluster.MetaGroup)
	nodes := s.meta.Nodes()
	out := make([]mgmt.ClusterNode, 0, len(nodes))
	for _, n := range nodes {
		cn := mgmt.ClusterNode{Node: n, Self: n.ID == c.cfg.NodeID, Name: nodeName(n.ID, n.ClusterAddr)}
		cn.Running = cn.Self || c.tr.Reachable(n.ID)
		switch {
		case st.Lead == 0:
			cn.Role = "unknown"
		case n.ID == st.Lead:
			cn.Role = "leader"
		case isVoter(st.Config.Voters, n.ID):
			cn.Role = "follower"
		case isLearner(st.Config.Learners, n.ID):
			cn.Role = "learner"
		default:
			cn.Role = "none" // being added, or removed (membership.go)
		}
		out = append(out, cn)
	}
	return out
}

// clusterNodeCounts is the metrics' view of the nodes: the registry's
// nodes this node reaches (itself included) or not, and the other nodes
// (registered or initial peers) it holds a connection to.
// partitionHealth counts, as the Kafka view tells clients, the
// partitions this node leads that are under-replicated and, on the
// controller, the partitions without a leader.
func (s *Server) partitionHealth() (underReplicated, offline int) {
	v := s.cluster.view.Load()
	if v == nil || s.meta == nil {
		return 0, 0
	}
	self := int32(s.cluster.cfg.NodeID)
	controller := v.Controller() == self
	for _, t := range s.meta.Topics() {
		if t.Replicas == nil {
			continue
		}
		for p := range t.Partitions {
			r := v.Partition(t.Name, p)
			switch {
			case r.Leader == -1 && controller:
				offline++
			case r.Leader == self && len(r.ISR) < len(r.Replicas):
				underReplicated++
			}
		}
	}
	return underReplicated, offline
}

func (s *Server) clusterNodeCounts() (running, unreachable, peers int) {
	c := s.cluster
	others := make(map[cluster.NodeID]bool)
	for id := range c.cfg.Peers {
		others[id] = true
	}
	if s.meta != nil {
		for _, n := range s.meta.Nodes() {
			others[n.ID] = true
			if n.ID == c.cfg.NodeID || c.tr.Reachable(n.ID) {
				running++
			} else {
				unreachable++
			}
		}
	}
	delete(others, c.cfg.NodeID)
	for id := range others {
		if c.tr.Reachable(id) {
			peers++
		}
	}
	return running, unreachable, peers
}

func isVoter(v interface{ IDs() map[uint64]struct{} }, id uint64) bool {
	_, ok := v.IDs()[id]
	return ok
}

func isLearner(l map[uint64]struct{}, id uint64) bool {
	_, ok := l[id]
	return ok
}

// membershipOpt is mgmt's Membership: nil on a single node.
func (s *Server) membershipOpt() mgmt.Membership {
	if s.cluster == nil {
		return nil
	}
	return membership{s}
}

// kafkaClusterID is the Kafka cluster id of a cluster: derived from the
// cluster id, so that every node tells clients the same one.
func kafkaClusterID(clusterID string) string {
	sum := sha256.Sum256([]byte("sluice cluster " + clusterID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// metaLeader is the metadata group's leader as this node knows it; 0 for
// none.
func (s *Server) metaLeader() cluster.NodeID {
	return s.cluster.host.Leader(cluster.MetaGroup)
}
