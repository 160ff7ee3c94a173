package kafka

// ListOffsets, versions 0-8.
//
// Version 0 (removed in Kafka 4.0 by KIP-896, served here because Debian's
// Burrow 1.2 still sends it to learn partitions' end offsets) answers a
// list of offsets, OldStyleOffsets: the one offset the same timestamp gets
// in v1+, none when there is none (Kafka's v0 listed segment base
// offsets; clients read the first).
//
// Timestamp -1 is the latest offset (the high watermark), -2 and -4 the
// earliest (the log start; there is no tiered storage, so earliest-local
// is the same). For read_committed (v2+) the latest offset is the last
// stable offset (the first offset of the earliest open transaction).
//
// Any other timestamp answers the first record at or above the log start
// whose timestamp is at or after it, with that record's offset and
// timestamp, as Kafka does; when no record is that new the answer is
// offset -1, timestamp -1. -3 (v7+) is the first record holding the
// largest timestamp. The partition answers both (Partition.
// OffsetForTimestamp and MaxTimestamp, which say how a batch that cannot
// be decoded is answered at batch granularity).
//
// Needs DESCRIBE on the topic (TOPIC_AUTHORIZATION_FAILED per partition).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListOffsets(c *conn, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		allowed := c.allowedTopic(rt.Topic, auth.OpDescribe)
		t, topicOK := c.s.broker.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			if !allowed {
				sp.ErrorCode = errTopicAuth.Code
			} else if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.ErrorCode = listOffset(t.Partitions[rp.Partition], rp.Timestamp, isolation(req.IsolationLevel), &sp)
			}
			if req.Version == 0 {
				if sp.ErrorCode == 0 && sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
					sp.OldStyleOffsets = []int64{sp.Offset}
				}
				sp.Timestamp, sp.Offset = 0, 0
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *broker.Partition, ts int64, iso broker.IsolationLevel, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	var (
		off, stamp int64
		ok         bool
		err        error
	)
	start, hw, lso := p.Offsets()
	switch ts {
	case -1:
		sp.Offset = hw
		if iso == broker.ReadCommitted {
			sp.Offset = lso
		}
		return 0
	case -2, -4:
		sp.Offset = start
		return 0
	case -3:
		off, stamp, ok, err = p.MaxTimestamp()
	default:
		off, stamp, ok, err = p.OffsetForTimestamp(ts)
	}
	if err != nil {
		return kerr.KafkaStorageError.Code
	}
	if ok {
		sp.Offset, sp.Timestamp = off, stamp
	}
	return 0
}
