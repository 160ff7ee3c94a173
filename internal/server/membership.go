package server

// Adding and removing nodes of a running cluster (docs/clustering.md,
// "Adding and removing nodes"). A node started with cluster_join does not
// bootstrap the metadata group: it waits, with empty Raft storage, for a
// member to add it. Adding is two Raft configuration changes: the node
// first becomes a learner (it receives the log but does not vote), and the
// metadata leader promotes it to voter once it has caught up. Removing is
// one change, then the node leaves the registry of nodes.
//
// The registry of nodes (meta.Node) is where every node learns the others'
// cluster addresses after bootstrap: a loop on every node (watchMembership)
// hands new and moved addresses to the transport, promotes caught-up
// learners when this node leads, and notices when this node has been
// removed.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/mgmt"
)

const (
	// membershipInterval is how often watchMembership looks at the
	// registry and the configuration: a new node's address reaches the
	// transport within it, a caught-up learner is promoted within it.
	membershipInterval = 200 * time.Millisecond
	// membershipTimeout bounds an add or remove request: the change must
	// have applied on this node by then.
	membershipTimeout = 15 * time.Second
	// joinLogEvery is how often a node waiting to be added says so.
	joinLogEvery = 15 * time.Second
)

// ErrStartInterrupted: SIGINT or SIGTERM arrived while a joining node was
// waiting to be added; the server did not start, on purpose.
var ErrStartInterrupted = errors.New("server start interrupted by a signal")

// waitToJoin is openClusterMeta's wait for a node started with
// cluster_join: without a deadline, since the operator adds it whenever
// they choose, logging what to run. A SIGINT or SIGTERM ends the wait
// (server start fails), since the signal handler of the caller acts only
// once the server has started. done reports whether the node has joined
// and caught up.
func (s *Server) waitToJoin(done func() (bool, error)) error {
	c := s.cluster
	sig := c.startSig
	nextLog := time.Now()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(nextLog) {
			voters, learners, _ := c.host.Membership(cluster.MetaGroup)
			if len(voters) == 0 && len(learners) == 0 {
				addr := s.cfg.NodeAddrs().ClusterAddr
				s.log.Warn(fmt.Sprintf("waiting to be added to the cluster: run `sluice cluster add-node --node-id %d --cluster-addr %s --http <a member's management API>`", c.cfg.NodeID, addr),
					"node_id", c.cfg.NodeID, "cluster_addr", addr)
			} else {
				s.log.Info("joined the cluster, catching up", "voters", voters, "learners", learners)
			}
			nextLog = time.Now().Add(joinLogEvery)
		}
		select {
		case <-s.stop:
			return errors.New("stopped while waiting to join the cluster")
		case v := <-sig:
			return fmt.Errorf("%w (%s) while waiting to join the cluster", ErrStartInterrupted, v)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// peerSync hands the registry's cluster addresses to the transport.
type peerSync struct {
	mu    sync.Mutex
	known map[cluster.NodeID]string
}

// syncPeers gives the transport every registered node's cluster address
// that it was not given yet. It runs from the start: a restarting node
// rebuilds its registry from its own log before it has a leader, and may
// need those addresses to reach the leader at all (a node that joined
// knows only some members from its settings).
func (s *Server) syncPeers(m *meta.Store) {
	c := s.cluster
	c.peers.mu.Lock()
	defer c.peers.mu.Unlock()
	if c.peers.known == nil {
		c.peers.known = make(map[cluster.NodeID]string)
	}
	for _, n := range m.Nodes() {
		if n.ID != c.cfg.NodeID && n.ClusterAddr != "" && c.peers.known[n.ID] != n.ClusterAddr {
			c.tr.SetPeerAddr(n.ID, n.ClusterAddr)
			c.peers.known[n.ID] = n.ClusterAddr
		}
	}
}

// watchMembership runs until the server stops: see the file comment.
func (s *Server) watchMembership() {
	c := s.cluster
	wasMember, reportedRemoved := false, false
	promoted := make(map[cluster.NodeID]time.Time)
	t := time.NewTicker(membershipInterval)
	defer t.Stop()
	for {
		s.syncPeers(s.meta)
		voters, learners, err := c.host.Membership(cluster.MetaGroup)
		if err == nil {
			member := slices.Contains(voters, c.cfg.NodeID) || slices.Contains(learners, c.cfg.NodeID)
			if member && !wasMember {
				// Every member is now in the registry or on its way:
				// strangers need no admission any more.
				c.tr.SetAcceptUnknown(false)
			}
			if wasMember && !member && !reportedRemoved {
				s.log.Warn("this node was removed from the cluster: it no longer takes part in the metadata group and receives no changes; stop it (to add it again, start it with an empty data directory and --cluster-join)",
					"node_id", c.cfg.NodeID, "voters", voters)
				reportedRemoved = true
			}
			wasMember = wasMember || member
			if member {
				s.dropRemovedPeers(voters, learners) // membership_peers.go
			}
		}
		for _, id := range c.host.CaughtUpLearners(cluster.MetaGroup) {
			// A promotion takes a round trip to apply: proposing it
			// again meanwhile would only add an empty entry.
			if time.Since(promoted[id]) < 2*time.Second {
				continue
			}
			promoted[id] = time.Now()
			err := c.host.PromoteLearner(context.Background(), cluster.MetaGroup, id)
			s.log.Info("promoting a caught-up learner to voter", "node", id, "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// membership is mgmt.Membership for this server.
type membership struct{ s *Server }

var _ mgmt.Membership = membership{}

func membershipErr(status int, format string, args ...any) error {
	return &mgmt.MembershipError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// proposalErr maps a failed proposal to its answer.
func proposalErr(what string, err error) error {
	switch {
	case errors.Is(err, multiraft.ErrProposalDropped), errors.Is(err, meta.ErrNoLeader):
		return membershipErr(http.StatusServiceUnavailable, "%s: the metadata group has no leader now; try again", what)
	case errors.Is(err, meta.ErrProposalTimeout), errors.Is(err, context.DeadlineExceeded):
		return membershipErr(http.StatusServiceUnavailable, "%s: not applied in time (a majority of the voters may be down); it may still apply", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// AddNode registers node id's cluster address (so that every node can
// reach it and admits it) and adds it as a learner; the leader's
// watchMembership promotes it once it has caught up. Adding a learner
// again is a no-op; adding a voter is refused.
func (m membership) AddNode(ctx context.Context, id uint64, clusterAddr string) (string, error) {
	s, c := m.s, m.s.cluster
	what := fmt.Sprintf("adding node %d", id)
	voters, learners, err := c.host.Membership(cluster.MetaGroup)
	if err != nil {
		return "", err
	}
	if slices.Contains(voters, id) {
		return "", membershipErr(http.StatusConflict, "node %d is already a voter of the cluster", id)
	}
	if n, ok := s.meta.Node(id); !ok || n.ClusterAddr != clusterAddr {
		if err := s.meta.RegisterNode(meta.Node{ID: id, ClusterAddr: clusterAddr}); err != nil {
			return "", proposalErr(what+" to the registry", err)
		}
	}
	c.tr.SetPeerAddr(id, clusterAddr)
	if slices.Contains(learners, id) {
		return "learner", nil
	}
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	role, err := m.change(ctx, what, func() error {
		return c.host.AddLearner(ctx, cluster.MetaGroup, id)
	}, func(voters, learners []cluster.NodeID) (string, bool) {
		switch {
		case slices.Contains(voters, id):
			return "follower", true
		case slices.Contains(learners, id):
			return "learner", true
		}
		return "", false
	})
	if err == nil {
		s.log.Info("node added to the cluster as a learner", "node", id, "cluster_addr", clusterAddr)
	}
	return role, err
}

// RemoveNode removes node id from the metadata group, refusing to remove
// the last voter or to leave fewer running voters than a majority of those
// that remain, then removes it from the registry. A node that is no member
// but still registered is only unregistered.
func (m membership) RemoveNode(ctx context.Context, id uint64) error {
	s, c := m.s, m.s.cluster
	what := fmt.Sprintf("removing node %d", id)
	voters, learners, err := c.host.Membership(cluster.MetaGroup)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	isVoter, isLearner := slices.Contains(voters, id), slices.Contains(learners, id)
	if !isVoter && !isLearner {
		if _, ok := s.meta.Node(id); !ok {
			return membershipErr(http.StatusNotFound, "node %d is not a node of the cluster", id)
		}
		return m.unregister(ctx, what, id)
	}
	if id == c.cfg.NodeID {
		// Once removed this node can propose nothing, and may never
		// learn that its removal committed (the leader stops sending to
		// it as soon as it applies the change): it could not answer.
		return membershipErr(http.StatusConflict, "node %d is the node asked: ask another member to remove it", id)
	}
	if isVoter {
		if err := s.checkRemovable(voters, id); err != nil {
			return err
		}
	}
	_, err = m.change(ctx, what, func() error {
		return c.host.RemoveMember(ctx, cluster.MetaGroup, id)
	}, func(voters, learners []cluster.NodeID) (string, bool) {
		return "", !slices.Contains(voters, id) && !slices.Contains(learners, id)
	})
	if err != nil {
		return err
	}
	s.log.Info("node removed from the cluster", "node", id)
	return m.unregister(ctx, what, id)
}

// checkRemovable refuses removing voter id from voters when it is the
// last one, or when the voters left would not have a majority running:
// the group could then commit nothing, not even a change that adds a
// node back. Running is what this node sees: itself and the voters its
// transport reaches, and when it leads, only those of them that have
// answered it within the last election timeout.
func (s *Server) checkRemovable(voters []cluster.NodeID, id uint64) error {
	c := s.cluster
	// Both views, when this node leads: the transport notices a stopped
	// node at once, the leader's view (reset every election timeout)
	// notices one that is up but not answering.
	active := c.host.ActiveVoters(cluster.MetaGroup)
	var running []cluster.NodeID
	for _, v := range voters {
		if (v == c.cfg.NodeID || c.tr.Reachable(v)) && (active == nil || slices.Contains(active, v)) {
			running = append(running, v)
		}
	}
	return removalRefusal(voters, running, id)
}

// removalRefusal is why removing voter id from voters, of which running
// are running, is refused; nil if it is not.
func removalRefusal(voters, running []cluster.NodeID, id uint64) error {
	if len(voters) == 1 && voters[0] == id {
		return membershipErr(http.StatusConflict, "node %d is the last voter of the cluster: removing it would leave no one to hold the metadata", id)
	}
	now := 0
	for _, v := range voters {
		if slices.Contains(running, v) {
			now++
		}
	}
	if need := len(voters)/2 + 1; now < need {
		return membershipErr(http.StatusConflict,
			"only %d of the voters %v are running, fewer than a majority (%d): the group can commit nothing, not even this change; start the stopped voters first",
			now, voters, need)
	}
	var left, up []cluster.NodeID
	for _, v := range voters {
		if v == id {
			continue
		}
		left = append(left, v)
		if slices.Contains(running, v) {
			up = append(up, v)
		}
	}
	if need := len(left)/2 + 1; len(up) < need {
		return membershipErr(http.StatusConflict,
			"removing node %d would leave voters %v of which only %v are running: a majority (%d) is needed to commit anything; start the stopped voters first, or remove a stopped one",
			id, left, up, need)
	}
	return nil
}

// change proposes a configuration change until this node has applied a
// configuration for which done holds (Raft drops a change proposed while
// another is pending, and a proposal can be lost with a leader), or ctx
// ends.
func (m membership) change(ctx context.Context, what string, propose func() error, done func(voters, learners []cluster.NodeID) (string, bool)) (string, error) {
	c := m.s.cluster
	var last error
	for {
		if err := propose(); err != nil {
			if !errors.Is(err, multiraft.ErrProposalDropped) {
				return "", proposalErr(what, err)
			}
			last = err
		}
		for range 10 {
			voters, learners, err := c.host.Membership(cluster.MetaGroup)
			if err != nil {
				return "", err
			}
			if r, ok := done(voters, learners); ok {
				return r, nil
			}
			select {
			case <-ctx.Done():
				if last == nil {
					last = ctx.Err()
				}
				return "", proposalErr(what, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// unregister removes node id from the registry, retrying while the
// metadata group has no leader (a removed leader steps down and the
// others elect a new one).
func (m membership) unregister(ctx context.Context, what string, id uint64) error {
	for {
		// A removed leader steps down, but this node may still take it
		// for the leader until the others elect one: a proposal
		// forwarded to it would be lost (and time out).
		var err error = meta.ErrNoLeader
		if l := m.s.cluster.host.Leader(cluster.MetaGroup); l != 0 && l != id {
			err = m.s.meta.UnregisterNode(id)
		}
		// Unregistering again is harmless: retry what may not have
		// applied.
		if err == nil || !(errors.Is(err, meta.ErrNoLeader) || errors.Is(err, meta.ErrProposalTimeout)) {
			if err != nil {
				return proposalErr(what+" from the registry", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return proposalErr(what+" from the registry", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
