package kafka

// AddPartitionsToTxn, versions 0-4.
//
// Adds partitions to the producer's transaction, starting one if none is
// ongoing (broker.AddPartitionsToTxn); the markers of the transaction go
// to these partitions. A stale or foreign producer fails every partition
// (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING),
// as does a transaction still completing (CONCURRENT_TRANSACTIONS). If
// any partition is unknown it gets UNKNOWN_TOPIC_OR_PARTITION and the
// others OPERATION_NOT_ATTEMPTED, and nothing is added, as in Kafka; a
// partition of an internal topic (__consumer_offsets) likewise gets
// INVALID_TOPIC_EXCEPTION, since no marker could be written there.
// v4 (KIP-890, sent by brokers) batches transactions; VerifyOnly
// answers whether the partitions are already in the transaction, adding
// nothing.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddPartitionsToTxn(c *conn, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make(map[string][]int32, len(req.Topics))
		var order []string
		for _, rt := range req.Topics {
			if _, ok := topics[rt.Topic]; !ok {
				order = append(order, rt.Topic)
			}
			topics[rt.Topic] = append(topics[rt.Topic], rt.Partitions...)
		}
		codes := addPartitions(c, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, order, topics)
		for _, topic := range order {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			st.Topic = topic
			for _, p := range topics[topic] {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.Partition, sp.ErrorCode = p, codes[broker.TopicPartition{Topic: topic, Partition: p}]
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, rtx := range req.Transactions {
		topics := make(map[string][]int32, len(rtx.Topics))
		var order []string
		for _, rt := range rtx.Topics {
			if _, ok := topics[rt.Topic]; !ok {
				order = append(order, rt.Topic)
			}
			topics[rt.Topic] = append(topics[rt.Topic], rt.Partitions...)
		}
		codes := addPartitions(c, rtx.TransactionalID, rtx.ProducerID, rtx.ProducerEpoch, rtx.VerifyOnly, order, topics)
		stx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		stx.TransactionalID = rtx.TransactionalID
		for _, topic := range order {
			st := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			st.Topic = topic
			for _, p := range topics[topic] {
				sp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				sp.Partition, sp.ErrorCode = p, codes[broker.TopicPartition{Topic: topic, Partition: p}]
				st.Partitions = append(st.Partitions, sp)
			}
			stx.Topics = append(stx.Topics, st)
		}
		resp.Transactions = append(resp.Transactions, stx)
	}
	return resp, nil
}

// addPartitions adds (or with verifyOnly checks) topics' partitions in a
// transaction and returns each partition's error code (absent: none).
func addPartitions(c *conn, id string, pid int64, epoch int16, verifyOnly bool, order []string, topics map[string][]int32) map[broker.TopicPartition]int16 {
	var tps []broker.TopicPartition
	for _, topic := range order {
		for _, p := range topics[topic] {
			tps = append(tps, broker.TopicPartition{Topic: topic, Partition: p})
		}
	}
	codes := make(map[broker.TopicPartition]int16, len(tps))
	all := func(code int16) map[broker.TopicPartition]int16 {
		for _, tp := range tps {
			codes[tp] = code
		}
		return codes
	}
	// Authorization, as Kafka: WRITE on the transactional id, then on
	// every topic; a refused topic fails the request, the other
	// partitions OPERATION_NOT_ATTEMPTED.
	if !c.allowedTxnID(id, auth.OpWrite) {
		return all(errTxnIDAuth.Code)
	}
	if !c.coordinates(coordinatorTxn, id) {
		return all(kerr.NotCoordinator.Code)
	}
	var refused []string
	for _, topic := range order {
		if !c.allowedTopic(topic, auth.OpWrite) {
			refused = append(refused, topic)
		}
	}
	if refused != nil {
		all(kerr.OperationNotAttempted.Code)
		for _, topic := range refused {
			for _, p := range topics[topic] {
				codes[broker.TopicPartition{Topic: topic, Partition: p}] = errTopicAuth.Code
			}
		}
		return codes
	}
	if verifyOnly {
		missing, err := c.s.broker.VerifyPartitionsInTxn(id, pid, epoch, tps)
		if err != nil {
			return all(txnErrorCode(err))
		}
		for _, tp := range missing {
			codes[tp] = kerr.InvalidTxnState.Code
		}
		return codes
	}
	perPartition, err := c.s.broker.AddPartitionsToTxn(id, pid, epoch, tps)
	if err != nil {
		return all(txnErrorCode(err))
	}
	if perPartition != nil {
		all(kerr.OperationNotAttempted.Code)
		for tp, perr := range perPartition {
			codes[tp] = errorCode(perr)
		}
	}
	return codes
}
