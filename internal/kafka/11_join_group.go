package kafka

// JoinGroup, versions 0-9.
//
// The group coordinator runs the classic protocol (internal/broker/groups):
// KIP-394 member ids (v4+: a new dynamic member is answered
// MEMBER_ID_REQUIRED with the id to rejoin with), KIP-345 static members
// (v5+), KIP-814 skip-assignment (v9). v0 has no rebalance timeout; the
// session timeout stands in for it. The join blocks this connection's
// responses until the join phase ends, as in Kafka; if the connection
// closes meanwhile the join is abandoned. Client hosts are reported as
// Kafka reports them ("/" and the IP). A share group's id is
// INCONSISTENT_GROUP_PROTOCOL, as in Kafka.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleJoinGroup(c *conn, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	jr := groups.JoinRequest{
		Group:                  req.Group,
		MemberID:               req.MemberID,
		InstanceID:             deref(req.InstanceID),
		ClientID:               c.clientID,
		ClientHost:             clientHost(c.nc.RemoteAddr()),
		ProtocolType:           req.ProtocolType,
		SessionTimeout:         millis(req.SessionTimeoutMillis),
		RebalanceTimeout:       millis(req.RebalanceTimeoutMillis),
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
		Reason:                 deref(req.Reason),
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, groups.Protocol{Name: p.Name, Metadata: p.Metadata})
	}

	if !c.allowedGroup(req.Group, auth.OpRead) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	if !c.coordinates(coordinatorGroup, req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	if c.s.broker.Shares().Exists(req.Group) {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code // a share group's id
		return resp, nil
	}
	res := c.s.groups.Join(c.ctx, jr)
	if abandoned(res.Err) {
		return nil, res.Err
	}
	resp.ErrorCode = errorCode(res.Err)
	resp.MemberID = res.MemberID // for MEMBER_ID_REQUIRED, the id to rejoin with
	if res.Err != nil {
		return resp, nil
	}
	resp.Generation = res.Generation
	resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
	resp.Protocol = kmsg.StringPtr(res.Protocol)
	resp.LeaderID = res.LeaderID
	resp.SkipAssignment = res.SkipAssignment
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, nullIfEmpty(m.InstanceID), m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
