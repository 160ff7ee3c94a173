package kafka

// AddOffsetsToTxn, versions 0-4 (v4 only allows TRANSACTION_ABORTABLE,
// which Sluice never answers). Transaction version 2 clients do without
// it (TxnOffsetCommit v5 starts the transaction).
//
// Announces that the producer's transaction will commit offsets of a
// consumer group (TxnOffsetCommit, sent to the group coordinator, which is
// this node), starting the transaction if none is ongoing. Kafka adds the
// group's __consumer_offsets partition to the transaction; Sluice keeps
// the offsets with the transaction's record and commits them when it
// commits. Producer errors as in AddPartitionsToTxn.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddOffsetsToTxn(c *conn, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !c.allowedTxnID(req.TransactionalID, auth.OpWrite):
		resp.ErrorCode = errTxnIDAuth.Code
		return resp, nil
	case !c.allowedGroup(req.Group, auth.OpRead):
		resp.ErrorCode = errGroupAuth.Code
		return resp, nil
	case !c.coordinates(coordinatorTxn, req.TransactionalID):
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	resp.ErrorCode = txnErrorCode(c.s.broker.AddOffsetsToTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group))
	return resp, nil
}
