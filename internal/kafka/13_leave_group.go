package kafka

// LeaveGroup, versions 0-5.
//
// v0-2 name one member and answer with its error at the top level; v3+
// (KIP-345) name several, by member id or by instance id, and answer each
// with its own error, the top-level error being set only when the whole
// request fails. The v5 leave reason is accepted and not recorded.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(c *conn, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !c.allowedGroup(req.Group, auth.OpRead) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	if !c.coordinates(coordinatorGroup, req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	if req.Version < 3 {
		err, perMember := c.s.groups.Leave(req.Group, []groups.LeaveMember{{MemberID: req.MemberID}})
		if err == nil {
			err = perMember[0]
		}
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}

	members := make([]groups.LeaveMember, len(req.Members))
	for i, m := range req.Members {
		members[i] = groups.LeaveMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID)}
	}
	err, perMember := c.s.groups.Leave(req.Group, members)
	if resp.ErrorCode = errorCode(err); err != nil {
		return resp, nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, errorCode(perMember[i])
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
