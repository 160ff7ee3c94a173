package kafka

// ShareAcknowledge, versions 1-2 (KIP-932).
//
// Acknowledges records of a share session without fetching: accept (1),
// release (2), reject (3), gap (0) and, from v2, renew (4). The session
// epoch must be the next one (0 is INVALID_SHARE_SESSION_EPOCH: a session
// opens with a ShareFetch); -1 closes the session after the
// acknowledgements and releases what the member still holds. The answer
// comes once the acknowledgements are durable. Per partition, an offset
// not acquired by this member is INVALID_RECORD_STATE and nothing of that
// batch changes.

import (
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleShareAcknowledge(c *conn, req *kmsg.ShareAcknowledgeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	if req.GroupID == nil || req.MemberID == nil || *req.GroupID == "" || *req.MemberID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	ids := make([][16]byte, 0, len(req.Topics))
	for _, t := range req.Topics {
		ids = append(ids, t.TopicID)
	}
	if code := c.shareReadAllowed(*req.GroupID, ids); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	r := broker.ShareFetchRequest{Group: *req.GroupID, MemberID: *req.MemberID, SessionEpoch: req.ShareSessionEpoch}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := share.TP{Topic: t.TopicID, Partition: p.Partition}
			for _, b := range p.AcknowledgementBatches {
				r.Acks = append(r.Acks, broker.ShareAck{TP: tp, First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes})
			}
		}
	}
	res := c.s.broker.Shares().Fetch(c.ctx, r)
	if res.Err != nil {
		resp.ErrorCode, resp.ErrorMessage = shareCodeAndMessage(res.Err)
		return resp, nil
	}
	resp.AcquisitionLockTimeoutMillis = int32(res.LockDuration / time.Millisecond)
	byTopic := map[[16]byte]int{}
	for _, pr := range res.Partitions {
		sp := kmsg.NewShareAcknowledgeResponseTopicPartition()
		sp.Partition = pr.TP.Partition
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
		sp.ErrorCode, sp.ErrorMessage = shareCodeAndMessage(pr.AckErr)
		i, ok := byTopic[pr.TP.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[pr.TP.Topic] = i
			st := kmsg.NewShareAcknowledgeResponseTopic()
			st.TopicID = pr.TP.Topic
			resp.Topics = append(resp.Topics, st)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return resp, nil
}
