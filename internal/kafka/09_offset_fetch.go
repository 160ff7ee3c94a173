package kafka

// OffsetFetch, versions 0-9.
//
// v9 may name a member of a consumer-protocol group (MemberID,
// MemberEpoch): the member must exist (UNKNOWN_MEMBER_ID) with that epoch
// (STALE_MEMBER_EPOCH), the group's error, as in Kafka.
//
// Answers from the committed offsets in the core's offsets store. A partition
// without a commit, including one of an unknown topic, answers offset -1,
// leader epoch -1 and empty metadata with no error, as Kafka does. A null
// topic list (v2+) asks for every offset the group has committed. v8
// batches groups; each is answered as a v0-7 request would be, so older
// versions are served by converting them to that form. RequireStable (v7+)
// has no effect: without transactions no offset is ever pending.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetFetch(c *conn, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			resp.Groups = append(resp.Groups, c.fetchOffsets(rg))
		}
		return resp, nil
	}

	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = req.Group
	if req.Topics != nil || req.Version < 2 { // null (v2+) stays null: all topics
		rg.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
		for _, rt := range req.Topics {
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = rt.Topic, rt.Partitions
			rg.Topics = append(rg.Topics, gt)
		}
	}
	sg := c.fetchOffsets(rg)
	resp.ErrorCode = sg.ErrorCode
	for _, gt := range sg.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = gt.Topic
		for _, gp := range gt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.OffsetFetchResponseTopicPartition(gp))
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// fetchOffsets answers one group of an OffsetFetch.
func (c *conn) fetchOffsets(rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	b := c.s.broker
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	if !c.allowedGroup(rg.Group, auth.OpDescribe) {
		sg.ErrorCode = errGroupAuth.Code
		return sg
	}
	if !c.coordinates(coordinatorGroup, rg.Group) {
		sg.ErrorCode = kerr.NotCoordinator.Code
		return sg
	}
	if err := c.s.groups.ValidateOffsetFetch(rg.Group, rg.MemberID, rg.MemberEpoch); err != nil {
		sg.ErrorCode = errorCode(err)
		return sg
	}
	if rg.Topics == nil {
		for _, oc := range b.GroupOffsets(rg.Group) { // sorted by topic
			if !c.mayTopic(oc.Topic, auth.OpDescribe) {
				continue // a topic it may not see is left out
			}
			if n := len(sg.Topics); n == 0 || sg.Topics[n-1].Topic != oc.Topic {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = oc.Topic
				sg.Topics = append(sg.Topics, st)
			}
			st := &sg.Topics[len(sg.Topics)-1]
			st.Partitions = append(st.Partitions, committedOffset(oc.Partition, oc.Offset, oc.LeaderEpoch, oc.Metadata))
		}
		return sg
	}
	for _, rt := range rg.Topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic = rt.Topic
		allowed := c.allowedTopic(rt.Topic, auth.OpDescribe)
		for _, p := range rt.Partitions {
			sp := committedOffset(p, -1, -1, "")
			if !allowed {
				sp.ErrorCode = errTopicAuth.Code
			} else if oc, ok := b.GroupOffset(rg.Group, rt.Topic, p); ok {
				sp = committedOffset(p, oc.Offset, oc.LeaderEpoch, oc.Metadata)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		sg.Topics = append(sg.Topics, st)
	}
	return sg
}

func committedOffset(partition int32, offset int64, epoch int32, metadata string) kmsg.OffsetFetchResponseGroupTopicPartition {
	sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
	sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = partition, offset, epoch, &metadata
	return sp
}
