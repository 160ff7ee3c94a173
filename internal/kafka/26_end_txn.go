package kafka

// EndTxn, versions 0-4.
//
// Commits or aborts the producer's transaction (broker.EndTxn): the
// decision is durable, the markers are written into every partition of
// the transaction and made durable, and on commit the transaction's
// offsets become visible to their groups, all before the answer. A retry
// of a completed EndTxn succeeds; EndTxn with no transaction ongoing, or
// the opposite decision of a completed one, is INVALID_TXN_STATE. v5
// (transaction version 2, KIP-890) is not offered, so clients use the
// classic protocol.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleEndTxn(c *conn, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ErrorCode = txnErrorCode(c.s.broker.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit))
	return resp, nil
}
