package kafka

// DescribeShareGroupOffsets, versions 0-1 (KIP-932).
//
// For each share-partition asked (or, with null topics, every one the
// group has), its start offset (every record below it is settled) and, from
// v1, its lag: the records from there to the last stable offset still to
// settle. A partition the group has not started on reports -1 for both,
// as Kafka does. An unknown group answers GROUP_ID_NOT_FOUND; a live
// classic or consumer group of that id, too.

import (
	"fmt"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeShareGroupOffsets(c *conn, req *kmsg.DescribeShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range req.Groups {
		sg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		sg.GroupID = rg.GroupID
		if !c.allowedGroup(rg.GroupID, auth.OpDescribe) {
			sg.ErrorCode = errGroupAuth.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		offs, ok := c.s.broker.Shares().Offsets(rg.GroupID)
		if !ok {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = nullIfEmpty(fmt.Sprintf("Group %s not found.", rg.GroupID))
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		byTP := make(map[share.TP]broker.SharePartitionOffset, len(offs))
		for _, o := range offs {
			byTP[o.TP] = o
		}
		partition := func(id [16]byte, p int32) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
			sp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			sp.Partition, sp.StartOffset, sp.Lag, sp.LeaderEpoch = p, -1, -1, -1
			if o, ok := byTP[share.TP{Topic: id, Partition: p}]; ok {
				sp.StartOffset, sp.Lag, sp.LeaderEpoch = o.StartOffset, o.Lag, 0
			}
			return sp
		}
		if rg.Topics == nil { // every share-partition of the group
			byTopic := map[[16]byte]int{}
			for _, o := range offs {
				t, ok := c.s.broker.TopicByID(broker.TopicID(o.TP.Topic))
				if !ok || !c.mayTopic(t.Name, auth.OpDescribe) {
					continue
				}
				i, seen := byTopic[o.TP.Topic]
				if !seen {
					i = len(sg.Topics)
					byTopic[o.TP.Topic] = i
					st := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
					st.Topic, st.TopicID = t.Name, o.TP.Topic
					sg.Topics = append(sg.Topics, st)
				}
				sg.Topics[i].Partitions = append(sg.Topics[i].Partitions, partition(o.TP.Topic, o.TP.Partition))
			}
		}
		for _, rt := range rg.Topics {
			st := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			st.Topic = rt.Topic
			t, ok := c.s.broker.Topic(rt.Topic)
			allowed := c.allowedTopic(rt.Topic, auth.OpDescribe)
			for _, p := range rt.Partitions {
				if !allowed {
					sp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
					sp.Partition, sp.StartOffset, sp.Lag = p, -1, -1
					sp.ErrorCode = errTopicAuth.Code
					st.Partitions = append(st.Partitions, sp)
					continue
				}
				if !ok {
					sp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
					sp.Partition, sp.StartOffset, sp.Lag = p, -1, -1
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					st.Partitions = append(st.Partitions, sp)
					continue
				}
				st.TopicID = t.ID
				st.Partitions = append(st.Partitions, partition(t.ID, p))
			}
			sg.Topics = append(sg.Topics, st)
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
