package groups

import (
	"bytes"
	"context"
	"time"
)

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Group, MemberID, InstanceID, ClientID, ClientHost, ProtocolType string
	Protocols                                                       []Protocol // in order of preference

	// SessionTimeout must be within [MinSessionTimeout, MaxSessionTimeout].
	// RebalanceTimeout bounds how long a join phase waits for this member
	// to rejoin; zero (JoinGroup v0) means SessionTimeout.
	SessionTimeout, RebalanceTimeout time.Duration

	// RequireKnownMemberID (JoinGroup v4+, KIP-394): a dynamic member
	// without a member id is answered ErrMemberIDRequired with a MemberID to
	// join with, instead of joining at once.
	RequireKnownMemberID bool

	// SupportsSkipAssignment (JoinGroup v9+, KIP-814): when a static leader
	// rejoins a Stable group without changing its protocols, it is told it
	// leads (with the members) but must not compute a new assignment.
	SupportsSkipAssignment bool

	Reason string // informational (JoinGroup v8+)
}

// JoinResult is the answer to a JoinGroup request. On error Generation is -1
// and MemberID is the one to report (for ErrMemberIDRequired, the assigned
// one).
type JoinResult struct {
	Err                                        error
	Generation                                 int32
	ProtocolType, Protocol, LeaderID, MemberID string
	SkipAssignment                             bool
	Members                                    []Member // the leader's only
}

// Join adds a member to a group or rejoins it, starting a rebalance if the
// group needs one. It blocks until the join phase completes (every member
// has rejoined, or the rebalance timeout elapsed and the dynamic members
// that did not rejoin were removed), ctx is done (the member's pending join
// is abandoned and ctx's error returned; a member that never completed a
// join is removed), or the coordinator closes (ErrCoordinatorNotAvailable).
//
// A rejoin that changes nothing in a Stable group, and a static member
// (InstanceID) replacing its previous incarnation in a Stable group without
// changing the selected protocol, return the current generation at once.
func (c *Coordinator) Join(ctx context.Context, r JoinRequest) JoinResult {
	fail := func(err error) JoinResult { return JoinResult{Err: err, MemberID: r.MemberID, Generation: -1} }
	switch {
	case r.Group == "":
		return fail(ErrInvalidGroupID)
	case r.SessionTimeout < c.opts.MinSessionTimeout || r.SessionTimeout > c.opts.MaxSessionTimeout:
		return fail(ErrInvalidSessionTimeout)
	case r.ProtocolType == "" || len(r.Protocols) == 0:
		return fail(ErrInconsistentProtocol)
	}
	if r.RebalanceTimeout <= 0 {
		r.RebalanceTimeout = r.SessionTimeout
	}
	// The caller's buffers may be reused once we return; the group keeps these.
	ps := make([]Protocol, len(r.Protocols))
	for i, p := range r.Protocols {
		ps[i] = Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	r.Protocols = ps

	g, err := c.lockGroup(r.Group, r.MemberID == "")
	if err != nil {
		return fail(err)
	}
	if g == nil {
		return fail(ErrUnknownMemberID)
	}
	if g.consumer != nil {
		if len(g.consumer.members) > 0 {
			g.mu.Unlock()
			return fail(ErrInconsistentProtocol) // a live consumer group
		}
		g.consumer = nil // an empty consumer group becomes a classic group
		g.protocolType = ""
	}
	now := c.opts.Now()
	var (
		res JoinResult
		m   *member
		w   *joinWaiter
	)
	if r.MemberID == "" {
		res, m, w = g.joinNewLocked(r, now)
	} else {
		res, m, w = g.joinKnownLocked(r, now)
	}
	g.tryCompleteJoinLocked(now)
	var id string
	if m != nil {
		id = m.id // m.id changes (under g.mu) if a static member is replaced
	}
	g.mu.Unlock()
	if w == nil {
		return res
	}
	return c.awaitJoin(ctx, g, m, id, w)
}

func (c *Coordinator) awaitJoin(ctx context.Context, g *group, m *member, id string, w *joinWaiter) JoinResult {
	select {
	case res := <-w.ch:
		return res
	case <-c.done:
		return JoinResult{Err: ErrCoordinatorNotAvailable, MemberID: id, Generation: -1}
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case res := <-w.ch: // answered meanwhile: the member is in the generation
		return res
	default:
	}
	// Every path that detaches a waiter answers it, so w is still m's.
	if m.join == w {
		m.join = nil
		now := c.opts.Now()
		if m.isNew {
			g.removeMemberAndUpdateLocked(m, ErrUnknownMemberID, now)
		} else {
			m.touch(now)
		}
	}
	return JoinResult{Err: ctx.Err(), MemberID: id, Generation: -1}
}

func (g *group) joinNewLocked(r JoinRequest, now time.Time) (JoinResult, *member, *joinWaiter) {
	fail := func(err error) (JoinResult, *member, *joinWaiter) {
		return JoinResult{Err: err, Generation: -1}, nil, nil
	}
	id := newMemberID(r.ClientID)
	if r.InstanceID != "" {
		if old := g.members[g.static[r.InstanceID]]; old != nil {
			if !g.supportsLocked(old.id, r.ProtocolType, r.Protocols) {
				return fail(ErrInconsistentProtocol)
			}
			return g.replaceStaticLocked(old, id, r, now)
		}
	}
	if !g.supportsLocked("", r.ProtocolType, r.Protocols) {
		return fail(ErrInconsistentProtocol)
	}
	if r.InstanceID == "" && r.RequireKnownMemberID {
		g.pending[id] = now.Add(r.SessionTimeout)
		return JoinResult{Err: ErrMemberIDRequired, MemberID: id, Generation: -1}, nil, nil
	}
	return g.addAndRebalanceLocked(id, r, now)
}

func (g *group) joinKnownLocked(r JoinRequest, now time.Time) (JoinResult, *member, *joinWaiter) {
	fail := func(err error) (JoinResult, *member, *joinWaiter) {
		return JoinResult{Err: err, MemberID: r.MemberID, Generation: -1}, nil, nil
	}
	if _, ok := g.pending[r.MemberID]; ok && (r.InstanceID == "" || g.static[r.InstanceID] == "") {
		if !g.supportsLocked("", r.ProtocolType, r.Protocols) {
			return fail(ErrInconsistentProtocol)
		}
		return g.addAndRebalanceLocked(r.MemberID, r, now)
	}
	m, err := g.validateMemberLocked(r.MemberID, r.InstanceID)
	if err != nil {
		return fail(err)
	}
	if !g.supportsLocked(m.id, r.ProtocolType, r.Protocols) {
		return fail(ErrInconsistentProtocol)
	}
	m.touch(now)
	switch g.state {
	case stateCompletingRebalance:
		if m.matches(r.ProtocolType, r.Protocols) {
			// A retry of a join that already completed.
			return g.joinResultLocked(m), nil, nil
		}
	case stateStable:
		if m.id != g.leader && m.matches(r.ProtocolType, r.Protocols) {
			return g.joinResultLocked(m), nil, nil
		}
	}
	g.updateMemberLocked(m, r)
	w := m.awaitJoin()
	g.maybePrepareRebalanceLocked(now)
	return JoinResult{}, m, w
}

// addAndRebalanceLocked adds a new member waiting to join, starting a
// rebalance unless one is preparing.
func (g *group) addAndRebalanceLocked(id string, r JoinRequest, now time.Time) (JoinResult, *member, *joinWaiter) {
	m := &member{
		id:               id,
		instanceID:       r.InstanceID,
		clientID:         r.ClientID,
		clientHost:       r.ClientHost,
		protocolType:     r.ProtocolType,
		protocols:        r.Protocols,
		sessionTimeout:   r.SessionTimeout,
		rebalanceTimeout: r.RebalanceTimeout,
		isNew:            true,
	}
	m.touch(now)
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.addMemberLocked(m)
	w := m.awaitJoin()
	g.maybePrepareRebalanceLocked(now)
	return JoinResult{}, m, w
}

// replaceStaticLocked gives a static member's place to its new incarnation
// newID (KIP-345). The old member id is fenced: its waiting Join or Sync,
// and every later request with it, get ErrFencedInstanceID. A Stable group
// whose selected protocol does not change keeps its generation and
// assignment; otherwise the group rebalances.
func (g *group) replaceStaticLocked(m *member, newID string, r JoinRequest, now time.Time) (JoinResult, *member, *joinWaiter) {
	prevLeader := g.leader
	oldID := m.id
	m.completeJoin(JoinResult{Err: ErrFencedInstanceID, MemberID: oldID, Generation: -1})
	m.completeSync(SyncResult{Err: ErrFencedInstanceID})
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[m.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	m.clientID, m.clientHost = r.ClientID, r.ClientHost
	g.updateMemberLocked(m, r)
	m.touch(now)

	switch g.state {
	case stateStable:
		if g.selectProtocolLocked() == g.protocol {
			res := JoinResult{
				Generation:   g.generation,
				ProtocolType: g.protocolType,
				Protocol:     g.protocol,
				MemberID:     newID,
				// An old client that led must not believe it still leads: it
				// would compute an assignment a Stable group never sends.
				LeaderID: prevLeader,
			}
			if r.SupportsSkipAssignment {
				res.LeaderID = g.leader
				if g.leader == newID {
					res.Members = g.membersLocked()
					res.SkipAssignment = true
				}
			}
			return res, nil, nil
		}
	case statePreparingRebalance:
		return JoinResult{}, m, m.awaitJoin()
	}
	// CompletingRebalance: the leader may be assigning to the old member id,
	// so the generation must be redone. Stable with a protocol change: too.
	w := m.awaitJoin()
	g.prepareRebalanceLocked(now)
	return JoinResult{}, m, w
}

func (g *group) updateMemberLocked(m *member, r JoinRequest) {
	m.protocolType = r.ProtocolType
	m.protocols = r.Protocols
	m.sessionTimeout = r.SessionTimeout
	m.rebalanceTimeout = r.RebalanceTimeout
	if len(g.members) == 1 {
		g.protocolType = r.ProtocolType
	}
}

// awaitJoin registers a waiting Join; an earlier one from the same member
// (a retry on a new connection) is answered ErrRebalanceInProgress.
func (m *member) awaitJoin() *joinWaiter {
	m.completeJoin(JoinResult{Err: ErrRebalanceInProgress, MemberID: m.id, Generation: -1})
	w := &joinWaiter{ch: make(chan JoinResult, 1)}
	m.join = w
	return w
}
