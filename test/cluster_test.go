package test

// Black-box tests of a Sluice cluster (docs/clustering.md): three server
// processes on loopback whose metadata is one Raft group.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startCluster starts n cluster nodes on loopback ports with one cluster
// id and secret, each with extra flags, and waits until every one serves.
// The nodes are launched together: a node starts serving only once the
// metadata group has a leader, which needs a majority of them.
func startCluster(t *testing.T, n int, extra ...string) []*broker {
	t.Helper()
	return startClusterOf(t, "", n, extra...)
}

// startClusterOf is startCluster with the server binary bin ("" for
// sluiceBin).
func startClusterOf(t *testing.T, bin string, n int, extra ...string) []*broker {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secret, []byte("test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, freePort(t)))
	}
	nodes := make([]*broker, n)
	for i := range nodes {
		// ownPorts: a client port taken meanwhile by another process is
		// picked again (the cluster ports, in every node's peers, are not).
		b := &broker{t: t, DataDir: t.TempDir(), bin: bin, startWait: 90 * time.Second, ownPorts: true}
		b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
		b.extra = append([]string{"--node-id", strconv.Itoa(i + 1), "--cluster-peers", strings.Join(peers, ","),
			"--cluster-id", "test-cluster", "--cluster-secret-file", secret, "--log-level", "info"}, extra...)
		nodes[i] = b
	}
	for _, b := range nodes {
		b.launch()
		t.Cleanup(func() { b.Stop() })
	}
	for _, b := range nodes {
		b.waitReady()
	}
	return nodes
}

// apiNode is a node as /api/nodes lists it.
type apiNode struct {
	Name      string            `json:"name"`
	NodeID    uint64            `json:"node_id"`
	Running   bool              `json:"running"`
	Role      string            `json:"role"`
	Addresses map[string]string `json:"addresses"`
}

// clusterView is /api/nodes of b, or nil if it does not answer.
func clusterView(t *testing.T, b *broker) []apiNode {
	code, body := b.httpDo(t, "guest", "guest", "GET", "/api/nodes", nil)
	if code != 200 {
		return nil
	}
	var ns []apiNode
	if err := json.Unmarshal(body, &ns); err != nil {
		t.Fatalf("/api/nodes: %v: %s", err, body)
	}
	return ns
}

// agreedLeader is the metadata leader every node of live names in
// /api/nodes, a running one, with each node's running state as in
// running; 0 if they do not agree (yet).
func agreedLeader(t *testing.T, live []*broker, total int, running map[uint64]bool) uint64 {
	var leader uint64
	for _, b := range live {
		ns := clusterView(t, b)
		if len(ns) != total {
			return 0
		}
		var l uint64
		for _, n := range ns {
			if n.Running != running[n.NodeID] {
				return 0
			}
			if n.Role == "leader" && n.Running {
				l = n.NodeID
			}
		}
		if l == 0 || (leader != 0 && l != leader) {
			return 0
		}
		leader = l
	}
	return leader
}

// TestClusterMetadataOnRaft: three nodes agree on one metadata leader and
// list each other; a user created through one node logs in through
// another; when the leader is killed (-9) the two others elect a new one
// and take changes, and the killed node, restarted, catches up.
func TestClusterMetadataOnRaft(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	var leader uint64
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		leader = agreedLeader(t, nodes, 3, all)
		return leader != 0
	})
	for _, n := range clusterView(t, nodes[0]) {
		b := nodes[n.NodeID-1]
		if want := fmt.Sprintf("sluice-%d@127.0.0.1", n.NodeID); n.Name != want {
			t.Errorf("node %d named %q, want %q", n.NodeID, n.Name, want)
		}
		if n.Addresses["kafka"] != b.Kafka || n.Addresses["amqp"] != b.AMQP || n.Addresses["http"] != b.HTTP {
			t.Errorf("node %d registered with addresses %v, serves kafka %s amqp %s http %s", n.NodeID, n.Addresses, b.Kafka, b.AMQP, b.HTTP)
		}
	}
	status := mustAdmin(t, nodes[1], "cluster", "status")
	if strings.Count(status, "leader") != 1 || strings.Count(status, "follower") != 2 {
		t.Errorf("cluster status:\n%s", status)
	}

	// One user store for the whole cluster.
	nodes[2].addUser(t, "alice", "wonder-land", "management")
	for _, b := range nodes {
		waitFor(t, 10*time.Second, "alice known on every node", func() bool {
			code, _ := b.httpDo(t, "alice", "wonder-land", "GET", "/api/whoami", nil)
			return code == 200
		})
	}
	if err := loginErr(t, nodes[0], saslMech("SCRAM-SHA-512", "alice", "wonder-land")); err != nil {
		t.Fatalf("Kafka SCRAM login through node 1 as a user made through node 3: %v", err)
	}

	// Kill the metadata leader: the others elect a new one.
	victim := nodes[leader-1]
	victim.Kill()
	var live []*broker
	for _, b := range nodes {
		if b != victim {
			live = append(live, b)
		}
	}
	running := map[uint64]bool{1: true, 2: true, 3: true}
	running[leader] = false
	killedAt := time.Now()
	var newLeader uint64
	waitFor(t, 30*time.Second, "a new metadata leader among the survivors", func() bool {
		newLeader = agreedLeader(t, live, 3, running)
		return newLeader != 0
	})
	t.Logf("metadata leader %d killed; node %d leads after %v", leader, newLeader, time.Since(killedAt).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "a change through a survivor", func() bool {
		code, _ := live[0].httpDo(t, "guest", "guest", "PUT", "/api/users/bob", map[string]any{"password": "builder", "tags": "management"})
		return code == 201 || code == 204
	})
	for _, b := range live {
		waitFor(t, 10*time.Second, "bob known on the survivors", func() bool {
			code, _ := b.httpDo(t, "bob", "builder", "GET", "/api/whoami", nil)
			return code == 200
		})
	}

	// The killed node comes back and catches up.
	victim.Restart()
	waitFor(t, 20*time.Second, "bob known on the restarted node", func() bool {
		code, _ := victim.httpDo(t, "bob", "builder", "GET", "/api/whoami", nil)
		return code == 200
	})
	waitFor(t, 30*time.Second, "all three running again, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
}

// TestClusterNodeWaitingForMajorityStopsOnSIGTERM: a founding node started
// alone waits for the metadata group's majority; SIGTERM ends the wait at
// once with a clean exit, not after the 60 s start timeout.
func TestClusterNodeWaitingForMajorityStopsOnSIGTERM(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secret, []byte("test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	peers := fmt.Sprintf("1=%s,2=%s,3=%s", freePort(t), freePort(t), freePort(t))
	b := &broker{t: t, DataDir: t.TempDir()}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.extra = []string{"--node-id", "1", "--cluster-peers", peers, "--cluster-id", "alone",
		"--cluster-secret-file", secret, "--log-level", "info"}
	b.launch()
	defer b.Kill()
	waitFor(t, 20*time.Second, "the node waiting for the cluster", func() bool {
		return strings.Contains(b.Logs(), `"msg":"cluster node"`)
	})
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM:\n%s", b.Logs())
	}
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, b.Logs())
	}
}
