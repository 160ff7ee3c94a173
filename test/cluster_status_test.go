package test

import (
	"strings"
	"testing"
	"time"
)

// clusterStatusJSON is `sluice cluster status -o json`.
type clusterStatusJSON struct {
	Nodes []struct {
		NodeID     uint64 `json:"node_id"`
		State      string `json:"state"`
		Role       string `json:"role"`
		Controller bool   `json:"controller"`
		Leaders    int    `json:"leaders"`
		Replicas   int    `json:"replicas"`
	} `json:"nodes"`
	Partitions struct {
		Partitions      int `json:"partitions"`
		UnderReplicated []struct {
			Topic     string  `json:"topic"`
			Partition int32   `json:"partition"`
			Leader    int32   `json:"leader"`
			Replicas  []int32 `json:"replicas"`
			ISR       []int32 `json:"isr"`
		} `json:"under_replicated"`
		Offline []struct {
			Topic    string  `json:"topic"`
			Leader   int32   `json:"leader"`
			Replicas []int32 `json:"replicas"`
		} `json:"offline"`
	} `json:"partitions"`
}

// checkHealthyStatus checks `sluice cluster status` through b on a
// healthy three-node cluster holding topics health-rf3 (3 partitions, RF
// 3) and health-rf1 (3 partitions, RF 1): every node running, one
// controller, four replicas on each node, six leaders in all, nothing
// under-replicated or offline.
func checkHealthyStatus(t *testing.T, b *broker) {
	t.Helper()
	var st clusterStatusJSON
	waitFor(t, 30*time.Second, "cluster status: six partitions led, none unhealthy", func() bool {
		st = adminJSON[clusterStatusJSON](t, b, "cluster", "status")
		leaders, controllers := 0, 0
		for _, n := range st.Nodes {
			if n.State != "running" || n.Replicas != 4 {
				return false
			}
			leaders += n.Leaders
			if n.Controller {
				controllers++
			}
		}
		return len(st.Nodes) == 3 && controllers == 1 && leaders == 6 && st.Partitions.Partitions == 6 &&
			len(st.Partitions.UnderReplicated) == 0 && len(st.Partitions.Offline) == 0
	})
	for _, n := range st.Nodes {
		if n.Controller != (n.Role == "leader") {
			t.Errorf("node %d: controller %v, metadata role %s", n.NodeID, n.Controller, n.Role)
		}
	}
}

// checkDegradedStatus checks `sluice cluster status` through b, a live
// node, while node victim is down: victim unreachable, the three RF=3
// partitions under-replicated (victim out of their ISR), the RF=1
// partition victim held offline, each listed in the table too.
func checkDegradedStatus(t *testing.T, b *broker, victim uint64) {
	t.Helper()
	var st clusterStatusJSON
	waitFor(t, 60*time.Second, "cluster status: the victim unreachable, 3 partitions under-replicated, 1 offline", func() bool {
		st = adminJSON[clusterStatusJSON](t, b, "cluster", "status")
		for _, n := range st.Nodes {
			if (n.NodeID == victim) != (n.State == "unreachable") {
				return false
			}
		}
		p := st.Partitions
		if len(p.UnderReplicated) != 3 || len(p.Offline) != 1 {
			return false
		}
		for _, u := range p.UnderReplicated {
			if u.Topic != "health-rf3" || u.Leader < 1 || uint64(u.Leader) == victim || len(u.Replicas) != 3 || len(u.ISR) != 2 {
				return false
			}
		}
		o := p.Offline[0]
		return o.Topic == "health-rf1" && o.Leader == -1 && len(o.Replicas) == 1 && uint64(o.Replicas[0]) == victim
	})
	out := mustAdmin(t, b, "cluster", "status")
	for _, want := range []string{"unreachable", "under-replicated partitions:", "offline partitions:", "health-rf3", "health-rf1", "under-replicated: 3, offline: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster status lacks %q:\n%s", want, out)
		}
	}
}
