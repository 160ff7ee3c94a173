package test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Transaction version 2 (KIP-890 part 2). franz-go runs it when the
// broker finalizes transaction.version at 2 (Sluice's default) and lets
// it use EndTxn v5; capping EndTxn at v4 keeps it on the classic protocol,
// as librdkafka 2.0 and kafka-python are.

// txnProducerV2 is txnProducer after one request, so that the client
// knows the broker's features when its first transaction begins:
// franz-go opts into version 2 at BeginTransaction only if it does (else
// it runs its first transaction classic, and switches at its end).
func txnProducerV2(t *testing.T, b *broker, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	p := txnProducer(t, b, id, opts...)
	if err := p.Ping(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	return p
}

// classicTxn caps a franz-go client at EndTxn v4, which keeps it on the
// classic transaction protocol.
func classicTxn() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	return kgo.MaxVersions(v)
}

// requestCounter counts the requests a client wrote, by key.
type requestCounter struct {
	mu sync.Mutex
	n  map[int16]int
}

func (c *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int16]int{}
	}
	c.n[key]++
}

func (c *requestCounter) count(key kmsg.Key) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[int16(key)]
}

// describeTxn returns the producer id and epoch DescribeTransactions
// reports for a transactional id.
func describeTxn(t *testing.T, b *broker, id string) (int64, int16, string) {
	t.Helper()
	dt, err := b.admin(t).DescribeTransactions(ctxT(t, 30*time.Second), id)
	if err != nil || dt[id].Err != nil {
		t.Fatalf("DescribeTransactions %s: %v %v", id, err, dt[id].Err)
	}
	return dt[id].ProducerID, dt[id].ProducerEpoch, dt[id].State
}

// TestKafkaTxnV2CommitAbort: a franz-go producer runs its transactions
// under version 2 against the default broker: it never sends
// AddPartitionsToTxn, every transaction bumps its epoch (seen through
// DescribeTransactions), and a read_committed consumer sees exactly the
// committed records. The same producer capped at EndTxn v4 runs the
// classic protocol: AddPartitionsToTxn, and the epoch stays.
func TestKafkaTxnV2CommitAbort(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name    string
		opts    []kgo.Opt
		bumps   bool // one epoch bump per transaction
		addsTxn bool // AddPartitionsToTxn sent
	}{
		{name: "v2", bumps: true},
		{name: "classic", opts: []kgo.Opt{classicTxn()}, addsTxn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, id := "txn2-"+tc.name, "tx2-"+tc.name
			b.createTopic(t, topic, 3, nil)
			var reqs requestCounter
			p := txnProducerV2(t, b, id, append(tc.opts, kgo.WithHooks(&reqs))...)
			c1, a1, c2 := values("c1", 30), values("a1", 30), values("c2", 20)
			produceInTxn(t, p, topic, c1, true)
			pid, e1, state := describeTxn(t, b, id)
			if state != "CompleteCommit" {
				t.Fatalf("after the first commit: %s", state)
			}
			produceInTxn(t, p, topic, a1, false)
			produceInTxn(t, p, topic, c2, true)
			pid3, e3, _ := describeTxn(t, b, id)
			if pid3 != pid {
				t.Fatalf("producer id changed from %d to %d", pid, pid3)
			}
			if tc.bumps && e3 != e1+2 || !tc.bumps && e3 != e1 {
				t.Fatalf("epoch %d after the first transaction, %d after the third (bump per transaction: %v)", e1, e3, tc.bumps)
			}
			if adds := reqs.count(kmsg.AddPartitionsToTxn); tc.addsTxn != (adds > 0) {
				t.Fatalf("%d AddPartitionsToTxn requests sent", adds)
			}
			if got, want := readAll(t, b, topic, 3, true), sortedJoin(c1, c2); !equalStrings(got, want) {
				t.Fatalf("read_committed: %d values %v\nwant %d", len(got), got, len(want))
			}
			if got, want := readAll(t, b, topic, 3, false), sortedJoin(c1, a1, c2); !equalStrings(got, want) {
				t.Fatalf("read_uncommitted: %d values, want %d", len(got), len(want))
			}
		})
	}
}

// TestKafkaTxnV2Wire drives transaction version 2 with raw requests:
// ApiVersions finalizes transaction.version 2; a Produce v12 adds its
// partition to the transaction by itself; EndTxn v5 answers the bumped
// epoch, after which the old epoch is refused, a retry at it is answered
// as the original was, and an abort with nothing ongoing bumps again.
func TestKafkaTxnV2Wire(t *testing.T) {
	b := startBroker(t)
	const topic = "txn2-wire"
	b.createTopic(t, topic, 1, nil)
	c := b.client(t)
	ctx := ctxT(t, 30*time.Second)

	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "sluice-test", "1"
	avr, err := av.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var supported, finalized bool
	for _, f := range avr.SupportedFeatures {
		supported = supported || f.Name == "transaction.version" && f.MinVersion == 0 && f.MaxVersion == 2
	}
	for _, f := range avr.FinalizedFeatures {
		finalized = finalized || f.Name == "transaction.version" && f.MaxVersionLevel == 2
	}
	if !supported || !finalized || avr.FinalizedFeaturesEpoch < 0 {
		t.Fatalf("ApiVersions features: supported %+v finalized %+v epoch %d", avr.SupportedFeatures, avr.FinalizedFeatures, avr.FinalizedFeaturesEpoch)
	}

	id := "tx2-wire"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ipr, err := init.RequestWith(ctx, c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, kerr.ErrorForCode(ipr.ErrorCode))
	}
	pid, e0 := ipr.ProducerID, ipr.ProducerEpoch
	txnBatch := func(seq int32, epoch int16, v string) []byte {
		bt := idempotentBatch(pid, epoch, seq, v)
		binary.BigEndian.PutUint16(bt[21:], 0x10) // transactional
		binary.BigEndian.PutUint32(bt[17:], crc32.Checksum(bt[21:], crc32.MakeTable(crc32.Castagnoli)))
		return bt
	}
	produce := func(bt []byte) int16 {
		req := produceRequest(topic, bt)
		req.TransactionID = &id
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 12 {
			t.Fatalf("produce at v%d", resp.Version)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	endTxn := func(epoch int16, commit bool) *kmsg.EndTxnResponse {
		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, commit
		resp, err := end.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 5 {
			t.Fatalf("EndTxn at v%d", resp.Version)
		}
		return resp
	}

	if code := produce(txnBatch(0, e0, "committed")); code != 0 {
		t.Fatalf("produce v12 without AddPartitionsToTxn: %v", kerr.ErrorForCode(code))
	}
	// An internal topic is refused and kept out of the transaction (no
	// marker could be written there).
	internal := produceRequest("__consumer_offsets", txnBatch(0, e0, "x"))
	internal.TransactionID = &id
	if resp, err := internal.RequestWith(ctx, c); err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("transactional produce to __consumer_offsets: %v %+v", err, resp)
	}
	dt, err := b.admin(t).DescribeTransactions(ctx, id)
	if d := dt[id]; err != nil || d.State != "Ongoing" || !d.Topics.Lookup(topic, 0) || len(d.Topics) != 1 {
		t.Fatalf("after the produce: %+v %v", d, err)
	}
	er := endTxn(e0, true)
	if er.ErrorCode != 0 || er.ProducerID != pid || er.ProducerEpoch != e0+1 {
		t.Fatalf("EndTxn v5: %v, producer %d epoch %d; want %d/%d", kerr.ErrorForCode(er.ErrorCode), er.ProducerID, er.ProducerEpoch, pid, e0+1)
	}
	if code := produce(txnBatch(1, e0, "zombie")); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce at the ended epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if er := endTxn(e0, true); er.ErrorCode != 0 || er.ProducerEpoch != e0+1 {
		t.Fatalf("EndTxn retried: %v epoch %d", kerr.ErrorForCode(er.ErrorCode), er.ProducerEpoch)
	}
	// The next transaction, at the new epoch from sequence 0, aborts.
	if code := produce(txnBatch(0, e0+1, "aborted")); code != 0 {
		t.Fatalf("produce at the new epoch: %v", kerr.ErrorForCode(code))
	}
	if er := endTxn(e0+1, false); er.ErrorCode != 0 || er.ProducerEpoch != e0+2 {
		t.Fatalf("abort: %v epoch %d", kerr.ErrorForCode(er.ErrorCode), er.ProducerEpoch)
	}
	if er := endTxn(e0+2, false); er.ErrorCode != 0 || er.ProducerEpoch != e0+3 {
		t.Fatalf("abort with nothing ongoing: %v epoch %d", kerr.ErrorForCode(er.ErrorCode), er.ProducerEpoch)
	}
	if er := endTxn(e0+3, true); er.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("commit with nothing ongoing: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(er.ErrorCode))
	}
	if er := endTxn(e0, false); er.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn at an old epoch: %v, want PRODUCER_FENCED", kerr.ErrorForCode(er.ErrorCode))
	}
	if got := readAll(t, b, topic, 1, true); !equalStrings(got, []string{"committed"}) {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestKafkaTxnV2Fencing: under version 2, a second producer with the same
// transactional id aborts the first one's open transaction (whose
// partitions only its produces added) and fences it.
func TestKafkaTxnV2Fencing(t *testing.T) {
	b := startBroker(t)
	const topic = "txn2-fence"
	b.createTopic(t, topic, 2, nil)
	ctx := ctxT(t, 30*time.Second)
	var reqs requestCounter
	zombie := txnProducerV2(t, b, "tx2-fence", kgo.WithHooks(&reqs))
	produceInTxn(t, zombie, topic, values("first", 5), true) // one version 2 transaction done
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values("zombie", 10) {
		if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	_, zEpoch, _ := describeTxn(t, b, "tx2-fence")
	fresh := txnProducerV2(t, b, "tx2-fence")
	produceInTxn(t, fresh, topic, values("fresh", 10), true)
	if _, e, _ := describeTxn(t, b, "tx2-fence"); e <= zEpoch+1 {
		t.Fatalf("epoch %d after the new producer's transaction, zombie's %d", e, zEpoch)
	}

	err := zombie.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("zombie-late")}).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie after fencing: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if n := reqs.count(kmsg.AddPartitionsToTxn); n != 0 {
		t.Fatalf("the zombie sent %d AddPartitionsToTxn: not version 2", n)
	}
	if got, want := readAll(t, b, topic, 2, true), sortedJoin(values("first", 5), values("fresh", 10)); !equalStrings(got, want) {
		t.Fatalf("read_committed after fencing: %v", got)
	}
}

// TestKafkaTxnV2Finalized1: with --transaction-version=1 the broker
// finalizes the classic protocol and franz-go runs it, uncapped.
func TestKafkaTxnV2Finalized1(t *testing.T) {
	b := startBroker(t, "--transaction-version", "1")
	const topic = "txn2-tv1"
	b.createTopic(t, topic, 1, nil)
	var reqs requestCounter
	p := txnProducerV2(t, b, "tx2-tv1", kgo.WithHooks(&reqs))
	produceInTxn(t, p, topic, values("a", 3), true)
	_, e1, _ := describeTxn(t, b, "tx2-tv1")
	produceInTxn(t, p, topic, values("b", 3), true)
	if _, e2, _ := describeTxn(t, b, "tx2-tv1"); e2 != e1 {
		t.Fatalf("epoch moved from %d to %d under the classic protocol", e1, e2)
	}
	if reqs.count(kmsg.AddPartitionsToTxn) == 0 {
		t.Fatal("no AddPartitionsToTxn: the client did not run the classic protocol")
	}
	if got := readAll(t, b, topic, 1, true); !equalStrings(got, sortedJoin(values("a", 3), values("b", 3))) {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestCLIBenchKafkaTransactionVersions: `sluice bench kafka
// --txn-records` runs transaction version 2, and with --txn-classic the
// classic protocol, as the coordinator's producer epochs show (bumped
// once per transaction under version 2 only); either way its
// read_committed consumers see every record.
func TestCLIBenchKafkaTransactionVersions(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"v2", nil},
		{"classic", []string{"--txn-classic"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "bench-txn-" + tc.name
			before := benchTxnIDs(t, b)
			args := append([]string{"bench", "kafka", "--topic", topic, "--records", "3000", "--txn-records", "1000",
				"--partitions", "4", "--record-size", "128", "--json"}, tc.extra...)
			out, stderr, err := runCLI(t, b, "", args...)
			if err != nil {
				t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
			}
			var sum struct{ Sent, Acked, Failed, Consumed, Missing int64 }
			if err := json.Unmarshal([]byte(out), &sum); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if sum.Sent != 3000 || sum.Acked != 3000 || sum.Consumed != 3000 || sum.Failed != 0 || sum.Missing != 0 {
				t.Fatalf("summary %+v", sum)
			}
			ids := slices.DeleteFunc(benchTxnIDs(t, b), func(id string) bool { return slices.Contains(before, id) })
			if len(ids) != 1 {
				t.Fatalf("bench transactional ids new in this run: %v", ids)
			}
			id := ids[0]
			_, epoch, state := describeTxn(t, b, id)
			if tc.extra == nil && epoch < 3 || tc.extra != nil && epoch != 0 || state != "CompleteCommit" {
				t.Fatalf("%s after 3 transactions: epoch %d, %s", id, epoch, state)
			}
		})
	}
}

// benchTxnIDs lists the transactional ids of `sluice bench kafka`.
func benchTxnIDs(t *testing.T, b *broker) []string {
	t.Helper()
	lt, err := b.admin(t).ListTransactions(ctxT(t, 30*time.Second), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range lt {
		if strings.HasPrefix(id, "sluice-bench-") {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestKafkaTxnV2Kill9AfterProduce: the broker is killed (SIGKILL) after
// acknowledging a version 2 transaction's produces, whose partitions no
// AddPartitionsToTxn named: after the restart the open transaction still
// holds each partition's last stable offset (the produce's addition was
// durable), and the next instance of the producer aborts it with a
// marker in every one of them.
func TestKafkaTxnV2Kill9AfterProduce(t *testing.T) {
	b := startBroker(t)
	const topic = "txn2-kill"
	b.createTopic(t, topic, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	var reqs requestCounter
	p := txnProducerV2(t, b, "tx2-kill", kgo.WithHooks(&reqs), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range int32(3) {
		r := &kgo.Record{Topic: topic, Partition: i, Value: []byte(fmt.Sprintf("lost-%d", i))}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if n := reqs.count(kmsg.AddPartitionsToTxn); n != 0 {
		t.Fatalf("%d AddPartitionsToTxn: not version 2", n)
	}
	b.Kill()
	p.Close()
	b.Restart()

	adm := b.admin(t)
	offsets := func() (hw, lso kadm.ListedOffsets) {
		hw, err1 := adm.ListEndOffsets(ctx, topic)
		lso, err2 := adm.ListCommittedOffsets(ctx, topic)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		return hw, lso
	}
	hw, lso := offsets()
	for i := range int32(3) {
		h, _ := hw.Lookup(topic, i)
		l, _ := lso.Lookup(topic, i)
		if h.Offset != 1 || l.Offset != 0 {
			t.Fatalf("partition %d after the restart: high watermark %d, last stable offset %d; want the open transaction to hold it at 0", i, h.Offset, l.Offset)
		}
	}
	next := txnProducerV2(t, b, "tx2-kill")
	produceInTxn(t, next, topic, values("next", 6), true) // InitProducerId first: aborts the open one
	hw, lso = offsets()
	for i := range int32(3) {
		h, _ := hw.Lookup(topic, i)
		l, _ := lso.Lookup(topic, i)
		if h.Offset != l.Offset {
			t.Fatalf("partition %d: high watermark %d, last stable offset %d after the abort", i, h.Offset, l.Offset)
		}
	}
	if got := readAll(t, b, topic, 3, true); !equalStrings(got, values("next", 6)) {
		t.Fatalf("read_committed: %v", got)
	}
}
