package kafka

// ShareGroupDescribe, version 1 (KIP-932).
//
// Describes share groups: state (Empty or Stable: an assignment is
// computed at once and nothing is revoked), group epoch (also reported as
// the assignment epoch), assignor "simple", and each member's epoch,
// subscription and assignment. An unknown group answers
// GROUP_ID_NOT_FOUND. Authorized operations are not computed (no ACLs).

import (
	"fmt"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleShareGroupDescribe(c *conn, req *kmsg.ShareGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	for _, name := range req.GroupIDs {
		sg := kmsg.NewShareGroupDescribeResponseGroup()
		sg.GroupID = name
		sg.AuthorizedOperations = -2147483648
		if req.IncludeAuthorizedOperations {
			sg.AuthorizedOperations = c.authorizedOps(auth.ResourceGroup, name)
		}
		if !c.allowedGroup(name, auth.OpDescribe) {
			sg.ErrorCode = errGroupAuth.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		d, ok := c.s.broker.Shares().Describe(name)
		if !ok {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = nullIfEmpty(fmt.Sprintf("Group %s not found.", name))
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		sg.GroupState, sg.GroupEpoch, sg.AssignmentEpoch, sg.Assignor = d.State, d.Epoch, d.Epoch, "simple"
		for _, m := range d.Members {
			sm := kmsg.NewShareGroupDescribeResponseGroupMember()
			sm.MemberID, sm.RackID, sm.MemberEpoch = m.ID, nullIfEmpty(m.RackID), m.Epoch
			sm.ClientID, sm.ClientHost = m.ClientID, m.ClientHost
			sm.SubscribedTopicNames = m.Subscribed
			if sm.SubscribedTopicNames == nil {
				sm.SubscribedTopicNames = []string{}
			}
			for _, t := range m.Assignment {
				at := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
				at.TopicID, at.Topic, at.Partitions = t.ID, t.Name, t.Partitions
				sm.Assignment.TopicPartitions = append(sm.Assignment.TopicPartitions, at)
			}
			sg.Members = append(sg.Members, sm)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
