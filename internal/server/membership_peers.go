package server

import (
	"slices"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// dropRemovedPeers makes the transport forget every node that is neither
// a member of the metadata group (voters, learners: this node's applied
// configuration) nor in the registry of nodes: a node removed with
// `sluice cluster remove-node`. Without it, the transport would redial a
// removed node for ever and admit it when it dials. A node being added is
// registered before it becomes a learner, so it is never dropped on its
// way in; one added again later is handed to the transport by syncPeers
// (its address is forgotten here so that syncPeers sees it as new).
// watchMembership calls it only while this node is a member: a removed
// node stops receiving changes and must not act on a stale view.
func (s *Server) dropRemovedPeers(voters, learners []cluster.NodeID) {
	c := s.cluster
	for _, id := range c.tr.Peers() {
		if slices.Contains(voters, id) || slices.Contains(learners, id) {
			continue
		}
		if _, ok := s.meta.Node(id); ok {
			continue
		}
		c.tr.RemovePeer(id)
		c.peers.mu.Lock()
		delete(c.peers.known, id)
		c.peers.mu.Unlock()
		s.log.Info("node-to-node transport: dropped a node that is no longer in the cluster", "node", id)
	}
}
