package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnHandlerShapes drives the transaction APIs through the dispatch
// table: AddPartitionsToTxn's per-partition errors (v3) and batched form
// with VerifyOnly (v4), EndTxn's retries, and fencing.
func TestTxnHandlerShapes(t *testing.T) {
	c := testConn(t)
	if _, err := c.s.broker.CreateTopic("t", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	id := "tx"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ipr := call[*kmsg.InitProducerIDResponse](t, c, init, 4)
	if ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v", kerr.ErrorForCode(ipr.ErrorCode))
	}
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch

	// v3: an unknown partition fails the request; the others are not tried.
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	for _, topic := range []string{"t", "nope"} {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		add.Topics = append(add.Topics, rt)
	}
	r3 := call[*kmsg.AddPartitionsToTxnResponse](t, c, add, 3)
	if len(r3.Topics) != 2 || r3.Topics[0].Partitions[0].ErrorCode != kerr.OperationNotAttempted.Code ||
		r3.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("v3 with an unknown partition: %+v", r3.Topics)
	}

	v4 := func(txnID string, verify bool, partitions ...int32) []int16 {
		t.Helper()
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = txnID, pid, epoch, verify
		rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		rt.Topic, rt.Partitions = "t", partitions
		tx.Topics = append(tx.Topics, rt)
		req.Transactions = append(req.Transactions, tx)
		resp := call[*kmsg.AddPartitionsToTxnResponse](t, c, req, 4)
		if len(resp.Transactions) != 1 || resp.Transactions[0].TransactionalID != txnID || len(resp.Transactions[0].Topics) != 1 {
			t.Fatalf("v4 response shape: %+v", resp)
		}
		var codes []int16
		for _, p := range resp.Transactions[0].Topics[0].Partitions {
			codes = append(codes, p.ErrorCode)
		}
		return codes
	}
	if got := v4(id, true, 0); got[0] != kerr.InvalidTxnState.Code {
		t.Fatalf("VerifyOnly before adding: %v", got)
	}
	if got := v4(id, false, 0, 1); got[0] != 0 || got[1] != 0 {
		t.Fatalf("v4 add: %v", got)
	}
	if got := v4(id, true, 0); got[0] != 0 {
		t.Fatalf("VerifyOnly after adding: %v", got)
	}
	if got := v4("other", false, 0); got[0] != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("v4 for an unknown transactional id: %v", got)
	}

	end := func(e int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, e, commit
		return call[*kmsg.EndTxnResponse](t, c, req, 4).ErrorCode
	}
	for _, step := range []struct {
		name   string
		commit bool
		want   int16
	}{{"commit", true, 0}, {"retried commit", true, 0}, {"abort after commit", false, kerr.InvalidTxnState.Code}} {
		if got := end(epoch, step.commit); got != step.want {
			t.Fatalf("%s: %v, want %v", step.name, kerr.ErrorForCode(got), kerr.ErrorForCode(step.want))
		}
	}
	if ipr := call[*kmsg.InitProducerIDResponse](t, c, init, 4); ipr.ErrorCode != 0 || ipr.ProducerEpoch != epoch+1 {
		t.Fatalf("re-init: %+v", ipr)
	}
	if got := end(epoch, true); got != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn of the fenced producer: %v", kerr.ErrorForCode(got))
	}
	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch = id, "g", pid, epoch+1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	tc.Topics = append(tc.Topics, rt)
	if r := call[*kmsg.TxnOffsetCommitResponse](t, c, tc, 3); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit without an ongoing transaction: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
}

// TestTxnV2HandlerShapes: EndTxn v5 answers the bumped producer under
// transaction version 2, and -1/-1 with the epoch unchanged when the
// broker finalizes level 1; TxnOffsetCommit v5 starts the transaction
// only under version 2.
func TestTxnV2HandlerShapes(t *testing.T) {
	for _, level := range []int16{2, 1} {
		c := testConn(t)
		c.s.opts.TransactionVersion = level
		if _, err := c.s.broker.CreateTopic("t", 1, nil, false); err != nil {
			t.Fatal(err)
		}
		id := "tx"
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
		ipr := call[*kmsg.InitProducerIDResponse](t, c, init, 5)
		pid, epoch := ipr.ProducerID, ipr.ProducerEpoch

		commit := kmsg.NewPtrTxnOffsetCommitRequest()
		commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = id, "g", pid, epoch
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 5
		rt.Partitions = append(rt.Partitions, rp)
		commit.Topics = append(commit.Topics, rt)
		code := call[*kmsg.TxnOffsetCommitResponse](t, c, commit, 5).Topics[0].Partitions[0].ErrorCode
		if level == 2 && code != 0 || level == 1 && code != kerr.InvalidTxnState.Code {
			t.Fatalf("level %d: TxnOffsetCommit v5 without AddOffsetsToTxn: %v", level, kerr.ErrorForCode(code))
		}

		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, level == 2
		er := call[*kmsg.EndTxnResponse](t, c, end, 5)
		switch {
		case level == 2 && (er.ErrorCode != 0 || er.ProducerID != pid || er.ProducerEpoch != epoch+1):
			t.Fatalf("level 2: EndTxn v5: %v %d/%d", kerr.ErrorForCode(er.ErrorCode), er.ProducerID, er.ProducerEpoch)
		case level == 1 && (er.ErrorCode != kerr.InvalidTxnState.Code || er.ProducerID != -1 || er.ProducerEpoch != -1):
			t.Fatalf("level 1: EndTxn v5 with nothing ongoing: %v %d/%d", kerr.ErrorForCode(er.ErrorCode), er.ProducerID, er.ProducerEpoch)
		}
		if oc, ok := c.s.broker.GroupOffset("g", "t", 0); level == 2 && (!ok || oc.Offset != 5) || level == 1 && ok {
			t.Fatalf("level %d: group offset %+v %v", level, oc, ok)
		}
	}
}
