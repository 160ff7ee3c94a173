package test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
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

// txnProducer returns a transactional franz-go producer.
func txnProducer(t *testing.T, b *broker, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return b.client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("")}, opts...)...)
}

// produceInTxn produces values to topic (spread over its partitions by key)
// in one transaction and commits or aborts it.
func produceInTxn(t *testing.T, p *kgo.Client, topic string, values []string, commit bool) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// readAll reads every partition of topic from the start at the given
// isolation level up to a plain sentinel record produced now at the end
// of each partition, and returns the values before the sentinels, sorted.
func readAll(t *testing.T, b *broker, topic string, partitions int32, committed bool) []string {
	t.Helper()
	plain := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	mine := fmt.Sprintf("sentinel-%d", time.Now().UnixNano())
	for p := int32(0); p < partitions; p++ {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(mine)}
		if err := plain.ProduceSync(ctxT(t, 30*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	c := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	ctx := ctxT(t, 30*time.Second)
	var out []string
	seen := 0
	for seen < int(partitions) {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d sentinels; values so far %v", seen, partitions, out)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			switch v := string(r.Value); {
			case v == mine:
				seen++
			case !strings.HasPrefix(v, "sentinel-"): // not an earlier read's
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

func sortedJoin(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestKafkaTxnCommitAbort: a read_committed consumer sees exactly the
// committed transactions, a read_uncommitted one everything; while a
// transaction is open the last stable offset stays at its first record.
func TestKafkaTxnCommitAbort(t *testing.T) {
	b := startBroker(t)
	const topic = "txn-ca"
	b.createTopic(t, topic, 3, nil)
	p := txnProducer(t, b, "tx-ca")
	c1, a1, c2 := values("c1", 30), values("a1", 30), values("c2", 20)
	produceInTxn(t, p, topic, c1, true)
	produceInTxn(t, p, topic, a1, false)
	produceInTxn(t, p, topic, c2, true)

	// An open transaction holds the LSO of its partition at its first
	// record; the high watermark moves on.
	ctx := ctxT(t, 30*time.Second)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	open := &kgo.Record{Topic: topic, Value: []byte("open")}
	if err := p.ProduceSync(ctx, open).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.admin(t)
	hw, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := hw.Lookup(topic, open.Partition)
	l, _ := lso.Lookup(topic, open.Partition)
	if h.Err != nil || l.Err != nil || l.Offset != open.Offset || h.Offset != open.Offset+1 {
		t.Fatalf("open transaction: high watermark %d (%v), last stable offset %d (%v); want both after the open record at %d", h.Offset, h.Err, l.Offset, l.Err, open.Offset)
	}
	// So does the management API.
	mt := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/kafka/topics/"+topic, nil, 200))
	var pd map[string]any
	for _, x := range mt["partition_details"].([]any) {
		if x := x.(map[string]any); x["partition"] == float64(open.Partition) {
			pd = x
		}
	}
	if pd["last_stable_offset"] != float64(open.Offset) || pd["log_end_offset"] != float64(open.Offset+1) {
		t.Fatalf("management API partition %d: %v, want last_stable_offset %d", open.Partition, pd, open.Offset)
	}

	// The admin APIs see the open transaction.
	dt, err := adm.DescribeTransactions(ctx, "tx-ca", "nope")
	if err != nil {
		t.Fatal(err)
	}
	d := dt["tx-ca"]
	if d.Err != nil || d.State != "Ongoing" || !d.Topics.Lookup(topic, open.Partition) || d.ProducerID < 0 {
		t.Fatalf("DescribeTransactions: %+v", d)
	}
	if !errors.Is(dt["nope"].Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("DescribeTransactions of an unknown id: %+v", dt["nope"])
	}
	lt, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil || len(lt) != 1 || lt["tx-ca"].ProducerID != d.ProducerID {
		t.Fatalf("ListTransactions Ongoing: %v %v", lt, err)
	}
	dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {open.Partition: struct{}{}}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	dp.EachProducer(func(pr kadm.DescribedProducer) {
		if pr.ProducerID == d.ProducerID {
			found = pr.CurrentTxnStartOffset == open.Offset
		}
	})
	if !found {
		t.Fatalf("DescribeProducers: %+v, want producer %d in a transaction from %d", dp.SortedProducers(), d.ProducerID, open.Offset)
	}

	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if lt, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"}); err != nil || len(lt) != 0 {
		t.Fatalf("ListTransactions Ongoing after the abort: %v %v", lt, err)
	}

	if got, want := readAll(t, b, topic, 3, true), sortedJoin(c1, c2); !equalStrings(got, want) {
		t.Fatalf("read_committed: %d values %v\nwant %d", len(got), got, len(want))
	}
	if got, want := readAll(t, b, topic, 3, false), sortedJoin(c1, a1, c2, []string{"open"}); !equalStrings(got, want) {
		t.Fatalf("read_uncommitted: %d values, want %d", len(got), len(want))
	}
}

// TestKafkaTxnFencing: a second producer with the same transactional id
// aborts the first one's open transaction and fences it.
func TestKafkaTxnFencing(t *testing.T) {
	b := startBroker(t)
	const topic = "txn-fence"
	b.createTopic(t, topic, 2, nil)
	ctx := ctxT(t, 30*time.Second)
	zombie := txnProducer(t, b, "tx-fence")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values("zombie", 10) {
		if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fresh := txnProducer(t, b, "tx-fence")
	produceInTxn(t, fresh, topic, values("fresh", 10), true)

	err := zombie.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("zombie-late")}).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie after fencing: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if got := readAll(t, b, topic, 2, true); !equalStrings(got, values("fresh", 10)) {
		t.Fatalf("read_committed after fencing: %v", got)
	}
}

// TestKafkaTxnTimeout: a transaction left open past its timeout is
// aborted by the broker, which fences its producer; under transaction
// version 2 (where only the produce added the partition) as under the
// classic protocol.
func TestKafkaTxnTimeout(t *testing.T) {
	t.Run("v2", func(t *testing.T) { testTxnTimeout(t, txnProducerV2) })
	t.Run("classic", func(t *testing.T) {
		testTxnTimeout(t, func(t *testing.T, b *broker, id string, opts ...kgo.Opt) *kgo.Client {
			return txnProducer(t, b, id, append(opts, classicTxn())...)
		})
	})
}

func testTxnTimeout(t *testing.T, newProducer func(*testing.T, *broker, string, ...kgo.Opt) *kgo.Client) {
	b := startBroker(t)
	const topic = "txn-timeout"
	b.createTopic(t, topic, 1, nil)
	ctx := ctxT(t, 60*time.Second)
	p := newProducer(t, b, "tx-timeout", kgo.TransactionTimeout(2*time.Second))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("abandoned")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.admin(t)
	waitFor(t, 30*time.Second, "the abandoned transaction aborted (LSO = HW)", func() bool {
		hw, err1 := adm.ListEndOffsets(ctx, topic)
		lso, err2 := adm.ListCommittedOffsets(ctx, topic)
		h, _ := hw.Lookup(topic, 0)
		l, _ := lso.Lookup(topic, 0)
		return err1 == nil && err2 == nil && h.Offset == 2 && l.Offset == 2 // the record and the abort marker
	})
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit of a transaction the broker aborted succeeded")
	}
	if got := readAll(t, b, topic, 1, true); len(got) != 0 {
		t.Fatalf("read_committed after the timeout: %v", got)
	}
}

// TestKafkaTxnPipelineKill9: a consume-transform-produce pipeline
// (kgo.GroupTransactSession: read_committed input, output and input
// offsets in one transaction) keeps running while the broker is killed
// with SIGKILL and restarted, repeatedly; at the end the output read with
// read_committed holds every input record exactly once. It runs under
// transaction version 2 (franz-go's choice against Sluice) and under the
// classic protocol (EndTxn capped at v4); the version 2 run checks that
// the epoch moved with the transactions.
func TestKafkaTxnPipelineKill9(t *testing.T) {
	t.Run("v2", func(t *testing.T) { testTxnPipelineKill9(t, true) })
	t.Run("classic", func(t *testing.T) { testTxnPipelineKill9(t, false) })
}

func testTxnPipelineKill9(t *testing.T, v2 bool) {
	var extra []kgo.Opt
	if !v2 {
		extra = append(extra, classicTxn())
	}
	b := startBroker(t)
	const in, out, n = "pipe-in", "pipe-out", 600
	b.createTopic(t, in, 3, nil)
	b.createTopic(t, out, 3, nil)
	src := b.client(t)
	for _, v := range values("v", n) {
		if err := src.ProduceSync(ctxT(t, 30*time.Second), &kgo.Record{Topic: in, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		open := func() *kgo.GroupTransactSession {
			sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{
				kgo.SeedBrokers(b.Kafka), kgo.TransactionalID("pipe"), kgo.ConsumerGroup("pipe-g"),
				kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
				kgo.TransactionTimeout(10 * time.Second), kgo.FetchMaxPartitionBytes(2000), // small transactions
				kgo.RetryTimeout(time.Minute),
			}, extra...)...)
			if err != nil {
				t.Error(err)
			}
			return sess
		}
		sess := open()
		if sess == nil {
			return
		}
		defer func() { sess.Close() }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			fs := sess.PollFetches(ctx)
			cancel()
			if fs.IsClientClosed() {
				return
			}
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Errorf("begin: %v", err)
				return
			}
			// A failure aborts and the records come again. The produces
			// and End are given more than the client's retry timeout: a
			// context that ends first leaves franz-go's session in a
			// transaction (a slow run under the race detector saw Begin
			// refused after that). An error from End is not retryable
			// (franz-go's documentation): the pipeline starts a new
			// session, as an application would.
			ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
			for _, r := range recs {
				sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, nil)
			}
			_, err := sess.End(ctx, kgo.TryCommit)
			cancel()
			if err != nil {
				t.Logf("end: %v; starting a new session", err)
				sess.Close()
				if sess = open(); sess == nil {
					return
				}
			}
		}
	}()
	finish := sync.OnceFunc(func() { close(stop); <-done })
	defer finish()

	// Watch the output grow, killing the broker a few times on the way.
	watch := b.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]bool{}
	kills := 0
	ctx := ctxT(t, 3*time.Minute)
	for len(seen) < n {
		fs := watch.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("output has %d of %d records after %d kills\n%s", len(seen), n, kills, b.Logs())
		}
		for _, r := range fs.Records() {
			seen[string(r.Value)] = true
		}
		if kills < 3 && len(seen) >= (kills+1)*n/5 {
			b.Kill()
			b.Restart()
			kills++
		}
	}
	if kills < 3 {
		t.Fatalf("only %d kills", kills)
	}
	finish()
	// Each InitProducerId bumps the epoch too (one per restart of the
	// session's producer id); under version 2 every transaction does, so
	// the epoch ends well past the number of kills.
	if _, epoch, _ := describeTxn(t, b, "pipe"); v2 && epoch <= int16(2*kills+2) || !v2 && epoch > int16(2*kills+2) {
		t.Fatalf("epoch %d after %d kills (version 2: %v)", epoch, kills, v2)
	}

	if got, want := readAll(t, b, out, 3, true), values("v", n); !equalStrings(got, want) {
		dups := map[string]int{}
		for _, v := range got {
			dups[v]++
		}
		var extra []string
		for v, c := range dups {
			if c > 1 {
				extra = append(extra, v)
			}
		}
		t.Fatalf("read_committed output: %d records for %d inputs; duplicated %v", len(got), n, extra)
	}
}

// TestKafkaTxnProduceVerified: with the classic protocol (Produce below
// v12, EndTxn below v5) transactional data is accepted only for a
// partition added to the producer's ongoing transaction, so a producer
// cannot open a transaction that no marker would close.
func TestKafkaTxnProduceVerified(t *testing.T) {
	b := startBroker(t)
	const topic = "txn-verify"
	b.createTopic(t, topic, 1, nil)
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.Produce), 11)
	vs.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	c := b.client(t, kgo.MaxVersions(vs))
	ctx := ctxT(t, 30*time.Second)
	id := "tx-verify"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ipr, err := init.RequestWith(ctx, c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, kerr.ErrorForCode(ipr.ErrorCode))
	}
	txnBatch := func(seq int32, epoch int16) []byte {
		bt := idempotentBatch(ipr.ProducerID, epoch, seq, "v")
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
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(txnBatch(0, ipr.ProducerEpoch)); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce before AddPartitionsToTxn: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if got := produceRaw(t, c, topic, txnBatch(0, ipr.ProducerEpoch)); got.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("transactional batch without a transactional id: %v, want INVALID_RECORD", kerr.ErrorForCode(got.ErrorCode))
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ipr.ProducerID, ipr.ProducerEpoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = topic, []int32{0}
	add.Topics = append(add.Topics, at)
	if resp, err := add.RequestWith(ctx, c); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, resp)
	}
	if code := produce(txnBatch(0, ipr.ProducerEpoch-1)); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce at an older epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := produce(txnBatch(0, ipr.ProducerEpoch)); code != 0 {
		t.Fatalf("produce after AddPartitionsToTxn: %v", kerr.ErrorForCode(code))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ipr.ProducerID, ipr.ProducerEpoch, true
	if resp, err := end.RequestWith(ctx, c); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %+v", err, resp)
	}
	if code := produce(txnBatch(1, ipr.ProducerEpoch)); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce after the commit: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if got := readAll(t, b, topic, 1, true); !equalStrings(got, []string{"v"}) {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestKafkaTxnCrashBetweenPrepareAndMarkers: the broker loses power
// after recording a commit decision and before its markers are on disk
// (the partitions' fsyncs are held, and on the volatile file system of a
// faultinject build what is not fsynced dies with the process); after
// the restart the commit is completed: read_committed sees the records.
// Under transaction version 2 the decision carries the epoch bump, and
// the markers written after the restart carry the bumped epoch.
func TestKafkaTxnCrashBetweenPrepareAndMarkers(t *testing.T) {
	t.Setenv("SLUICE_FAULT_VOLATILE", "1")
	t.Run("v2", func(t *testing.T) { testTxnCrashBetweenPrepareAndMarkers(t, true) })
	t.Run("classic", func(t *testing.T) { testTxnCrashBetweenPrepareAndMarkers(t, false) })
}

func testTxnCrashBetweenPrepareAndMarkers(t *testing.T, v2 bool) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	const topic = "txn-crash"
	b.createTopic(t, topic, 2, nil)
	ctx := ctxT(t, 60*time.Second)
	p := txnProducerV2(t, b, "tx-crash")
	if !v2 {
		p = txnProducer(t, b, "tx-crash", classicTxn())
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	want := values("crash", 20)
	for _, v := range want {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b.fault(t, "hold", "/topics/")
	endCtx, cancel := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- p.EndTransaction(endCtx, kgo.TryCommit) }()
	waitFor(t, 30*time.Second, "a marker's fsync held", func() bool {
		return !strings.Contains(b.fault(t, "status", ""), `"holding":0`)
	})
	b.Kill()
	cancel()
	<-ended
	p.Close()
	b.Restart()

	if got := readAll(t, b, topic, 2, true); !equalStrings(got, want) {
		t.Fatalf("read_committed after the crash: %d records %v, want the %d committed", len(got), got, len(want))
	}
	dt, err := b.admin(t).DescribeTransactions(ctx, "tx-crash")
	if err != nil || dt["tx-crash"].State != "CompleteCommit" {
		t.Fatalf("transaction after the restart: %+v %v", dt["tx-crash"], err)
	}
	// The markers' epoch: the producers' state of each partition.
	dp, err := b.admin(t).DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	wantEpoch := dt["tx-crash"].ProducerEpoch // bumped by the v2 EndTxn
	if !v2 {
		wantEpoch = 0
	}
	n := 0
	dp.EachProducer(func(pr kadm.DescribedProducer) {
		if pr.ProducerID != dt["tx-crash"].ProducerID {
			return // readAll's sentinel producer
		}
		n++
		if pr.ProducerEpoch != wantEpoch || pr.CurrentTxnStartOffset != -1 {
			t.Errorf("partition %d: epoch %d (open from %d), want epoch %d closed", pr.Partition, pr.ProducerEpoch, pr.CurrentTxnStartOffset, wantEpoch)
		}
	})
	if n != 2 || v2 && wantEpoch != 1 {
		t.Fatalf("%d partitions with the transactional producer, epoch after the commit %d", n, wantEpoch)
	}
}

// TestKafkaTxnInterleaved: two transactional producers interleave their
// records in one partition, committing and aborting in turn; a
// read_committed consumer gets exactly the committed records, whichever
// transaction's data surrounds them.
func TestKafkaTxnInterleaved(t *testing.T) {
	b := startBroker(t)
	const topic = "txn-interleaved"
	b.createTopic(t, topic, 1, nil)
	ctx := ctxT(t, 60*time.Second)
	p1, p2 := txnProducer(t, b, "tx-i1"), txnProducer(t, b, "tx-i2")
	var want []string
	for round, outcome := range [][2]bool{{false, true}, {true, false}, {false, false}, {true, true}} {
		for _, p := range []*kgo.Client{p1, p2} {
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			for j, p := range []*kgo.Client{p1, p2} {
				v := fmt.Sprintf("r%d-p%d-%02d", round, j+1, i)
				if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if outcome[j] {
					want = append(want, v)
				}
			}
		}
		for j, p := range []*kgo.Client{p1, p2} {
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(outcome[j])); err != nil {
				t.Fatal(err)
			}
		}
	}
	sort.Strings(want)
	if got := readAll(t, b, topic, 1, true); !equalStrings(got, want) {
		t.Fatalf("read_committed: %d records %v\nwant %d %v", len(got), got, len(want), want)
	}
	if got := readAll(t, b, topic, 1, false); len(got) != 80 {
		t.Fatalf("read_uncommitted: %d records, want 80", len(got))
	}
}
