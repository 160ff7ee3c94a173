package transport

import (
	"slices"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// RemovePeer forgets node id, a node removed from the cluster: its
// connection is closed, its queue dropped, it is no longer dialled, and a
// handshake from it is refused as from any node that is not a peer
// (ReasonUnknownNode) unless SetAcceptUnknown is on. Messages to it are
// dropped as unreachable. SetPeerAddr makes it a peer again (a node
// added back). Without this, a removed node would stay a peer for ever:
// redialled every MaxBackoff, and admitted if it dialled.
func (t *Transport) RemovePeer(id cluster.NodeID) {
	if id == t.cfg.NodeID || id == 0 {
		return
	}
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	// The dial loop ends when it sees removed (or as soon as a dial in
	// progress completes: serve refuses a removed peer's connection).
	p.removed = true
	p.addr = ""
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
	p.poke()
	t.log.Info("cluster peer removed", "peer", id)
}

// Peers lists the other nodes the transport knows, by id: those it was
// given (New, SetPeerAddr), and those it admitted (SetAcceptUnknown) or
// blocked, until RemovePeer.
func (t *Transport) Peers() []cluster.NodeID {
	t.mu.Lock()
	out := make([]cluster.NodeID, 0, len(t.peers))
	for id := range t.peers {
		out = append(out, id)
	}
	t.mu.Unlock()
	slices.Sort(out)
	return out
}
