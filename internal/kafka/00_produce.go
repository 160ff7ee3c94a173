package kafka

// Produce, versions 3-12 (record format v2 only); v0-2 are advertised for
// librdkafka's sake (see registry.go) and answered UNSUPPORTED_VERSION.
//
// Each partition's records are validated by the partition (framing, magic
// 2, CRC32C, size against the topic's max.message.bytes), stored as the
// topic's compression.type and message.timestamp.type say (recompressed;
// stamped LogAppendTime, which the answer carries) and appended in
// the read loop, so pipelined requests keep their order and share one
// group commit; the response waits in the write loop until every append is durable (fsync
// before the answer by default) for acks=1 and acks=-1 alike. With acks=0
// there is no response. Idempotent producers are checked per partition
// (duplicates are answered with the original offset, gaps get
// OUT_OF_ORDER_SEQUENCE_NUMBER). A transactional batch opens its producer's
// transaction in the partition (partition_txn.go) and is accepted only if
// the request's transactional id has that producer's transaction ongoing
// with the partition added (KIP-890's verification, as Kafka since 3.6):
// else INVALID_PRODUCER_EPOCH (another producer) or INVALID_TXN_STATE; in
// a request without a transactional id it is INVALID_RECORD.
// v12 is transaction version 2 (KIP-890 part 2, when finalized): the
// producer sends no AddPartitionsToTxn, so the partitions with
// transactional records are first added to its transaction
// (broker.AddPartitionsOnProduce, one durable metadata write for the
// request, starting the transaction if none is ongoing), then checked
// and appended as above. A producer that is not the transactional id's
// current one gets INVALID_PRODUCER_EPOCH; a previous transaction still
// completing gets NOT_ENOUGH_REPLICAS, which every client retries (Kafka
// answers produces the same for CONCURRENT_TRANSACTIONS).
// In a cluster, a partition this broker does not lead (the server's
// Cluster says, cluster.go) is NOT_LEADER_OR_FOLLOWER, with the current
// leader and its endpoint from v10 (KIP-951); a single node leads every
// partition and skips the question.
// Unknown topics are auto-created when enabled.
// The request timeout bounds only how long a resource alarm may hold the
// request (flow.go). A replicated partition (in a cluster: broker/replica.go)
// is answered once the batches are committed by its Raft group and applied
// on this node, for acks=1 and acks=-1 alike, with the offsets and producer
// errors the apply gave (broker.ResultPending); acks=-1 is first refused
// NOT_ENOUGH_REPLICAS when fewer replicas are in sync than the topic's
// min.insync.replicas, and one not committed in time is REQUEST_TIMED_OUT.

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func prepareProduce(c *conn, r kmsg.Request) func() (kmsg.Response, error) {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	type wait struct {
		into *kmsg.ProduceResponseTopicPartition
		ap   broker.Pending
	}
	var waits []wait
	defer dropRecords(req)
	if req.Version < 3 {
		// Message formats v0 and v1: every partition fails, the
		// connection stays up (Kafka 4.0 does the same).
		return func() (kmsg.Response, error) {
			return produceAllFailed(req, resp, kerr.UnsupportedVersion.Code), nil
		}
	}
	if !c.holdProduce(req) {
		return produceHeldTooLong(req) // see flow.go
	}
	if req.TransactionID != nil && !c.allowedTxnID(*req.TransactionID, auth.OpWrite) {
		return func() (kmsg.Response, error) {
			return produceAllFailed(req, resp, errTxnIDAuth.Code), nil
		}
	}
	check := broker.RefuseTransactional
	if req.TransactionID != nil {
		check = c.s.broker.TxnProduceCheck(*req.TransactionID)
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	topics := make([]*broker.Topic, len(req.Topics))
	terrs := make([]error, len(req.Topics))
	for i, rt := range req.Topics {
		topics[i], terrs[i] = produceTopic(c, rt.Topic)
	}
	var addErrs map[broker.TopicPartition]error
	if req.TransactionID != nil && req.Version >= 12 && c.s.txnV2() {
		addErrs = addPartitionsOnProduce(c, *req.TransactionID, req, topics)
	}
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t, terr := topics[i], terrs[i]
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			if terr != nil {
				sp.ErrorCode = errorCode(terr)
				continue
			}
			if err := addErrs[broker.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}]; err != nil {
				sp.ErrorCode = writeErrorCode(err)
				if errors.Is(err, broker.ErrConcurrentTransactions) {
					sp.ErrorCode = kerr.NotEnoughReplicas.Code
				}
				msg := err.Error()
				sp.ErrorMessage = &msg
				continue
			}
			if !c.s.single && rp.Partition >= 0 && int(rp.Partition) < len(t.Partitions) {
				if r := c.s.cluster.Partition(rt.Topic, rp.Partition); r.Leader != c.s.self {
					c.produceNotLeader(resp, sp, r)
					continue
				}
			}
			if !c.s.single && req.Acks == -1 && rp.Partition >= 0 && int(rp.Partition) < len(t.Partitions) {
				// A replicated partition with too few replicas in sync
				// refuses acks=all unwritten (min.insync.replicas).
				if err := t.Partitions[rp.Partition].CheckInSync(); err != nil {
					sp.ErrorCode = kerr.NotEnoughReplicas.Code
					msg := err.Error()
					sp.ErrorMessage = &msg
					continue
				}
			}
			ap, err := appendPartition(t, rp, sp, check)
			if err != nil {
				sp.ErrorCode = writeErrorCode(err)
				if msg := err.Error(); sp.ErrorCode != 0 {
					sp.ErrorMessage = &msg
				}
				continue
			}
			if ap != nil {
				waits = append(waits, wait{sp, ap})
			}
		}
	}
	return func() (kmsg.Response, error) {
		for _, w := range waits {
			if rp, ok := w.ap.(broker.ResultPending); ok {
				// Replicated: the offsets come when the entry is applied,
				// and so do the producer checks' errors.
				if err := rp.Wait(); err != nil {
					w.into.ErrorCode = writeErrorCode(err)
					if errors.Is(err, broker.ErrReplicationTimeout) {
						w.into.ErrorCode = kerr.RequestTimedOut.Code
					}
					msg := err.Error()
					w.into.ErrorMessage = &msg
					continue
				}
				res := rp.Result()
				w.into.BaseOffset, w.into.LogAppendTime, w.into.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStart
				continue
			}
			if err := w.ap.Wait(); err != nil {
				w.into.ErrorCode = kerr.KafkaStorageError.Code
				msg := err.Error()
				w.into.ErrorMessage = &msg
			}
		}
		if req.Acks == 0 {
			return nil, nil
		}
		return resp, nil
	}
}

// dropRecords forgets the records of req once they are appended: they
// are slices of the request frame, which the read loop reuses for the
// next Produce (readRequest), so nothing may read them after prepare.
func dropRecords(req *kmsg.ProduceRequest) {
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			req.Topics[i].Partitions[j].Records = nil
		}
	}
}

// appendPartition appends one partition's records (the partition
// validates them), filling the offsets of sp. It returns the append to
// wait on, if any.
func appendPartition(t *broker.Topic, rp kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition, check broker.TxnCheck) (broker.Pending, error) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return nil, broker.ErrUnknownPartition
	}
	res, ap, err := t.Partitions[rp.Partition].AppendTxn(rp.Records, check)
	if err != nil {
		return nil, err
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStart
	return ap, nil
}

// addPartitionsOnProduce adds the existing partitions of req that hold
// transactional records to their producer's transaction (transaction
// version 2), and returns the partitions whose addition failed, with
// why. A real client's request has one producer; should it hold several,
// each is added on its own. Internal topics are left out (and fail with
// INVALID_TOPIC_EXCEPTION, as their append would): no marker could ever
// be written there.
func addPartitionsOnProduce(c *conn, txnID string, req *kmsg.ProduceRequest, topics []*broker.Topic) map[broker.TopicPartition]error {
	type producer struct {
		pid   int64
		epoch int16
	}
	var order []producer
	byProducer := map[producer][]broker.TopicPartition{}
	var failed map[broker.TopicPartition]error
	fail := func(tp broker.TopicPartition, err error) {
		if failed == nil {
			failed = make(map[broker.TopicPartition]error)
		}
		failed[tp] = err
	}
	for i, rt := range req.Topics {
		if topics[i] == nil {
			continue
		}
		if topics[i].IsInternal() {
			for _, rp := range rt.Partitions {
				fail(broker.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, broker.ErrInternalTopic)
			}
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.Partition < 0 || int(rp.Partition) >= len(topics[i].Partitions) {
				continue // answered UNKNOWN_TOPIC_OR_PARTITION by the append
			}
			pid, epoch, txn := broker.TxnProducerOf(rp.Records)
			if !txn {
				continue
			}
			p := producer{pid, epoch}
			if _, ok := byProducer[p]; !ok {
				order = append(order, p)
			}
			byProducer[p] = append(byProducer[p], broker.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
		}
	}
	for _, p := range order {
		tps := byProducer[p]
		if err := c.s.broker.AddPartitionsOnProduce(txnID, p.pid, p.epoch, tps); err != nil {
			for _, tp := range tps {
				fail(tp, err)
			}
		}
	}
	return failed
}

// produceTopic is the topic a Produce writes to: WRITE on it is needed
// (TOPIC_AUTHORIZATION_FAILED, whether or not it exists, as in Kafka), and
// CREATE too when it does not exist and would be auto-created.
func produceTopic(c *conn, name string) (*broker.Topic, error) {
	if !c.allowedTopic(name, auth.OpWrite) {
		return nil, reqErr(errTopicAuth, "WRITE on topic %q is not allowed", name)
	}
	if c.authorizing() {
		if _, ok := c.s.broker.Topic(name); !ok && !c.mayTopic(name, auth.OpCreate) {
			return nil, broker.ErrUnknownTopic
		}
	}
	return c.s.broker.TopicOrCreate(name)
}

func produceAllFailed(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, code int16) kmsg.Response {
	if req.Acks == 0 {
		return nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
