package test

// Black-box tests of adding and removing nodes of a running cluster
// (docs/clustering.md, "Adding and removing nodes").

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// flagValue is the value after flag in a node's extra arguments.
func flagValue(t *testing.T, b *broker, flag string) string {
	t.Helper()
	i := slices.Index(b.extra, flag)
	if i < 0 || i+1 >= len(b.extra) {
		t.Fatalf("%s not among %v", flag, b.extra)
	}
	return b.extra[i+1]
}

// launchJoiner launches node id with --cluster-join, knowing only member
// (its cluster address as the registry has it) and itself, with the
// cluster id and secret of member. It returns the node and its cluster
// address; the node does not serve until it is added.
func launchJoiner(t *testing.T, member *broker, id string) (*broker, string) {
	t.Helper()
	var memberAddr string
	for _, n := range clusterView(t, member) {
		if n.Addresses["http"] == member.HTTP {
			memberAddr = n.Addresses["cluster"]
		}
	}
	if memberAddr == "" {
		t.Fatal("the member's cluster address is not in its /api/nodes")
	}
	addr := freePort(t)
	b := &broker{t: t, DataDir: t.TempDir(), startWait: 90 * time.Second}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.extra = []string{"--node-id", id, "--cluster-join",
		"--cluster-peers", flagValue(t, member, "--node-id") + "=" + memberAddr + "," + id + "=" + addr,
		"--cluster-id", flagValue(t, member, "--cluster-id"), "--cluster-secret-file", flagValue(t, member, "--cluster-secret-file"),
		"--log-level", "info"}
	b.launch()
	t.Cleanup(func() { b.Stop() })
	return b, addr
}

// roleOf is node id's role in b's /api/nodes, "" if b does not list it.
func roleOf(t *testing.T, b *broker, id uint64) string {
	for _, n := range clusterView(t, b) {
		if n.NodeID == id {
			return n.Role
		}
	}
	return ""
}

// TestClusterAddAndRemoveNodes: a fourth node started with --cluster-join
// waits to be added; `sluice cluster add-node` makes it a learner, it is
// promoted to voter once caught up and holds the metadata made before it
// joined (a user logs in through it), and restarts knowing no other node
// from its settings. `sluice cluster remove-node` removes
// node 1 (which notices); the three others drop it from their transports
// (refusing its redials) and go on taking changes. With a
// voter stopped, removing a running one, which would leave no majority
// running, is refused, while removing the stopped one is not.
func TestClusterAddAndRemoveNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	waitFor(t, 30*time.Second, "three nodes, one leader", func() bool {
		return agreedLeader(t, nodes, 3, map[uint64]bool{1: true, 2: true, 3: true}) != 0
	})
	nodes[0].addUser(t, "alice", "wonder-land", "management")

	n4, addr4 := launchJoiner(t, nodes[0], "4")
	waitFor(t, 30*time.Second, "node 4 waiting to be added", func() bool {
		return strings.Contains(n4.Logs(), "waiting to be added to the cluster")
	})
	if c, err := net.DialTimeout("tcp", n4.HTTP, time.Second); err == nil {
		c.Close()
		t.Fatal("a node not yet added serves HTTP")
	}

	// A node waiting to join stops cleanly on SIGTERM (Stop checks the
	// exit code).
	n5, _ := launchJoiner(t, nodes[0], "5")
	waitFor(t, 30*time.Second, "node 5 waiting to be added", func() bool {
		return strings.Contains(n5.Logs(), "waiting to be added to the cluster")
	})
	n5.Stop()

	addedAt := time.Now()
	out := mustAdmin(t, nodes[1], "cluster", "add-node", "--node-id", "4", "--cluster-addr", addr4)
	// A learner, or already promoted if it caught up before the answer.
	if !strings.Contains(out, "added node 4") {
		t.Errorf("add-node said:\n%s", out)
	}
	n4.waitReady()
	waitFor(t, 30*time.Second, "node 4 a voter on every node", func() bool {
		for _, b := range append(nodes, n4) {
			if r := roleOf(t, b, 4); r != "follower" && r != "leader" {
				return false
			}
		}
		return true
	})
	t.Logf("node 4 a voter on every node %v after add-node started", time.Since(addedAt).Round(time.Millisecond))
	all := []*broker{nodes[0], nodes[1], nodes[2], n4}
	waitFor(t, 30*time.Second, "four running nodes agree on a leader", func() bool {
		return agreedLeader(t, all, 4, map[uint64]bool{1: true, 2: true, 3: true, 4: true}) != 0
	})
	if code, _ := n4.httpDo(t, "alice", "wonder-land", "GET", "/api/whoami", nil); code != 200 {
		t.Fatalf("alice, created before node 4 joined, cannot log in through it: %d", code)
	}
	if err := loginErr(t, n4, saslMech("SCRAM-SHA-256", "alice", "wonder-land")); err != nil {
		t.Fatalf("Kafka SCRAM login through node 4: %v", err)
	}
	// Node 4 restarts as an ordinary member whose settings name no other
	// node: it finds the others in the registry of nodes it holds.
	n4.Stop()
	i := slices.Index(n4.extra, "--cluster-join")
	n4.extra = slices.Delete(n4.extra, i, i+1)
	n4.extra[slices.Index(n4.extra, "--cluster-peers")+1] = "4=" + addr4
	n4.Restart()
	waitFor(t, 30*time.Second, "four running nodes after node 4 restarted", func() bool {
		return agreedLeader(t, all, 4, map[uint64]bool{1: true, 2: true, 3: true, 4: true}) != 0
	})

	// Adding it again is refused: it is a voter.
	failAdmin(t, nodes[2], nil, "already a voter", "cluster", "add-node", "--node-id", "4", "--cluster-addr", addr4)

	// A node does not remove itself: it could not tell the outcome.
	failAdmin(t, nodes[1], nil, "ask another member", "cluster", "remove-node", "--node-id", "2")

	// Remove node 1 through node 2.
	wasLeader := roleOf(t, nodes[1], 1) == "leader"
	removedAt := time.Now()
	mustAdmin(t, nodes[1], "cluster", "remove-node", "--node-id", "1")
	rest := []*broker{nodes[1], nodes[2], n4}
	waitFor(t, 30*time.Second, "nodes 2, 3, 4 listed, one leader", func() bool {
		return agreedLeader(t, rest, 3, map[uint64]bool{2: true, 3: true, 4: true}) != 0
	})
	t.Logf("node 1 (leader: %v) removed; nodes 2, 3, 4 agree on a leader %v after remove-node started", wasLeader, time.Since(removedAt).Round(time.Millisecond))
	for _, b := range rest {
		if r := roleOf(t, b, 1); r != "" {
			t.Errorf("node %s still lists node 1 as %q", flagValue(t, b, "--node-id"), r)
		}
	}
	waitFor(t, 20*time.Second, "node 1 noticing its removal", func() bool {
		return strings.Contains(nodes[0].Logs(), "this node was removed from the cluster")
	})
	// The others drop node 1 from their transports: it is no longer a
	// peer (the two others remain), and its redials are refused (node 1,
	// the lowest id, dials every other node).
	for _, b := range rest {
		waitFor(t, 20*time.Second, "node 1 dropped from a transport", func() bool {
			sc := b.scrape(t)
			peers, ok1 := sc.value("sluice_cluster_transport_peers")
			refused, ok2 := sc.value("sluice_cluster_transport_handshake_refusals_total", "reason=unknown-node")
			return ok1 && ok2 && peers == 2 && refused >= 1
		})
	}
	waitFor(t, 20*time.Second, "a change through node 4", func() bool {
		code, _ := n4.httpDo(t, "guest", "guest", "PUT", "/api/users/bob", map[string]any{"password": "builder", "tags": "management"})
		return code == 201 || code == 204
	})
	for _, b := range rest {
		waitFor(t, 10*time.Second, "bob known on nodes 2, 3, 4", func() bool {
			code, _ := b.httpDo(t, "bob", "builder", "GET", "/api/whoami", nil)
			return code == 200
		})
	}
	if code, _ := nodes[0].httpDo(t, "bob", "builder", "GET", "/api/whoami", nil); code == 200 {
		t.Error("the removed node 1 received a change made after its removal")
	}

	// Stop node 3: removing node 2 would leave 3 (stopped) and 4, no
	// majority running.
	nodes[2].Stop()
	waitFor(t, 30*time.Second, "node 3 seen stopped", func() bool {
		return agreedLeader(t, []*broker{nodes[1], n4}, 3, map[uint64]bool{2: true, 3: false, 4: true}) != 0
	})
	failAdmin(t, n4, nil, "majority", "cluster", "remove-node", "--node-id", "2")
	if r := roleOf(t, n4, 2); r != "leader" && r != "follower" {
		t.Fatalf("node 2 is %q after a refused removal", r)
	}
	// Removing the stopped node leaves 2 and 4, both running.
	mustAdmin(t, n4, "cluster", "remove-node", "--node-id", "3")
	waitFor(t, 30*time.Second, "nodes 2 and 4, one leader", func() bool {
		return agreedLeader(t, []*broker{nodes[1], n4}, 2, map[uint64]bool{2: true, 4: true}) != 0
	})
	waitFor(t, 20*time.Second, "a change with two voters", func() bool {
		code, _ := nodes[1].httpDo(t, "guest", "guest", "PUT", "/api/users/carol", map[string]any{"password": "c", "tags": "management"})
		return code == 201 || code == 204
	})
}

// TestClusterMembershipOnASingleNode: a server without cluster settings
// has no members to change, and says so.
func TestClusterMembershipOnASingleNode(t *testing.T) {
	b := startBroker(t)
	failAdmin(t, b, nil, "not a node of a cluster", "cluster", "add-node", "--node-id", "2", "--cluster-addr", "127.0.0.1:9190")
	failAdmin(t, b, nil, "not a node of a cluster", "cluster", "remove-node", "--node-id", "1")
}
