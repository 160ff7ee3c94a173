package transport

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// TestRemovePeerThatDials: nodes 2 and 3 forget node 1, which dials them
// (the lower id dials): their connections close, node 1's handshakes are
// refused as from an unknown node, messages to it are dropped, and it is
// no longer among their peers; nodes 2 and 3 still talk.
func TestRemovePeerThatDials(t *testing.T) {
	nodes := startNodes(t, 3, nil)
	waitMesh(t, nodes)
	nodes[2].RemovePeer(1)
	nodes[3].RemovePeer(1)
	waitFor(t, "node 1 cut off", func() bool {
		return !nodes[2].Reachable(1) && !nodes[3].Reachable(1) && !nodes[1].Reachable(2) && !nodes[1].Reachable(3)
	})
	waitFor(t, "node 1's redials refused", func() bool {
		return nodes[2].Stats().Refusals[ReasonUnknownNode.String()] >= 1 && nodes[3].Stats().Refusals[ReasonUnknownNode.String()] >= 1 &&
			nodes[1].Stats().Refusals[ReasonByPeer.String()] >= 2
	})
	if got := nodes[2].Peers(); !slices.Equal(got, []cluster.NodeID{3}) || nodes[2].Stats().Peers != 1 {
		t.Fatalf("node 2's peers %v (%d), want [3]", got, nodes[2].Stats().Peers)
	}
	before := nodes[2].Stats().DroppedUnreachable
	nodes[2].Send(1, msgs(2, 1, 0, 3, 1))
	if d := nodes[2].Stats().DroppedUnreachable - before; d != 3 {
		t.Fatalf("%d messages to the removed node dropped, want 3", d)
	}
	nodes[2].Send(3, msgs(2, 3, 0, 4, 1))
	waitFor(t, "2 and 3 still talk", func() bool { return nodes[3].in.count(2) == 4 })
	if nodes[2].in.count(1)+nodes[3].in.count(1) != 0 {
		t.Fatal("a removed node's message was delivered")
	}
	// Removing it again, or an unknown node, or itself, is harmless.
	nodes[2].RemovePeer(1)
	nodes[2].RemovePeer(9)
	nodes[2].RemovePeer(2)

	// Added back, it connects again.
	nodes[2].SetPeerAddr(1, nodes[1].Addr())
	waitFor(t, "node 1 back", func() bool { return nodes[2].Reachable(1) && nodes[1].Reachable(2) })
	nodes[1].Send(2, msgs(1, 2, 0, 2, 1))
	waitFor(t, "traffic from node 1 again", func() bool { return nodes[2].in.count(1) == 2 })
}

// TestRemovePeerDialled: node 1 forgets node 2, which it dials: the
// connection closes and node 1 stops dialling it.
func TestRemovePeerDialled(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	waitMesh(t, nodes)
	nodes[1].RemovePeer(2)
	waitFor(t, "node 2 cut off", func() bool { return !nodes[1].Reachable(2) && !nodes[2].Reachable(1) })
	// No redial: node 2's handshake count stays put over many backoff
	// periods (MaxBackoff is 100ms here).
	hs := nodes[2].Stats().Handshakes
	time.Sleep(600 * time.Millisecond)
	if got := nodes[2].Stats().Handshakes; got != hs || nodes[2].Reachable(1) {
		t.Fatalf("node 1 redialled the removed node 2: handshakes %d -> %d", hs, got)
	}
	if len(nodes[1].Peers()) != 0 {
		t.Fatalf("node 1's peers %v", nodes[1].Peers())
	}
	nodes[1].SetPeerAddr(2, nodes[2].Addr())
	waitFor(t, "node 2 back", func() bool { return nodes[1].Reachable(2) && nodes[2].Reachable(1) })
}
