package kafka

// AlterShareGroupOffsets, version 0 (KIP-932).
//
// Moves share-partitions' start offsets, forgetting what they held in
// flight, in a group without members (NON_EMPTY_GROUP otherwise); the
// group is created if it does not exist, as Kafka does. An offset outside
// the partition's log (below its start or past its high watermark) is
// OFFSET_OUT_OF_RANGE for that partition; an unknown topic
// UNKNOWN_TOPIC_OR_PARTITION.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterShareGroupOffsets(c *conn, req *kmsg.AlterShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	if !c.allowedGroup(req.GroupID, auth.OpRead) {
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	}
	for _, rt := range req.Topics {
		if !c.allowedTopic(rt.Topic, auth.OpRead) {
			resp.ErrorCode = errTopicAuth.Code
			return resp, nil
		}
	}
	if _, ok := c.s.groups.Describe(req.GroupID); ok || req.GroupID == "" {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	}
	to := map[share.TP]int64{}
	type slot struct{ t, p int }
	var valid []slot
	for _, rt := range req.Topics {
		st := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, ok := c.s.broker.Topic(rt.Topic)
		if ok {
			st.TopicID = t.ID
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !ok || t.IsInternal() || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				start, hw, _ := t.Partitions[rp.Partition].Offsets()
				if rp.StartOffset < start || rp.StartOffset > hw {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				to[share.TP{Topic: share.TopicID(t.ID), Partition: rp.Partition}] = rp.StartOffset
				valid = append(valid, slot{len(resp.Topics), len(st.Partitions)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(to) == 0 {
		return resp, nil
	}
	if err := c.s.broker.Shares().AlterOffsets(req.GroupID, to); err != nil {
		code, msg := shareCodeAndMessage(err)
		if len(valid) == len(to) && code == kerr.NonEmptyGroup.Code {
			resp.ErrorCode, resp.ErrorMessage = code, msg
		}
		for _, s := range valid {
			resp.Topics[s.t].Partitions[s.p].ErrorCode, resp.Topics[s.t].Partitions[s.p].ErrorMessage = code, msg
		}
	}
	return resp, nil
}
