package kafka

// DescribeGroups, versions 0-5.
//
// As in Kafka, an unknown group is answered with state "Dead" and no
// error, and the selected protocol, member metadata and assignments are
// filled only while the group is Stable. A group the coordinator does not
// hold but that has committed offsets is described as Empty; a group
// without a protocol type that has offsets reports "consumer", as
// ListGroups lists it. Authorized operations (v3+, KIP-430) are computed
// when asked for, else reported as not requested (-2147483648). A
// consumer-protocol group (KIP-848) is not a classic group: as in Kafka it
// is answered GROUP_ID_NOT_FOUND with state "Dead" and no protocol type
// (what Kafka 4.2 answers); ConsumerGroupDescribe describes it.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeGroups(c *conn, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		if !c.allowedGroup(name, auth.OpDescribe) {
			sg := kmsg.NewDescribeGroupsResponseGroup()
			sg.Group, sg.ErrorCode = name, errGroupAuth.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		if !c.coordinates(coordinatorGroup, name) {
			sg := kmsg.NewDescribeGroupsResponseGroup()
			sg.Group, sg.ErrorCode = name, kerr.NotCoordinator.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		sg := c.describeGroup(name)
		if req.IncludeAuthorizedOperations && req.Version >= 3 {
			sg.AuthorizedOperations = c.authorizedOps(auth.ResourceGroup, name)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func (c *conn) describeGroup(name string) kmsg.DescribeGroupsResponseGroup {
	sg := kmsg.NewDescribeGroupsResponseGroup()
	sg.Group = name
	d, ok := c.s.groups.Describe(name)
	offsets := c.hasOffsets(name)
	switch {
	case !ok && offsets:
		d = groups.GroupDescription{Group: name, State: groups.StateEmpty}
	case !ok:
		d = groups.GroupDescription{Group: name, State: groups.StateDead}
	}
	if d.ProtocolType == "" && offsets {
		d.ProtocolType = offsetsProtocolType
	}
	if d.Type == groups.TypeConsumer {
		sg.ErrorCode, sg.State = kerr.GroupIDNotFound.Code, groups.StateDead
		return sg
	}
	sg.State, sg.ProtocolType, sg.Protocol = d.State, d.ProtocolType, d.Protocol
	for _, m := range d.Members {
		sm := kmsg.NewDescribeGroupsResponseGroupMember()
		sm.MemberID, sm.InstanceID = m.MemberID, nullIfEmpty(m.InstanceID)
		sm.ClientID, sm.ClientHost = m.ClientID, m.ClientHost
		sm.ProtocolMetadata, sm.MemberAssignment = m.Metadata, m.Assignment
		sg.Members = append(sg.Members, sm)
	}
	return sg
}
