package kafka

// ListOffsets, versions 1-8.
//
// Timestamp -1 is the latest offset (the high watermark), -2 and -4 the
// earliest (the log start; there is no tiered storage, so earliest-local
// is the same), -3 the record with the largest timestamp (v7+; answered
// from the newest batch's max timestamp), any other value the first offset
// whose batch has a timestamp at or after it (from the time index). When
// no record is that new the answer is offset -1, timestamp -1, as Kafka
// does. Isolation level is ignored: without transactions the last stable
// offset is the high watermark.

import (
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListOffsets(c *conn, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, topicOK := c.s.broker.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.ErrorCode = listOffset(t.Partitions[rp.Partition], rp.Timestamp, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *broker.Partition, ts int64, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	switch ts {
	case -1:
		sp.Offset = p.Log.HighWatermark()
	case -2, -4:
		sp.Offset = p.Log.StartOffset()
	case -3:
		off, mts, ok, err := p.MaxTimestamp()
		if err != nil {
			return kerr.KafkaStorageError.Code
		}
		if ok {
			sp.Offset, sp.Timestamp = off, mts
		}
	default:
		off, bts, ok, err := p.Log.OffsetForTimestamp(ts)
		if err != nil {
			return kerr.KafkaStorageError.Code
		}
		if ok {
			sp.Offset, sp.Timestamp = max(off, p.Log.StartOffset()), bts
		}
	}
	return 0
}
