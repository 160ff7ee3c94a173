package groups

import (
	"bytes"
	"context"
)

// SyncRequest is a SyncGroup request. Assignments (member id → assignment)
// is read from the leader only. ProtocolType and Protocol (SyncGroup v5+)
// are checked against the group's when non-empty.
type SyncRequest struct {
	Group, MemberID, InstanceID, ProtocolType, Protocol string
	Generation                                          int32
	Assignments                                         map[string][]byte
}

// SyncResult is the answer to a SyncGroup request.
type SyncResult struct {
	Err                    error
	ProtocolType, Protocol string
	Assignment             []byte
}

// Sync completes a member's part of a rebalance. The leader's call
// distributes its assignments (members it left out get an empty one) and
// makes the group Stable; a follower's call blocks until then, until the
// group rebalances again (ErrRebalanceInProgress), ctx is done (ctx's
// error), or the coordinator closes (ErrCoordinatorNotAvailable). In a
// Stable group it returns the member's current assignment at once.
func (c *Coordinator) Sync(ctx context.Context, r SyncRequest) SyncResult {
	if r.Group == "" {
		return SyncResult{Err: ErrInvalidGroupID}
	}
	g, err := c.lockGroup(r.Group, false)
	if err != nil {
		return SyncResult{Err: err}
	}
	if g == nil {
		return SyncResult{Err: ErrUnknownMemberID}
	}
	m, w, res := g.syncLocked(r, c)
	g.mu.Unlock()
	if w == nil {
		return res
	}
	select {
	case res := <-w.ch:
		return res
	case <-c.done:
		return SyncResult{Err: ErrCoordinatorNotAvailable}
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case res := <-w.ch:
		return res
	default:
	}
	if m.sync == w {
		m.sync = nil
		m.touch(c.opts.Now())
	}
	return SyncResult{Err: ctx.Err()}
}

func (g *group) syncLocked(r SyncRequest, c *Coordinator) (*member, *syncWaiter, SyncResult) {
	fail := func(err error) (*member, *syncWaiter, SyncResult) { return nil, nil, SyncResult{Err: err} }
	m, err := g.validateMemberLocked(r.MemberID, r.InstanceID)
	switch {
	case err != nil:
		return fail(err)
	case r.Generation != g.generation:
		return fail(ErrIllegalGeneration)
	case r.ProtocolType != "" && r.ProtocolType != g.protocolType,
		r.Protocol != "" && r.Protocol != g.protocol:
		return fail(ErrInconsistentProtocol)
	}
	now := c.opts.Now()
	switch g.state {
	case statePreparingRebalance:
		return fail(ErrRebalanceInProgress)
	case stateStable:
		delete(g.pendingSync, m.id)
		m.touch(now)
		return nil, nil, SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
	case stateCompletingRebalance:
		delete(g.pendingSync, m.id)
		m.touch(now)
		w := m.awaitSync()
		if m.id == g.leader {
			for id, o := range g.members {
				o.assignment = bytes.Clone(r.Assignments[id])
				if o.assignment == nil {
					o.assignment = []byte{}
				}
			}
			g.state = stateStable
			for _, o := range g.members {
				if o.sync != nil {
					o.completeSync(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment})
					o.touch(now)
				}
			}
		}
		return m, w, SyncResult{}
	default:
		return fail(ErrUnknownMemberID)
	}
}

// awaitSync registers a waiting Sync; an earlier one from the same member
// (a retry on a new connection) is answered ErrRebalanceInProgress.
func (m *member) awaitSync() *syncWaiter {
	m.completeSync(SyncResult{Err: ErrRebalanceInProgress})
	w := &syncWaiter{ch: make(chan SyncResult, 1)}
	m.sync = w
	return w
}
