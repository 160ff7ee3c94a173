package kafka

// Heartbeat, versions 0-4.
//
// Keeps a member's session alive. REBALANCE_IN_PROGRESS tells the member
// to rejoin; ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID
// (v3+ static members) that it is no longer in the group, as in Kafka.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(c *conn, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !c.allowedGroup(req.Group, auth.OpRead) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	if !c.coordinates(coordinatorGroup, req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	resp.ErrorCode = errorCode(c.s.groups.Heartbeat(req.Group, req.MemberID, deref(req.InstanceID), req.Generation))
	return resp, nil
}
