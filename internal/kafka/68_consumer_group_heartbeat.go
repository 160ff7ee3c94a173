package kafka

// ConsumerGroupHeartbeat, versions 0-1 (KIP-848).
//
// The consumer group protocol: the member heartbeats its subscription and
// the partitions it owns, the coordinator (package groups) answers with its
// member epoch and, when it must hear it, its assignment computed by the
// server-side assignor (ServerAssignor "uniform", the default, or "range";
// any other name is UNSUPPORTED_ASSIGNOR). v1 members name themselves
// (MemberID is a client-made UUID); a v0 member joining without an id is
// given one. Each heartbeat carries the topics that exist now, so that
// subscriptions by name and by regex (RE2, matched against the whole name,
// internal topics excluded) follow topics as they are created, deleted and
// grown. The answer's HeartbeatIntervalMillis is the broker's
// group_consumer_heartbeat_interval. A group id that is a live classic group
// answers GROUP_ID_NOT_FOUND, as Kafka does with its migration policy off
// (a share group's id too, as in Kafka); a
// heartbeat of an unknown member (or group) answers UNKNOWN_MEMBER_ID,
// after which clients rejoin: membership is not kept across a broker
// restart, members rejoin (docs/kafka-compatibility.md).

import (
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleConsumerGroupHeartbeat(c *conn, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if code := c.groupMemberAllowed(req.Group, req.SubscribedTopicNames); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	if !c.coordinates(coordinatorGroup, req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	r := groups.ConsumerHeartbeatRequest{
		Group:                req.Group,
		MemberID:             req.MemberID,
		MemberEpoch:          req.MemberEpoch,
		InstanceID:           req.InstanceID,
		RackID:               req.RackID,
		RebalanceTimeoutMs:   req.RebalanceTimeoutMillis,
		SubscribedTopicNames: req.SubscribedTopicNames,
		SubscribedTopicRegex: req.SubscribedTopicRegex,
		ServerAssignor:       req.ServerAssignor,
		ClientID:             c.clientID,
		ClientHost:           clientHost(c.nc.RemoteAddr()),
	}
	if req.Version < 1 && req.MemberEpoch == 0 {
		r.MemberID = "" // v0: the coordinator names new members
	}
	if req.Topics != nil {
		r.Owned = make([]groups.TopicPartitions, 0, len(req.Topics))
		for _, t := range req.Topics {
			r.Owned = append(r.Owned, groups.TopicPartitions{ID: t.TopicID, Partitions: t.Partitions})
		}
	}
	if req.MemberEpoch >= 0 {
		r.Topics = c.groupTopics()
	}
	if c.s.broker.Shares().Exists(req.Group) {
		resp.ErrorCode, resp.ErrorMessage = kerr.GroupIDNotFound.Code, nullIfEmpty("Group "+req.Group+" is not a consumer group.")
		return resp, nil
	}
	res := c.s.groups.ConsumerHeartbeat(r)
	if res.Err != nil {
		resp.ErrorCode, resp.ErrorMessage = codeAndMessage(res.Err)
		return resp, nil
	}
	resp.MemberID = &res.MemberID
	resp.MemberEpoch = res.MemberEpoch
	resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval.Milliseconds())
	if res.Assignment != nil {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		a.Topics = make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(res.Assignment))
		for _, t := range res.Assignment {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID, at.Partitions = t.ID, t.Partitions
			a.Topics = append(a.Topics, at)
		}
		resp.Assignment = &a
	}
	return resp, nil
}

// groupTopics lists every topic for the group coordinator.
func (c *conn) groupTopics() []groups.TopicInfo {
	ts := c.s.broker.Topics()
	out := make([]groups.TopicInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, groups.TopicInfo{ID: t.ID, Name: t.Name, Partitions: int32(len(t.Partitions)), Internal: t.IsInternal()})
	}
	return out
}
