package kafka

// ShareGroupHeartbeat, version 1 (KIP-932; v0 was Kafka 4.0's early
// access).
//
// A share group's members join (epoch 0, with a client-made member id),
// heartbeat and leave (epoch -1) as in the consumer group protocol. The
// assignment gives every member every partition of the topics it
// subscribes to: members of a share group share partitions, and the
// acquisition locks of ShareFetch keep their records apart. An assignment
// is sent when it changes (a join, a new subscription, partitions added).
// A group id held by a classic or consumer group answers
// INCONSISTENT_GROUP_PROTOCOL; an unknown member UNKNOWN_MEMBER_ID, after
// which the client rejoins. Membership is not kept across a restart; the
// share-partitions' state is.

import (
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleShareGroupHeartbeat(c *conn, req *kmsg.ShareGroupHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	if req.GroupID == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if code := c.groupMemberAllowed(req.GroupID, req.SubscribedTopicNames); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	if _, ok := c.s.groups.Describe(req.GroupID); ok {
		resp.ErrorCode, resp.ErrorMessage = kerr.InconsistentGroupProtocol.Code, nullIfEmpty("Group "+req.GroupID+" is not a share group.")
		return resp, nil
	}
	res, interval, err := c.s.broker.Shares().Heartbeat(broker.ShareHeartbeat{
		Group: req.GroupID, MemberID: req.MemberID, Epoch: req.MemberEpoch, RackID: req.RackID,
		Subscribed: req.SubscribedTopicNames, ClientID: c.clientID, ClientHost: clientHost(c.nc.RemoteAddr()),
	})
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = shareCodeAndMessage(err)
		return resp, nil
	}
	resp.MemberID = &res.MemberID
	resp.MemberEpoch = res.Epoch
	resp.HeartbeatIntervalMillis = int32(interval.Milliseconds())
	if res.Assignment != nil {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		a.TopicPartitions = []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
		for _, t := range res.Assignment {
			at := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			at.TopicID, at.Partitions = t.ID, t.Partitions
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		resp.Assignment = &a
	}
	return resp, nil
}
