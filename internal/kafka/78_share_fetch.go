package kafka

// ShareFetch, versions 1-2 (KIP-932; v0 was Kafka 4.0's early access).
//
// A member of a share group fetches records under acquisition locks and
// piggy-backs its acknowledgements. The share session (keyed by group and
// member) follows KIP-932: epoch 0 opens it (acknowledgements then are
// INVALID_REQUEST), each later request carries the next epoch
// (INVALID_SHARE_SESSION_EPOCH otherwise, SHARE_SESSION_NOT_FOUND without
// a session), -1 closes it after its acknowledgements and releases what
// the member still holds. The session's partitions are those requested
// since it opened, less those forgotten. Acknowledgements are applied and
// made durable first (AcknowledgeErrorCode per partition); then records
// are acquired: released ones first, then new ones from the end of the
// share-partition's window, up to MaxRecords in all and to
// share.partition.max.record.locks in flight per partition, only what a
// read_committed consumer sees (below the last stable offset, aborted
// transactions and markers skipped). Whole batches are returned with the
// acquired offset ranges and their delivery counts. When nothing is
// acquired and nothing was acknowledged, the request waits up to
// MaxWaitMillis for records (appended, released, or unlocked by a lock
// timeout). AcquisitionLockTimeoutMillis is the group's
// share.record.lock.duration.ms. v2's ShareAcquireMode is served the same
// in both modes: never more than MaxRecords offsets are acquired, and the
// batches holding them are returned whole (the client drops the records
// outside the acquired ranges). IsRenewAck is accepted for renew
// acknowledgements (type 4), which extend the lock. A share session lives on the connection that
// opened it: when that connection closes, the records its member holds are
// released for others at once, as in Kafka.

import (
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleShareFetch(c *conn, req *kmsg.ShareFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
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
	r := broker.ShareFetchRequest{
		Group: *req.GroupID, MemberID: *req.MemberID, SessionEpoch: req.ShareSessionEpoch, Fetch: true,
		MaxWait: millis(req.MaxWaitMillis), MaxRecords: int(req.MaxRecords), MaxBytes: int(req.MaxBytes),
		Conn: c,
	}
	if req.IsRenewAck {
		r.Fetch = false // a renewal only acknowledges
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := share.TP{Topic: t.TopicID, Partition: p.Partition}
			if !req.IsRenewAck {
				r.Add = append(r.Add, tp)
			}
			for _, b := range p.AcknowledgementBatches {
				r.Acks = append(r.Acks, broker.ShareAck{TP: tp, First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes})
			}
		}
	}
	for _, t := range req.ForgottenTopicsData {
		for _, p := range t.Partitions {
			r.Forget = append(r.Forget, share.TP{Topic: t.TopicID, Partition: p})
		}
	}
	if r.SessionEpoch == 0 {
		c.openedShareSession(r.Group, r.MemberID)
	}
	res := c.s.broker.Shares().Fetch(c.ctx, r)
	if res.Err != nil {
		resp.ErrorCode, resp.ErrorMessage = shareCodeAndMessage(res.Err)
		return resp, nil
	}
	resp.AcquisitionLockTimeoutMillis = int32(res.LockDuration / time.Millisecond)
	byTopic := map[[16]byte]int{}
	for _, pr := range res.Partitions {
		sp := kmsg.NewShareFetchResponseTopicPartition()
		sp.Partition = pr.TP.Partition
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
		sp.ErrorCode, sp.ErrorMessage = shareCodeAndMessage(pr.Err)
		if pr.Acked {
			sp.AcknowledgeErrorCode, sp.AcknowledgeErrorMessage = shareCodeAndMessage(pr.AckErr)
		}
		sp.Records = pr.Records
		for _, a := range pr.Acquired {
			ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
			ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = a.First, a.Last, a.Count
			sp.AcquiredRecords = append(sp.AcquiredRecords, ar)
		}
		i, ok := byTopic[pr.TP.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[pr.TP.Topic] = i
			st := kmsg.NewShareFetchResponseTopic()
			st.TopicID = pr.TP.Topic
			resp.Topics = append(resp.Topics, st)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return resp, nil
}
