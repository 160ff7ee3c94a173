package kafka

// DeleteShareGroupOffsets, version 0 (KIP-932).
//
// Forgets a group's share-partitions of the named topics, in a group
// without members (NON_EMPTY_GROUP otherwise): they start again from the
// group's share.auto.offset.reset. An unknown group is GROUP_ID_NOT_FOUND,
// an unknown topic UNKNOWN_TOPIC_OR_PARTITION.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteShareGroupOffsets(c *conn, req *kmsg.DeleteShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	if !c.allowedGroup(req.GroupID, auth.OpDelete) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	for _, rt := range req.Topics {
		if !c.allowedTopic(rt.Topic, auth.OpRead) {
			resp.ErrorCode = errTopicAuth.Code
			return resp, nil
		}
	}
	if !c.s.broker.Shares().Exists(req.GroupID) {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	}
	var ids []share.TopicID
	var valid []int
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		if t, ok := c.s.broker.Topic(rt.Topic); ok {
			st.TopicID = t.ID
			ids = append(ids, share.TopicID(t.ID))
			valid = append(valid, len(resp.Topics))
		} else {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, st)
	}
	if err := c.s.broker.Shares().DeleteOffsets(req.GroupID, ids); err != nil {
		resp.ErrorCode, resp.ErrorMessage = shareCodeAndMessage(err)
		for _, i := range valid {
			resp.Topics[i].ErrorCode = resp.ErrorCode
		}
	}
	return resp, nil
}
