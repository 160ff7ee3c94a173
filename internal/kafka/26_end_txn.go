package kafka

// EndTxn, versions 0-5.
//
// Commits or aborts the producer's transaction (broker.EndTxn): the
// decision is durable, the markers are written into every partition of
// the transaction and made durable, and on commit the transaction's
// offsets become visible to their groups, all before the answer. A retry
// of a completed EndTxn succeeds; EndTxn with no transaction ongoing, or
// the opposite decision of a completed one, is INVALID_TXN_STATE.
//
// v5 is transaction version 2 (KIP-890 part 2; with transaction.version
// finalized at 2, txnV2): every EndTxn bumps the producer's epoch
// (broker.EndTxnV2) and the answer carries the producer id and epoch for
// the next transaction (a new producer id when the epoch is exhausted);
// an abort with nothing ongoing is allowed and only bumps the epoch. With
// the feature finalized at 1, v5 behaves as v4 and answers producer id
// and epoch -1, which clients read as "unchanged".

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleEndTxn(c *conn, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !c.allowedTxnID(req.TransactionalID, auth.OpWrite) {
		resp.ErrorCode = errTxnIDAuth.Code
		return resp, nil
	}
	if !c.coordinates(coordinatorTxn, req.TransactionalID) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	if req.Version >= 5 && c.s.txnV2() {
		pid, epoch, err := c.s.broker.EndTxnV2(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
		if resp.ErrorCode = txnErrorCode(err); err == nil {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		return resp, nil
	}
	resp.ErrorCode = txnErrorCode(c.s.broker.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit))
	return resp, nil
}

// txnV2 reports whether the broker runs transaction version 2 for the
// requests that ask for it (EndTxn v5, Produce v12, TxnOffsetCommit v5).
func (s *Server) txnV2() bool { return s.opts.TransactionVersion >= 2 }
