package kafka

// InitProducerID, versions 0-5 (v5 only allows TRANSACTION_ABORTABLE,
// which Sluice never answers).
//
// Producer ids come from the metadata store and are durable before the
// answer. Without a transactional id every call gets a fresh id at epoch
// 0; Kafka instead bumps the epoch of the id a v3+ client sends back
// (KIP-360), which serves the client no differently. With a transactional
// id the transaction coordinator (broker.InitTransactions) keeps the id and
// bumps its epoch, fencing older producers, after aborting a transaction an
// earlier producer left ongoing (or completing one it left prepared); the
// transaction timeout must be within Kafka's default bounds (1 ms to 15
// minutes) or INVALID_TRANSACTION_TIMEOUT.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const maxTransactionTimeoutMillis = 15 * 60 * 1000 // transaction.max.timeout.ms

func handleInitProducerID(c *conn, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	txnID := deref(req.TransactionalID)
	if txnID != "" && !c.allowedTxnID(txnID, auth.OpWrite) {
		resp.ErrorCode = errTxnIDAuth.Code
		return resp, nil
	}
	if txnID == "" && !c.mayWriteSomeTopic() && !c.allowedCluster(auth.OpIdempotentWrite) {
		resp.ErrorCode = errClusterAuth.Code
		return resp, nil
	}
	if txnID != "" && !c.coordinates(coordinatorTxn, txnID) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	if t := req.TransactionTimeoutMillis; txnID != "" && (t <= 0 || t > maxTransactionTimeoutMillis) {
		resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		return resp, nil
	}
	var (
		id    int64
		epoch int16
		err   error
	)
	if txnID != "" {
		id, epoch, err = c.s.broker.InitTransactions(txnID, req.TransactionTimeoutMillis)
	} else {
		id, epoch, err = c.s.broker.InitProducerID("")
	}
	if resp.ErrorCode = coordinatorErrorCode(err); err == nil {
		resp.ProducerID, resp.ProducerEpoch = id, epoch
	}
	return resp, nil
}
