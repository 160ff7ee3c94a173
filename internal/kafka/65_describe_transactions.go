package kafka

// DescribeTransactions (65), version 0; ListTransactions (66), versions
// 0-2; DescribeProducers (61), version 0.
//
// The coordinator's record of each transactional id, in Kafka's state
// names (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
// CompleteAbort). DescribeTransactions answers an unknown id with
// TRANSACTIONAL_ID_NOT_FOUND. ListTransactions filters by state (unknown
// state names are echoed in UnknownStateFilters, as Kafka does), producer
// id, duration (v1: ongoing for at least that long) and id pattern (v2, a
// Go regular expression, Kafka's being Java's; an invalid one is
// INVALID_REGULAR_EXPRESSION). DescribeProducers lists the producers a
// partition keeps state for: epoch, last sequence and the first offset of
// the open transaction (-1 if none); the last timestamp and coordinator
// epoch are not kept (-1).

import (
	"regexp"
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnStateNames are Kafka's names of the transaction phases.
var txnStateNames = map[broker.TxnState]string{
	broker.TxnEmpty:          "Empty",
	broker.TxnOngoing:        "Ongoing",
	broker.TxnPrepareCommit:  "PrepareCommit",
	broker.TxnPrepareAbort:   "PrepareAbort",
	broker.TxnCompleteCommit: "CompleteCommit",
	broker.TxnCompleteAbort:  "CompleteAbort",
}

func handleDescribeTransactions(c *conn, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		if !c.allowedTxnID(id, auth.OpDescribe) {
			st.ErrorCode = errTxnIDAuth.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		t, ok := c.s.broker.TransactionOf(id)
		if !ok {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = txnStateNames[t.State]
		st.TimeoutMillis, st.ProducerID, st.ProducerEpoch = t.TimeoutMs, t.ProducerID, t.Epoch
		st.StartTimestamp = -1
		if t.State != broker.TxnEmpty {
			st.StartTimestamp = t.StartMs
		}
		for _, tp := range t.Partitions {
			if !c.mayTopic(tp.Topic, auth.OpDescribe) {
				continue // a topic it may not see is left out
			}
			i := slices.IndexFunc(st.Topics, func(x kmsg.DescribeTransactionsResponseTransactionStateTopic) bool { return x.Topic == tp.Topic })
			if i < 0 {
				tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				tt.Topic = tp.Topic
				st.Topics = append(st.Topics, tt)
				i = len(st.Topics) - 1
			}
			st.Topics[i].Partitions = append(st.Topics[i].Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func handleListTransactions(c *conn, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for _, s := range req.StateFilters {
		if !slices.Contains(mapValues(txnStateNames), s) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
		states[s] = true
	}
	var pattern *regexp.Regexp
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	for _, t := range c.s.broker.Transactions() {
		name := txnStateNames[t.State]
		switch {
		case len(states) > 0 && !states[name],
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.ProducerID),
			req.DurationFilterMillis >= 0 && req.Version >= 1 && (t.State != broker.TxnOngoing || c.s.broker.TxnAgeMillis(t) < req.DurationFilterMillis),
			pattern != nil && !pattern.MatchString(t.TransactionalID),
			!c.may(auth.ResourceTransactionalID, t.TransactionalID, auth.OpDescribe):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = t.TransactionalID, t.ProducerID, name
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func mapValues(m map[broker.TxnState]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func handleDescribeProducers(c *conn, req *kmsg.DescribeProducersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		allowed := c.allowedTopic(rt.Topic, auth.OpRead)
		for _, p := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			part, err := c.s.broker.Partition(rt.Topic, p)
			if !allowed {
				err = reqErr(errTopicAuth, "READ on topic %q is not allowed", rt.Topic)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, pi := range part.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pi.ProducerID, int32(pi.Epoch), pi.LastSequence
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1, pi.TxnStartOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
