package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterNonGoClients: kcat, confluent-kafka and kafka-python,
// bootstrapped from one node of a three-node cluster, see three brokers
// and a leader for every partition, produce to the partitions of every
// node and read everything back (kcat without a group; the Python clients
// in consumer groups, whose coordinator is one of the nodes).
func TestClusterNonGoClients(t *testing.T) {
	needTool(t, kcatPath)
	needTool(t, python3Path)
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
	const topic, parts = "cluster-clients", 6
	if r, err := nodes[1].admin(t).CreateTopic(ctxT(t, 30*time.Second), parts, -1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}

	// kcat's metadata through node 1: three brokers, a leader each.
	var md struct {
		Brokers []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int `json:"partition"`
				Leader    int `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	waitFor(t, 30*time.Second, "kcat -L sees three brokers and six leaders", func() bool {
		r := nodes[0].kcat(t, "", "-L", "-J", "-t", topic)
		if r.Err != nil || json.Unmarshal([]byte(r.Stdout), &md) != nil {
			return false
		}
		if len(md.Brokers) != 3 || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != parts {
			return false
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader < 1 || p.Leader > 3 {
				return false
			}
		}
		return true
	})
	names := map[string]bool{}
	for _, b := range md.Brokers {
		names[b.Name] = true
	}
	for _, b := range nodes {
		if !names[b.Kafka] {
			t.Errorf("kcat brokers %+v: %s missing", md.Brokers, b.Kafka)
		}
	}

	// kcat produces to every partition through node 1's bootstrap.
	const n = 60
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("kc-%d", i))
	}
	for p := range parts {
		var in []string
		for i := p; i < n; i += parts {
			in = append(in, lines[i])
		}
		nodes[0].kcat(t, strings.Join(in, "\n")+"\n", "-P", "-t", topic, "-p", fmt.Sprint(p), "-X", "acks=all").must(t, nodes[0], "kcat produce")
	}
	r := nodes[2].kcat(t, "", "-C", "-t", topic, "-o", "beginning", "-e", "-q").must(t, nodes[2], "kcat consume")
	got := strings.Fields(r.Stdout)
	if len(got) != n {
		t.Fatalf("kcat read %d records, want %d: %v", len(got), n, got)
	}

	script, err := filepath.Abs(filepath.Join("python", "cluster_clients.py"))
	if err != nil {
		t.Fatal(err)
	}
	out := runTool(t, 180*time.Second, "", python3Path, script, nodes[2].Kafka, topic, fmt.Sprint(parts), "3", "100", fmt.Sprint(n)).must(t, nodes[2], "cluster_clients.py")
	t.Log(strings.TrimSpace(out.Stdout))
}
