package kafka

// DeleteRecords, versions 0-2.
//
// Moves a partition's log start up to the given offset, durably, and
// deletes the segments wholly below it; offset -1 means the high
// watermark. An offset above the high watermark (or negative, other than
// -1) is OFFSET_OUT_OF_RANGE; one at or below the log start changes
// nothing. The answer's low watermark is the log start afterwards. A
// failed write is KAFKA_STORAGE_ERROR. TimeoutMillis is ignored: the
// deletion is done before the answer.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(c *conn, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark, sp.ErrorCode = c.deleteRecords(rt.Topic, rp.Partition, rp.Offset)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// deleteRecords returns the partition's new low watermark (-1 on error)
// and error code.
func (c *conn) deleteRecords(topic string, partition int32, offset int64) (int64, int16) {
	if !c.allowedTopic(topic, auth.OpDelete) {
		return -1, errTopicAuth.Code
	}
	p, err := c.s.broker.Partition(topic, partition)
	if err != nil {
		return -1, errorCode(err)
	}
	if offset == -1 {
		_, offset, _ = p.Offsets()
	}
	start, err := p.DeleteRecordsBefore(offset)
	if err != nil {
		return -1, writeErrorCode(err) // a durable write, as a produce is
	}
	return start, 0
}
