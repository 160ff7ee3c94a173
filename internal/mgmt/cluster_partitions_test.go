package mgmt

import (
	"testing"

	"github.com/sluice-mq/sluice/internal/meta"
)

// TestClusterPartitionsAndNodeCounts: /api/cluster/partitions lists the
// under-replicated and offline partitions, and /api/nodes counts each
// node's leaders and replicas and marks the controller and state.
func TestClusterPartitionsAndNodeCounts(t *testing.T) {
	get := nodesAPI(t, Options{
		ClusterNodes: func() []ClusterNode {
			return []ClusterNode{
				{Node: meta.Node{ID: 1}, Running: true, Role: "leader", Self: true},
				{Node: meta.Node{ID: 2}, Running: true, Role: "follower"},
				{Node: meta.Node{ID: 3}, Running: false, Role: "learner"},
			}
		},
		ClusterPartitions: func() []PartitionState {
			return []PartitionState{
				{Topic: "b", Partition: 0, Leader: -1, Replicas: []int32{3}, ISR: []int32{}, Offline: []int32{3}},
				{Topic: "a", Partition: 1, Leader: 2, Replicas: []int32{2, 1, 3}, ISR: []int32{2, 1}, Offline: []int32{3}},
				{Topic: "a", Partition: 0, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}},
			}
		},
	})
	var nodes []map[string]any
	if code := get("/api/nodes", &nodes); code != 200 || len(nodes) != 3 {
		t.Fatalf("status %d, nodes %v", code, nodes)
	}
	for i, want := range []struct {
		state             string
		controller        bool
		leaders, replicas float64
	}{{"running", true, 1, 2}, {"running", false, 1, 2}, {"unreachable", false, 0, 2}} {
		n := nodes[i]
		if n["state"] != want.state || n["controller"] != want.controller || n["leaders"] != want.leaders || n["replicas"] != want.replicas {
			t.Errorf("node %d: %v, want %+v", i+1, n, want)
		}
	}
	var parts struct {
		Partitions      int              `json:"partitions"`
		UnderReplicated []map[string]any `json:"under_replicated"`
		Offline         []map[string]any `json:"offline"`
	}
	if code := get("/api/cluster/partitions", &parts); code != 200 {
		t.Fatalf("status %d", code)
	}
	if parts.Partitions != 3 || len(parts.UnderReplicated) != 1 || len(parts.Offline) != 1 {
		t.Fatalf("partitions %+v", parts)
	}
	u, o := parts.UnderReplicated[0], parts.Offline[0]
	if u["topic"] != "a" || u["partition"] != 1.0 || u["leader"] != 2.0 || len(u["isr"].([]any)) != 2 || len(u["offline_replicas"].([]any)) != 1 {
		t.Errorf("under-replicated %v", u)
	}
	if o["topic"] != "b" || o["leader"] != -1.0 || len(o["replicas"].([]any)) != 1 || len(o["isr"].([]any)) != 0 {
		t.Errorf("offline %v", o)
	}
}

// TestClusterPartitionsOfASingleNode: a single node leads and holds all
// its partitions, and has none unhealthy.
func TestClusterPartitionsOfASingleNode(t *testing.T) {
	get := nodesAPI(t, Options{})
	var parts map[string]any
	if code := get("/api/cluster/partitions", &parts); code != 200 {
		t.Fatalf("status %d", code)
	}
	if parts["partitions"] != 0.0 || len(parts["under_replicated"].([]any)) != 0 || len(parts["offline"].([]any)) != 0 {
		t.Fatalf("partitions %v", parts)
	}
	var nodes []map[string]any
	if code := get("/api/nodes", &nodes); code != 200 || nodes[0]["controller"] != true || nodes[0]["state"] != "running" || nodes[0]["leaders"] != 0.0 {
		t.Fatalf("nodes %v", nodes)
	}
}
