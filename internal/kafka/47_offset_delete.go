package kafka

// OffsetDelete, version 0.
//
// Deletes a group's committed offsets for the named partitions. An
// unknown group is GROUP_ID_NOT_FOUND and a partition of an unknown topic
// UNKNOWN_TOPIC_OR_PARTITION. Kafka refuses, with GROUP_SUBSCRIBED_TO_TOPIC,
// only the topics an active consumer group subscribes to. So does Sluice
// for consumer-protocol groups (KIP-848); for classic groups it does not
// decode subscriptions and refuses every partition while the group has
// members.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(c *conn, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !c.allowedGroup(req.Group, auth.OpDelete) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	if !c.coordinates(coordinatorGroup, req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	if !c.groupExists(req.Group) {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	}
	var tps []broker.TopicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			if !c.mayTopic(rt.Topic, auth.OpRead) {
				sp.ErrorCode = errTopicAuth.Code
			} else if _, err := c.s.broker.Partition(rt.Topic, rp.Partition); err != nil {
				sp.ErrorCode = errorCode(err)
			} else if c.s.groups.SubscribedTo(req.Group, rt.Topic) {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else {
				tps = append(tps, broker.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(tps) > 0 { // never nil here: nil would delete every offset
		resp.ErrorCode = coordinatorErrorCode(c.s.broker.DeleteGroupOffsets(req.Group, tps))
	}
	return resp, nil
}
