package kafka

// TxnOffsetCommit, versions 0-5.
//
// Records consumer offsets in the producer's ongoing transaction
// (broker.TxnOffsetCommit): the group sees them only once the transaction
// commits, and never if it aborts. The request's member id and generation
// (v3+, KIP-447) are checked only for a consumer-protocol group (KIP-848):
// UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH, as Kafka. Every partition
// carries the request's error: a producer error as in AddPartitionsToTxn,
// INVALID_TXN_STATE without an ongoing transaction, or
// UNKNOWN_TOPIC_OR_PARTITION (nothing is recorded then). v4 only adds
// an error code; v5 is transaction version 2 (KIP-890 part 2, when
// finalized): the commit itself starts the transaction if none is
// ongoing, as the AddOffsetsToTxn the client no longer sends did.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleTxnOffsetCommit(c *conn, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var commits []broker.OffsetCommit
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			commits = append(commits, broker.OffsetCommit{
				Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: deref(rp.Metadata),
			})
		}
	}
	commit := c.s.broker.TxnOffsetCommit
	if req.Version >= 5 && c.s.txnV2() {
		commit = c.s.broker.TxnOffsetCommitV2
	}
	var code int16
	switch {
	case !c.allowedTxnID(req.TransactionalID, auth.OpWrite):
		code = errTxnIDAuth.Code
	case !c.allowedGroup(req.Group, auth.OpRead):
		code = errGroupAuth.Code
	}
	for _, rt := range req.Topics {
		if code == 0 && !c.allowedTopic(rt.Topic, auth.OpRead) {
			code = errTopicAuth.Code
		}
	}
	if code == 0 && !c.coordinates(coordinatorGroup, req.Group) {
		code = kerr.NotCoordinator.Code
	}
	if code == 0 {
		code = errorCode(c.s.groups.ValidateConsumerTxnCommit(req.Group, req.MemberID, req.Generation))
	}
	if code == 0 {
		code = txnErrorCode(commit(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, commits))
	}
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
