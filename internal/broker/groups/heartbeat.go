package groups

// Heartbeat keeps a member's session alive. It returns
// ErrRebalanceInProgress while the group prepares a rebalance, which tells
// the member to rejoin; ErrIllegalGeneration for a stale generation;
// ErrUnknownMemberID or ErrFencedInstanceID for a member that is not (or no
// longer) in the group.
func (c *Coordinator) Heartbeat(group, memberID, instanceID string, generation int32) error {
	if group == "" {
		return ErrInvalidGroupID
	}
	g, err := c.lockGroup(group, false)
	if err != nil {
		return err
	}
	if g == nil {
		return ErrUnknownMemberID
	}
	defer g.mu.Unlock()
	m, err := g.validateMemberLocked(memberID, instanceID)
	if err != nil {
		return err
	}
	if generation != g.generation {
		return ErrIllegalGeneration
	}
	m.touch(c.opts.Now())
	if g.state == statePreparingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

// LeaveMember names a member leaving: by member id, or (KIP-345) by instance
// id alone for a static member, or both (they must agree).
type LeaveMember struct {
	MemberID, InstanceID string
}

// Leave removes members from a group (LeaveGroup; v0-v2 carry one member,
// whose per-member error the front end reports as the top-level one). err is
// non-nil only when the whole request fails (ErrInvalidGroupID,
// ErrCoordinatorNotAvailable); perMember has one entry per member: nil,
// ErrUnknownMemberID or ErrFencedInstanceID. As in Kafka, leaving by member
// id alone also removes a static member; static consumers normally do not
// send LeaveGroup when they stop, which is what keeps their assignment
// across a restart.
func (c *Coordinator) Leave(group string, members []LeaveMember) (err error, perMember []error) {
	if group == "" {
		return ErrInvalidGroupID, nil
	}
	g, err := c.lockGroup(group, false)
	if err != nil {
		return err, nil
	}
	perMember = make([]error, len(members))
	if g == nil {
		for i := range perMember {
			perMember[i] = ErrUnknownMemberID
		}
		return nil, perMember
	}
	defer g.mu.Unlock()
	now := c.opts.Now()
	for i, lm := range members {
		id := lm.MemberID
		if id == "" && lm.InstanceID != "" {
			if id = g.static[lm.InstanceID]; id == "" {
				perMember[i] = ErrUnknownMemberID
				continue
			}
		}
		if _, ok := g.pending[id]; ok && lm.InstanceID == "" {
			delete(g.pending, id)
			g.tryCompleteJoinLocked(now)
			continue
		}
		m, err := g.validateMemberLocked(id, lm.InstanceID)
		if err != nil {
			perMember[i] = err
			continue
		}
		g.removeMemberAndUpdateLocked(m, ErrUnknownMemberID, now)
	}
	return nil, perMember
}

// ValidateCommit checks an OffsetCommit against the group; nil means the
// offsets may be stored. Generation -1 with no member id and no instance id
// is a commit by a client that manages its own partitions: it is allowed
// while the group is Empty (an unknown group is created Empty so that it is
// listed) and fails with ErrUnknownMemberID otherwise. Any other commit must
// come from a current member (ErrUnknownMemberID, ErrFencedInstanceID) of the
// current generation (ErrIllegalGeneration), and not while the group waits
// for the leader's assignment (ErrRebalanceInProgress). A commit during
// PreparingRebalance is allowed: members commit before they rejoin. A valid
// member commit also counts as a heartbeat.
func (c *Coordinator) ValidateCommit(group, memberID, instanceID string, generation int32) error {
	return c.validateCommit(group, memberID, instanceID, generation, false)
}

// ValidateTxnCommit is ValidateCommit for TxnOffsetCommit: the same checks,
// except that a commit without member information is allowed whatever the
// group's state (older TxnOffsetCommit versions carry none), and a commit
// during CompletingRebalance is allowed.
func (c *Coordinator) ValidateTxnCommit(group, memberID, instanceID string, generation int32) error {
	return c.validateCommit(group, memberID, instanceID, generation, true)
}

func (c *Coordinator) validateCommit(group, memberID, instanceID string, generation int32, txn bool) error {
	simple := generation < 0 && memberID == "" && instanceID == ""
	g, err := c.lockGroup(group, simple)
	if err != nil {
		return err
	}
	if g == nil {
		if generation >= 0 && !txn {
			return ErrIllegalGeneration
		}
		return ErrUnknownMemberID
	}
	defer g.mu.Unlock()
	if g.consumer != nil {
		if txn && simple {
			return nil
		}
		return g.consumer.validateCommitLocked(memberID, generation)
	}
	if simple {
		if !txn && g.state != stateEmpty {
			return ErrUnknownMemberID
		}
		return nil
	}
	m, err := g.validateMemberLocked(memberID, instanceID)
	if err != nil {
		return err
	}
	if generation != g.generation {
		return ErrIllegalGeneration
	}
	if !txn && g.state == stateCompletingRebalance {
		return ErrRebalanceInProgress
	}
	m.touch(c.opts.Now())
	return nil
}

// ValidateOffsetFetch checks an OffsetFetch (v9+) that names a member of a
// consumer group, as Kafka does: the member must exist
// (ErrUnknownMemberID) with this epoch (ErrStaleMemberEpoch). A fetch
// without member, and any fetch of a classic group, is allowed.
func (c *Coordinator) ValidateOffsetFetch(group string, memberID *string, epoch int32) error {
	if memberID == nil {
		return nil
	}
	g, err := c.lockGroup(group, false)
	if err != nil || g == nil {
		return err
	}
	defer g.mu.Unlock()
	if g.consumer == nil {
		return nil
	}
	if *memberID == "" && epoch < 0 {
		return nil
	}
	return g.consumer.validateCommitLocked(*memberID, epoch)
}

// ValidateConsumerTxnCommit checks a TxnOffsetCommit (v3+, KIP-447) to a
// consumer-protocol group: one that names a member must come from a member
// (ErrUnknownMemberID) at its current epoch (ErrStaleMemberEpoch). A commit
// without member information, and any commit to a classic or unknown
// group, passes (classic groups' transactional commits are not checked).
func (c *Coordinator) ValidateConsumerTxnCommit(group, memberID string, epoch int32) error {
	g, err := c.lockGroup(group, false)
	if err != nil || g == nil {
		return err
	}
	defer g.mu.Unlock()
	if g.consumer == nil || (memberID == "" && epoch < 0) {
		return nil
	}
	return g.consumer.validateCommitLocked(memberID, epoch)
}
