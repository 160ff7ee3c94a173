package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/cluster/transport"
)

func scrapeText(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A single node lists no cluster family, not even as a declared one.
func TestSingleNodeHasNoClusterMetrics(t *testing.T) {
	out := scrapeText(t, New())
	for _, prefix := range []string{"sluice_raft_", "sluice_cluster_"} {
		if strings.Contains(out, prefix) {
			t.Errorf("a single node's /metrics lists %s families", prefix)
		}
	}
}

func TestClusterMetrics(t *testing.T) {
	m := New()
	hooks := m.WatchCluster(ClusterSources{
		Raft: func() multiraft.Stats {
			return multiraft.Stats{Groups: 3, Leaders: 1, Followers: 2, Quiesced: 2, Proposals: 7, ProposalsDropped: 1,
				MetaLeaderChanges: 2, MetaLeader: 3, FollowerLag: map[cluster.NodeID]uint64{2: 5, 3: 0}}
		},
		Transport: func() transport.Stats {
			return transport.Stats{FramesSent: 4, DroppedQueueFull: 1, Refusals: map[string]uint64{"proof": 3}}
		},
		Nodes: func() (int, int, int) { return 2, 1, 1 },
	})
	hooks.MetaCommitted(3 * time.Millisecond)
	out := scrapeText(t, m)
	for _, want := range []string{
		`sluice_raft_leader_changes_total{group_kind="meta"} 2`,
		`sluice_raft_leader_changes_total{group_kind="partition"} 0`,
		`sluice_raft_groups{role="leader"} 1`,
		`sluice_raft_groups{role="follower"} 2`,
		`sluice_raft_groups{role="candidate"} 0`,
		`sluice_raft_quiesced_groups 2`,
		`sluice_raft_metadata_leader 3`,
		`sluice_raft_proposals_total 7`,
		`sluice_raft_proposals_dropped_total 1`,
		`sluice_raft_follower_lag_entries{peer="2"} 5`,
		`sluice_raft_follower_lag_entries{peer="3"} 0`,
		`sluice_raft_commit_latency_seconds_count{group_kind="meta"} 1`,
		`sluice_cluster_transport_frames_total{direction="sent"} 4`,
		`sluice_cluster_transport_dropped_messages_total{cause="queue_full"} 1`,
		`sluice_cluster_transport_handshake_refusals_total{reason="proof"} 3`,
		`sluice_cluster_transport_handshake_refusals_total{reason="cluster-id"} 0`,
		`sluice_cluster_peers_connected 1`,
		`sluice_cluster_nodes{state="running"} 2`,
		`sluice_cluster_nodes{state="unreachable"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
}
