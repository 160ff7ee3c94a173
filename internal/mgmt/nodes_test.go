package mgmt

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
)

// nodesAPI serves an API over loopback with an administrator "admin" and
// returns a GET helper decoding the JSON answer.
func nodesAPI(t *testing.T, opts Options) func(path string, into any) int {
	t.Helper()
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	u, err := broker.UserWithPassword("admin", "pw", []string{"administrator"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.PutUser(u); err != nil {
		t.Fatal(err)
	}
	opts.Meta, opts.NodeName = m, "sluice@here"
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return func(path string, into any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.SetBasicAuth("admin", "pw")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
}

func TestNodesSingleNode(t *testing.T) {
	get := nodesAPI(t, Options{Rack: "r1", Listeners: []Listener{
		{Protocol: "amqp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5672}},
		{Protocol: "kafka/ssl", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9093}},
	}})
	var nodes []map[string]any
	if code := get("/api/nodes", &nodes); code != 200 || len(nodes) != 1 {
		t.Fatalf("status %d, nodes %v", code, nodes)
	}
	n := nodes[0]
	addrs, _ := n["addresses"].(map[string]any)
	if n["name"] != "sluice@here" || n["type"] != "disc" || n["running"] != true || n["node_id"] != 1.0 || n["rack"] != "r1" ||
		n["role"] != "single" || addrs["amqp"] != "127.0.0.1:5672" || addrs["kafka_tls"] != "127.0.0.1:9093" || len(addrs) != 2 {
		t.Fatalf("node %v", n)
	}
	if _, ok := n["proc_used"]; !ok {
		t.Error("the node's own resource fields are missing")
	}
	var one map[string]any
	if code := get("/api/nodes/sluice@here", &one); code != 200 || one["role"] != "single" {
		t.Fatalf("one node: %d %v", code, one)
	}
	if code := get("/api/nodes/sluice@elsewhere", &one); code != 404 {
		t.Fatalf("unknown node: %d", code)
	}
}

func TestNodesOfACluster(t *testing.T) {
	get := nodesAPI(t, Options{ClusterNodes: func() []ClusterNode {
		return []ClusterNode{
			{Node: meta.Node{ID: 1, Rack: "a", ClusterAddr: "10.0.0.1:9190", KafkaAddr: "n1:9092"}, Running: true, Role: "leader", Self: true},
			{Node: meta.Node{ID: 2, Rack: "b", ClusterAddr: "10.0.0.2:9190", AMQPAddr: "n2:5672"}, Running: false, Role: "follower"},
			{Node: meta.Node{ID: 3, ClusterAddr: "10.0.0.3:9190"}, Name: "sluice@n3", Running: true, Role: "follower"},
		}
	}})
	var nodes []map[string]any
	if code := get("/api/nodes", &nodes); code != 200 || len(nodes) != 3 {
		t.Fatalf("status %d, nodes %v", code, nodes)
	}
	for i, want := range []struct {
		name, role, rack string
		id               float64
		running          bool
		addrs            map[string]string
	}{
		{"sluice@here", "leader", "a", 1, true, map[string]string{"cluster": "10.0.0.1:9190", "kafka": "n1:9092"}},
		{"sluice@10.0.0.2", "follower", "b", 2, false, map[string]string{"cluster": "10.0.0.2:9190", "amqp": "n2:5672"}},
		{"sluice@n3", "follower", "", 3, true, map[string]string{"cluster": "10.0.0.3:9190"}},
	} {
		n := nodes[i]
		addrs, _ := n["addresses"].(map[string]any)
		if n["name"] != want.name || n["role"] != want.role || n["rack"] != want.rack || n["node_id"] != want.id || n["running"] != want.running || len(addrs) != len(want.addrs) {
			t.Errorf("node %d: %v, want %+v", i, n, want)
		}
		for k, v := range want.addrs {
			if addrs[k] != v {
				t.Errorf("node %d: address %s = %v, want %s", i, k, addrs[k], v)
			}
		}
		if _, own := n["proc_used"]; own != (i == 0) {
			t.Errorf("node %d: resource fields present %v, want only on this node", i, own)
		}
	}
	var one map[string]any
	if code := get("/api/nodes/sluice@n3", &one); code != 200 || one["node_id"] != 3.0 {
		t.Fatalf("node 3: %d %v", code, one)
	}
}
