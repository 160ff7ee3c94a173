package kafka

// SyncGroup, versions 0-5.
//
// The leader's request carries every member's assignment and completes the
// rebalance; a follower's blocks this connection's responses until the
// leader's arrives (or the group rebalances again), as in Kafka. If the
// connection closes meanwhile the wait is abandoned. v5 protocol type and
// name are checked against the group's (INCONSISTENT_GROUP_PROTOCOL) and
// returned.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(c *conn, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if !c.allowedGroup(req.Group, auth.OpRead) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	if !c.coordinates(coordinatorGroup, req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	sr := groups.SyncRequest{
		Group:        req.Group,
		MemberID:     req.MemberID,
		InstanceID:   deref(req.InstanceID),
		ProtocolType: deref(req.ProtocolType),
		Protocol:     deref(req.Protocol),
		Generation:   req.Generation,
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}

	res := c.s.groups.Sync(c.ctx, sr)
	if abandoned(res.Err) {
		return nil, res.Err
	}
	if resp.ErrorCode = errorCode(res.Err); res.Err != nil {
		return resp, nil
	}
	resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
	resp.Protocol = kmsg.StringPtr(res.Protocol)
	resp.MemberAssignment = res.Assignment
	return resp, nil
}
