package kafka

// OffsetCommit, versions 0-9.
//
// For a consumer-protocol group (KIP-848) the generation field carries the
// member epoch (v9 names it so): a member's commit must carry its current
// epoch (STALE_MEMBER_EPOCH otherwise) and come from a member
// (UNKNOWN_MEMBER_ID), as in Kafka 4.0-4.2; a commit without member is
// accepted only while the group has no members. From v9 a member's commit
// to a group the coordinator does not know (after a broker restart, before
// the members rejoin) is GROUP_ID_NOT_FOUND, as in Kafka; before v9 it is
// ILLEGAL_GENERATION.
//
// Every commit is checked with the group coordinator first. A simple
// commit (generation -1, no member id, as v0 and admin tools send) is
// accepted while the group is Empty and fails with UNKNOWN_MEMBER_ID while
// it has members, as in Kafka; a member's commit must carry the current
// generation. The partitions that exist are then stored together as one
// record of the core's offsets store, durable before the answer. A partition of an unknown
// topic gets UNKNOWN_TOPIC_OR_PARTITION, metadata over 4096 bytes (Kafka's
// offset.metadata.max.bytes default) OFFSET_METADATA_TOO_LARGE. The
// retention fields (v1 Timestamp, v2-4 RetentionTimeMillis) are ignored:
// offsets live until the group or its offsets are deleted.

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const maxOffsetMetadata = 4096

func handleOffsetCommit(c *conn, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var groupErr error
	if !c.allowedGroup(req.Group, auth.OpRead) {
		groupErr = reqErr(errGroupAuth, "READ on group %q is not allowed", req.Group)
	} else if !c.coordinates(coordinatorGroup, req.Group) {
		groupErr = reqErr(kerr.NotCoordinator, "this broker does not coordinate group %q", req.Group)
	} else {
		groupErr = c.s.groups.ValidateCommit(req.Group, req.MemberID, deref(req.InstanceID), req.Generation)
	}
	if req.Version >= 9 && errors.Is(groupErr, groups.ErrIllegalGeneration) {
		if _, ok := c.s.groups.Describe(req.Group); !ok {
			groupErr = groups.ErrGroupNotFound // v9+ names an unknown group, as Kafka does
		}
	}

	type at struct{ topic, partition int } // where a commit's answer is
	var (
		commits []broker.OffsetCommit
		where   []at
	)
	for i, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		topicOK := groupErr != nil || c.allowedTopic(rt.Topic, auth.OpRead)
		for j, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			if groupErr != nil {
				sp.ErrorCode = errorCode(groupErr)
			} else if !topicOK {
				sp.ErrorCode = errTopicAuth.Code
			} else if _, err := c.s.broker.Partition(rt.Topic, rp.Partition); err != nil {
				sp.ErrorCode = errorCode(err)
			} else if len(deref(rp.Metadata)) > maxOffsetMetadata {
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			} else {
				commits = append(commits, broker.OffsetCommit{
					Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset,
					LeaderEpoch: rp.LeaderEpoch, Metadata: deref(rp.Metadata),
				})
				where = append(where, at{i, j})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if err := c.s.broker.CommitOffsets(req.Group, commits); err != nil {
		for _, w := range where {
			resp.Topics[w.topic].Partitions[w.partition].ErrorCode = coordinatorErrorCode(err)
		}
	}
	return resp, nil
}
