package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/cluster/transport"
)

// The cluster's metrics exist only on a node started with cluster
// settings: WatchCluster registers them, and none of their families is
// declared (families.go), so a single node's /metrics lists none of them.
// Every label has a fixed, small set of values (roles, group kinds, drop
// causes, refusal reasons, peer node ids), never one per group.

// ClusterSources are what the cluster metrics read at every scrape.
type ClusterSources struct {
	// Raft is the multi-Raft host's statistics.
	Raft func() multiraft.Stats
	// Transport is the node-to-node transport's counters.
	Transport func() transport.Stats
	// Nodes counts the nodes of the registry of nodes this node reaches
	// (itself included: running) and those it does not (unreachable),
	// and the other nodes it holds a connection to (peers).
	Nodes func() (running, unreachable, peers int)
	// Partitions counts the partitions this node leads with fewer
	// replicas in sync than assigned (under-replicated), and, on the
	// controller only (as Kafka counts them), the partitions without a
	// leader (offline).
	Partitions func() (underReplicated, offline int)
}

// ClusterHooks are the cluster metrics fed by events rather than read at
// scrape time.
type ClusterHooks struct {
	metaCommit prometheus.Observer
}

// MetaCommitted records the time from proposing a metadata change on this
// node to this node applying it.
func (h *ClusterHooks) MetaCommitted(d time.Duration) { h.metaCommit.Observe(d.Seconds()) }

// commitBuckets (seconds) span a loopback commit with fsyncs (about a
// millisecond) to a commit that waited for an election (seconds).
var commitBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// WatchCluster registers the cluster metrics. Call it once, on a clustered
// node only.
func (m *Metrics) WatchCluster(src ClusterSources) *ClusterHooks {
	commit := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_raft_commit_latency_seconds",
		Help:    "Time from proposing a change on this node to this node applying it, by kind of Raft group (meta: the metadata group).",
		Buckets: commitBuckets,
	}, []string{"group_kind"})
	m.reg.MustRegister(commit, &clusterCollector{src: src})
	return &ClusterHooks{metaCommit: commit.WithLabelValues("meta")}
}

var (
	raftLeaderChanges = prometheus.NewDesc("sluice_raft_leader_changes_total",
		"Times this node learned of a new leader of a Raft group, by kind of group (meta: the metadata group; partition: the others).", []string{"group_kind"}, nil)
	raftGroups = prometheus.NewDesc("sluice_raft_groups",
		"Raft groups with a replica on this node, by this node's role in them (candidate includes pre-candidates).", []string{"role"}, nil)
	raftQuiesced = prometheus.NewDesc("sluice_raft_quiesced_groups",
		"Raft groups on this node that are idle and not ticked (no heartbeats) until something wakes them.", nil, nil)
	raftProposals = prometheus.NewDesc("sluice_raft_proposals_total",
		"Proposals (and configuration changes) made to Raft groups on this node.", nil, nil)
	raftDropped = prometheus.NewDesc("sluice_raft_proposals_dropped_total",
		"Proposals Raft refused at once on this node: no leader known, or a leadership transfer under way.", nil, nil)
	raftMetaLeader = prometheus.NewDesc("sluice_raft_metadata_leader",
		"The node id of the metadata group's leader as this node knows it; 0: none (an election, or this node is cut off from a majority).", nil, nil)
	raftLag = prometheus.NewDesc("sluice_raft_follower_lag_entries",
		"For each other node, the most log entries it is behind in any Raft group this node leads.", []string{"peer"}, nil)

	trFrames = prometheus.NewDesc("sluice_cluster_transport_frames_total",
		"Frames between this node and the other nodes, by direction (sent, received).", []string{"direction"}, nil)
	trMessages = prometheus.NewDesc("sluice_cluster_transport_messages_total",
		"Raft messages between this node and the other nodes, by direction (sent, received).", []string{"direction"}, nil)
	trBytes = prometheus.NewDesc("sluice_cluster_transport_bytes_total",
		"Bytes of frames between this node and the other nodes, by direction (sent, received).", []string{"direction"}, nil)
	trCoalesced = prometheus.NewDesc("sluice_cluster_transport_heartbeats_coalesced_total",
		"Heartbeats and heartbeat responses sent as compact entries rather than full messages.", nil, nil)
	trDropped = prometheus.NewDesc("sluice_cluster_transport_dropped_messages_total",
		"Raft messages dropped by the transport (Raft resends), by cause: queue_full (the peer reads too slowly), unreachable, blocked (fault injection), oversize, invalid, inbound_blocked.", []string{"cause"}, nil)
	trHandshakes = prometheus.NewDesc("sluice_cluster_transport_handshakes_total",
		"Node-to-node connections established (handshakes completed).", nil, nil)
	trRefusals = prometheus.NewDesc("sluice_cluster_transport_handshake_refusals_total",
		"Node-to-node handshakes refused, by reason (cluster-id, proof, unknown-node, tls, certificate, ...: a misconfigured or foreign node; refused-by-peer: the other side refused this node).", []string{"reason"}, nil)
	trKnownPeers = prometheus.NewDesc("sluice_cluster_transport_peers",
		"Other nodes this node's transport knows (dials, or admits when they dial): the cluster's nodes; a node removed from the cluster leaves it.", nil, nil)
	trPeers = prometheus.NewDesc("sluice_cluster_peers_connected",
		"Other nodes this node holds a connection to.", nil, nil)
	underReplicated = prometheus.NewDesc("sluice_under_replicated_partitions",
		"Partitions this node leads whose in-sync replicas are fewer than their replicas (Kafka's UnderReplicatedPartitions).", nil, nil)
	offlinePartitions = prometheus.NewDesc("sluice_offline_partitions",
		"Partitions without a leader, counted by the controller (the metadata leader) only, 0 on the other nodes (Kafka's OfflinePartitionsCount).", nil, nil)
	clusterNodes = prometheus.NewDesc("sluice_cluster_nodes",
		"Nodes of the cluster's registry by state as this node sees it: running (reachable, or this node) or unreachable.", []string{"state"}, nil)
)

// refusalReasons are every transport.Reason's name, so that each refusal
// series exists (at 0) from the start.
var refusalReasons = func() []string {
	var out []string
	for r := transport.Reason(0); r.String() != "unknown"; r++ {
		out = append(out, r.String())
	}
	return out
}()

type clusterCollector struct{ src ClusterSources }

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftLeaderChanges, raftGroups, raftQuiesced, raftProposals, raftDropped, raftMetaLeader, raftLag,
		trFrames, trMessages, trBytes, trCoalesced, trDropped, trHandshakes, trRefusals, trKnownPeers, trPeers, clusterNodes,
		underReplicated, offlinePartitions} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.src.Raft != nil {
		s := c.src.Raft()
		counter(raftLeaderChanges, s.MetaLeaderChanges, "meta")
		counter(raftLeaderChanges, s.OtherLeaderChanges, "partition")
		gauge(raftGroups, float64(s.Leaders), "leader")
		gauge(raftGroups, float64(s.Followers), "follower")
		gauge(raftGroups, float64(s.Candidates), "candidate")
		gauge(raftQuiesced, float64(s.Quiesced))
		counter(raftProposals, s.Proposals)
		counter(raftDropped, s.ProposalsDropped)
		gauge(raftMetaLeader, float64(s.MetaLeader))
		for peer, lag := range s.FollowerLag {
			gauge(raftLag, float64(lag), strconv.FormatUint(peer, 10))
		}
	}
	if c.src.Transport != nil {
		s := c.src.Transport()
		counter(trFrames, s.FramesSent, "sent")
		counter(trFrames, s.FramesReceived, "received")
		counter(trMessages, s.MessagesSent, "sent")
		counter(trMessages, s.MessagesReceived, "received")
		counter(trBytes, s.BytesSent, "sent")
		counter(trBytes, s.BytesReceived, "received")
		counter(trCoalesced, s.HeartbeatsCoalesced)
		counter(trDropped, s.DroppedQueueFull, "queue_full")
		counter(trDropped, s.DroppedUnreachable, "unreachable")
		counter(trDropped, s.DroppedBlocked, "blocked")
		counter(trDropped, s.DroppedOversize, "oversize")
		counter(trDropped, s.DroppedInvalid, "invalid")
		counter(trDropped, s.DroppedInbound, "inbound_blocked")
		counter(trHandshakes, s.Handshakes)
		gauge(trKnownPeers, float64(s.Peers))
		for _, r := range refusalReasons {
			counter(trRefusals, s.Refusals[r], r)
		}
	}
	if c.src.Nodes != nil {
		running, unreachable, peers := c.src.Nodes()
		gauge(clusterNodes, float64(running), "running")
		gauge(clusterNodes, float64(unreachable), "unreachable")
		gauge(trPeers, float64(peers))
	}
	if c.src.Partitions != nil {
		under, offline := c.src.Partitions()
		gauge(underReplicated, float64(under))
		gauge(offlinePartitions, float64(offline))
	}
}
