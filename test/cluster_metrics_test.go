package test

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clusterAlertRulesFile is the cluster's rules file (docs/clustering.md).
const clusterAlertRulesFile = "../docs/prometheus/sluice-cluster-alerts.yml"

// TestClusterMetrics: every node of a three-node cluster exposes the Raft
// and transport metrics (and every metric the cluster alert rules use);
// the idle metadata group quiesces everywhere; killing the metadata leader moves the survivors' leader change counter
// and shows the dead node unreachable; a single node exposes none of
// them.
func TestClusterMetrics(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	var leader uint64
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		leader = agreedLeader(t, nodes, 3, all)
		return leader != 0
	})
	// A change through a follower, so that commit latency has a sample.
	follower := nodes[leader%3]
	follower.addUser(t, "carol", "singer-song", "management")

	var leaders float64
	for i, b := range nodes {
		var s scrape
		waitFor(t, 20*time.Second, "every node connected to the two others", func() bool {
			s = b.scrape(t)
			v, _ := s.value("sluice_cluster_peers_connected")
			r, _ := s.value("sluice_cluster_nodes", "state=running")
			return v == 2 && r == 3
		})
		for _, name := range []string{"sluice_raft_proposals_total", "sluice_raft_quiesced_groups",
			"sluice_cluster_transport_frames_total", "sluice_cluster_transport_handshakes_total"} {
			if _, ok := s.value(name); !ok {
				t.Errorf("node %d: %s missing", i+1, name)
			}
		}
		if l, _ := s.value("sluice_raft_metadata_leader"); uint64(l) != leader {
			t.Errorf("node %d: sluice_raft_metadata_leader %v, want %d", i+1, l, leader)
		}
		v, _ := s.value("sluice_raft_groups", "role=leader")
		leaders += v
		if uint64(i+1) == leader {
			// The leader, which has followers: the lag series exist.
			if n := checkRuleFile(t, s, clusterAlertRulesFile); n < 7 {
				t.Errorf("%d rules in %s, want 7", n, clusterAlertRulesFile)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%v nodes lead the metadata group, by sluice_raft_groups", leaders)
	}
	if n := follower.scrape(t).count("sluice_raft_commit_latency_seconds", "group_kind=meta"); n == 0 {
		t.Errorf("no metadata commit latency observed on the node a change went through")
	}

	// Idle, the metadata group quiesces on every node.
	waitFor(t, 20*time.Second, "the metadata group quiesced on every node", func() bool {
		for _, b := range nodes {
			if q, _ := b.scrape(t).value("sluice_raft_quiesced_groups"); q != 1 {
				return false
			}
		}
		return true
	})

	var live []*broker
	before := map[*broker]float64{}
	for _, b := range nodes {
		if uint64(b.nodeIndex(nodes)) != leader {
			live = append(live, b)
			before[b], _ = b.scrape(t).value("sluice_raft_leader_changes_total", "group_kind=meta")
		}
	}
	nodes[leader-1].Kill()
	for _, b := range live {
		waitFor(t, 30*time.Second, "the leader change counted and the dead node unreachable", func() bool {
			s := b.scrape(t)
			changes, _ := s.value("sluice_raft_leader_changes_total", "group_kind=meta")
			down, _ := s.value("sluice_cluster_nodes", "state=unreachable")
			return changes > before[b] && down == 1
		})
	}

	single := startBroker(t)
	for name := range single.scrape(t) {
		if strings.HasPrefix(name, "sluice_raft_") || strings.HasPrefix(name, "sluice_cluster_") {
			t.Errorf("a single node exposes %s", name)
		}
	}
}

// nodeIndex is b's node id in a cluster started by startCluster.
func (b *broker) nodeIndex(nodes []*broker) int {
	for i, n := range nodes {
		if n == b {
			return i + 1
		}
	}
	return 0
}

// promtool, when installed, validates the cluster rules file.
func TestClusterAlertRulesPromtool(t *testing.T) {
	const promtool = "/usr/bin/promtool"
	needTool(t, promtool)
	out, err := exec.Command(promtool, "check", "rules", clusterAlertRulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestClusterPausedLeaderReplaced: the metadata group is idle (quiesced)
// when its leader's process is paused (SIGSTOP) with its connections
// open; the two others notice it has gone silent, elect a new leader and
// take a change; resumed, the old leader follows again.
func TestClusterPausedLeaderReplaced(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	var leader uint64
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		leader = agreedLeader(t, nodes, 3, all)
		return leader != 0
	})
	waitFor(t, 20*time.Second, "the metadata group quiesced on every node", func() bool {
		for _, b := range nodes {
			if q, _ := b.scrape(t).value("sluice_raft_quiesced_groups"); q != 1 {
				return false
			}
		}
		return true
	})
	paused := nodes[leader-1]
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			paused.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	var live []*broker
	for _, b := range nodes {
		if b != paused {
			live = append(live, b)
		}
	}
	start := time.Now()
	var newLeader float64
	waitFor(t, 30*time.Second, "a new metadata leader among the two others", func() bool {
		a, _ := live[0].scrape(t).value("sluice_raft_metadata_leader")
		b, _ := live[1].scrape(t).value("sluice_raft_metadata_leader")
		newLeader = a
		return a != 0 && a == b && uint64(a) != leader
	})
	t.Logf("metadata leader %d paused; node %v leads after %v", leader, newLeader, time.Since(start).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "a change through a survivor", func() bool {
		code, _ := live[0].httpDo(t, "guest", "guest", "PUT", "/api/users/dave", map[string]any{"password": "diver-dive", "tags": "management"})
		return code == 201 || code == 204
	})
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, 30*time.Second, "dave known on the resumed node", func() bool {
		code, _ := paused.httpDo(t, "dave", "diver-dive", "GET", "/api/whoami", nil)
		return code == 200
	})
	waitFor(t, 30*time.Second, "all three running again, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
}
