package kafka

// ConsumerGroupDescribe, versions 0-1 (KIP-848).
//
// Describes consumer-protocol groups: group epoch, target assignment epoch,
// assignor, state (Empty, Reconciling or Stable; a target assignment is
// computed at once, so never Assigning) and each member's epoch,
// subscription, current and target assignment. As in Kafka, an unknown
// group, and a classic group, answer GROUP_ID_NOT_FOUND. MemberType (v1) is
// 1, a consumer-protocol member. Authorized operations are not computed
// (Sluice has no ACLs) and reported as not requested.

import (
	"fmt"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleConsumerGroupDescribe(c *conn, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewConsumerGroupDescribeResponseGroup()
		sg.Group = name
		d, ok, isConsumer := c.s.groups.DescribeConsumer(name)
		switch {
		case !c.allowedGroup(name, auth.OpDescribe):
			sg.ErrorCode = errGroupAuth.Code
		case !c.coordinates(coordinatorGroup, name):
			sg.ErrorCode = kerr.NotCoordinator.Code
		case !ok:
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = nullIfEmpty(fmt.Sprintf("Group %s not found.", name))
		case !isConsumer:
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = nullIfEmpty(fmt.Sprintf("Group %s is not a consumer group.", name))
		default:
			sg.State, sg.Epoch, sg.AssignmentEpoch, sg.AssignorName = d.State, d.Epoch, d.AssignmentEpoch, d.Assignor
			for _, m := range d.Members {
				sm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				sm.MemberID, sm.InstanceID, sm.RackID = m.MemberID, nullIfEmpty(m.InstanceID), nullIfEmpty(m.RackID)
				sm.MemberEpoch, sm.ClientID, sm.ClientHost = m.MemberEpoch, m.ClientID, m.ClientHost
				sm.SubscribedTopics = m.SubscribedTopicNames
				if sm.SubscribedTopics == nil {
					sm.SubscribedTopics = []string{}
				}
				sm.SubscribedTopicRegex = nullIfEmpty(m.SubscribedTopicRegex)
				sm.Assignment = describedAssignment(m.Assignment)
				sm.TargetAssignment = describedAssignment(m.TargetAssignment)
				sm.MemberType = 1
				sg.Members = append(sg.Members, sm)
			}
		}
		sg.AuthorizedOperations = -2147483648
		if req.IncludeAuthorizedOperations && sg.ErrorCode == 0 {
			sg.AuthorizedOperations = c.authorizedOps(auth.ResourceGroup, name)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func describedAssignment(tps []groups.TopicPartitions) kmsg.Assignment {
	a := kmsg.NewAssignment()
	a.TopicPartitions = make([]kmsg.AssignmentTopicPartition, 0, len(tps))
	for _, t := range tps {
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Topic, at.Partitions = t.ID, t.Name, t.Partitions
		a.TopicPartitions = append(a.TopicPartitions, at)
	}
	return a
}
