package test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latestLog collects, from produce acknowledgements, the latest record
// per key that a compacted topic must keep.
type latestLog struct {
	mu   sync.Mutex
	want compactedWant
	errs []error
}

func (l *latestLog) set(key string, offset int64, value *string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.want[key]; ok && w.offset > offset {
		return
	}
	l.want[key] = struct {
		offset int64
		value  *string
	}{offset, value}
}

func (l *latestLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *latestLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		t.Fatalf("%d produce errors, the first: %v", len(l.errs), l.errs[0])
	}
}

// produce produces r with p; once acknowledged it is its key's latest
// record (if no later one is).
func (l *latestLog) produce(p *kgo.Client, r *kgo.Record) {
	p.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		if err != nil {
			l.fail(err)
			return
		}
		var v *string
		if r.Value != nil {
			s := string(r.Value)
			v = &s
		}
		l.set(string(r.Key), r.Offset, v)
	})
}

// inTxn produces values (by key) to topic in one transaction of tx and
// commits or aborts it; committed records join the expected result.
func (l *latestLog) inTxn(t *testing.T, tx *kgo.Client, topic string, recs map[string]string, commit bool) error {
	ctx := ctxT(t, time.Minute)
	if err := tx.BeginTransaction(); err != nil {
		return err
	}
	type acked struct {
		key, value string
		offset     int64
	}
	var mu sync.Mutex
	var got []acked
	var perr error
	for k, v := range recs {
		tx.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				perr = err
				return
			}
			got = append(got, acked{string(r.Key), string(r.Value), r.Offset})
		})
	}
	if err := tx.Flush(ctx); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		return err
	}
	if commit {
		for _, a := range got {
			v := a.value
			l.set(a.key, a.offset, &v)
		}
	}
	return nil
}

// cleanerRounds is the cleaner's completed rounds, from /metrics.
func cleanerRounds(t *testing.T, b *broker) float64 {
	v, _ := b.scrape(t).value("sluice_log_cleaner_rounds_total")
	return v
}

// waitCleanerRounds waits until the cleaner has completed n more rounds
// than it had, so that at least one whole round began after now.
func waitCleanerRounds(t *testing.T, b *broker, n float64) {
	t.Helper()
	from := cleanerRounds(t, b)
	waitFor(t, 2*time.Minute, fmt.Sprintf("%v cleaner rounds", n), func() bool { return cleanerRounds(t, b) >= from+n })
}

// TestCompactionWithTransactions is the proof that compaction and
// transactions hold together. A compacted topic (small segments,
// min.cleanable.dirty.ratio 0.01, min.compaction.lag.ms 0,
// delete.retention.ms 1h) receives, while the cleaner runs,
// SLUICE_COMPACTION_RECORDS plain records (default 1,000,000: about 5 s
// on 2 cores) over a hundredth as many keys from one franz-go producer and, at the same
// time, a tenth as many records in transactions of a transactional
// producer over the same keys, one transaction in three aborted; then
// tombstones for a tenth of the keys timestamped two hours ago (past
// delete.retention.ms) and for another tenth timestamped now; then an
// aborted transaction of one record larger than a segment, whose abort
// marker lands in the active segment while the cleaner runs; then one
// record that rolls the segment. When the cleaner has converged (a round
// after the roll found the partition's dirty ratio, in /metrics, below
// min.cleanable.dirty.ratio), the topic read
// from the start with read_committed and with read_uncommitted holds
// exactly the latest committed record of every key, at its offset, the
// unexpired tombstones and not the expired ones, in increasing offsets:
// no aborted record, and no committed value lost to a later aborted one.
// The same holds after a restart; the partition is much smaller than
// what was appended, and the cleaner's metrics agree.
// SLUICE_COMPACTION_MAP_BYTES sets the cleaner's offset map (default 16
// MiB, every key in one pass); 65536 (2,457 keys) makes each clean take
// several passes (about 90 s at 1,000,000 records).
func TestCompactionWithTransactions(t *testing.T) {
	n := envInt(t, "SLUICE_COMPACTION_RECORDS", 1_000_000)
	keys := max(n/100, 10)
	flags := []string{"--cleaner-interval=200ms", "--cleaner-bytes-per-second=-1"}
	if m := os.Getenv("SLUICE_COMPACTION_MAP_BYTES"); m != "" {
		flags = append(flags, "--cleaner-map-bytes="+m) // several passes per clean
	}
	b := startBroker(t, flags...)
	const topic = "ctx"
	b.createTopic(t, topic, 1, map[string]*string{
		"cleanup.policy": strPtr("compact"), "segment.bytes": strPtr("262144"),
		"min.cleanable.dirty.ratio": strPtr("0.01"), "min.compaction.lag.ms": strPtr("0"),
		"delete.retention.ms": strPtr("3600000"),
	})
	key := func(i int) string { return fmt.Sprintf("k%d", i) }
	l := &latestLog{want: compactedWant{}}

	plain := b.client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	produce := func(r *kgo.Record) { l.produce(plain, r) }
	tx := txnProducer(t, b, "ctx-txn", kgo.ProducerLinger(5*time.Millisecond))
	inTxn := func(recs map[string]string, commit bool) error { return l.inTxn(t, tx, topic, recs, commit) }

	// Plain records and transactions at the same time.
	began := time.Now()
	txns := max(n/1000, 6)
	perTxn := max(n/10/txns, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			produce(&kgo.Record{Topic: topic, Key: []byte(key(i % keys)), Value: []byte(fmt.Sprintf("p%d", i))})
		}
		if err := plain.Flush(ctxT(t, 5*time.Minute)); err != nil {
			l.fail(err)
		}
	}()
	aborted := 0
	go func() {
		defer wg.Done()
		for i := range txns {
			commit := i%3 != 1
			prefix := "c"
			if !commit {
				prefix = "a"
				aborted++
			}
			recs := map[string]string{}
			for j := range perTxn {
				recs[key((i*perTxn+j)*7919%keys)] = fmt.Sprintf("%s%d-%d", prefix, i, j)
			}
			if err := inTxn(recs, commit); err != nil {
				l.fail(fmt.Errorf("transaction %d (commit %v): %w", i, commit, err))
				return
			}
		}
	}()
	wg.Wait()
	l.check(t)
	t.Logf("produced %d plain records and %d transactions of %d records (%d aborted) over %d keys in %v",
		n, txns, perTxn, aborted, keys, time.Since(began))

	// Tombstones: expired ones (timestamped before delete.retention.ms)
	// for the keys k ≡ 1 (mod 10), fresh ones for k ≡ 2 (mod 10).
	old := time.Now().Add(-2 * time.Hour)
	expired := map[string]bool{}
	for k := 1; k < keys; k += 10 {
		expired[key(k)] = true
		produce(&kgo.Record{Topic: topic, Key: []byte(key(k)), Timestamp: old})
	}
	if err := plain.Flush(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	for k := 2; k < keys; k += 10 {
		produce(&kgo.Record{Topic: topic, Key: []byte(key(k))})
	}
	if err := plain.Flush(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	l.check(t)

	// An aborted transaction of one record larger than a segment: it
	// fills a segment of its own, its marker opens the next one, and the
	// cleaner runs while that marker is in the active segment.
	big := make([]byte, 300<<10)
	rand.Read(big)
	if err := inTxn(map[string]string{key(3): "a-big-" + string(big)}, false); err != nil {
		t.Fatal(err)
	}
	waitCleanerRounds(t, b, 2)

	// One record of its own rolls the segment: everything before it is
	// cleanable.
	rand.Read(big)
	produce(&kgo.Record{Topic: topic, Key: []byte("roll"), Value: big})
	if err := plain.Flush(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	l.check(t)

	began = time.Now()
	waitCleanerRounds(t, b, 2)
	// Converged: a round after the roll found the dirty part below
	// min.cleanable.dirty.ratio (only the marker's segment is dirty now;
	// the pass over the big aborted record cleaned all before it).
	waitFor(t, 5*time.Minute, "the cleaner to find too little to clean", func() bool {
		r, ok := b.scrape(t).value("sluice_log_cleaner_dirty_ratio", "topic="+topic, "partition=0")
		return ok && r < 0.01
	})
	t.Logf("cleaned in %v after the last record", time.Since(began))

	want := compactedWant{}
	for k, w := range l.want {
		if !expired[k] {
			want[k] = w
		}
	}
	check := func(when string) {
		t.Helper()
		for _, iso := range []kgo.IsolationLevel{kgo.ReadCommitted(), kgo.ReadUncommitted()} {
			recs := readTopicAt(t, b, topic, iso)
			t.Logf("%s, %v: %d records", when, iso, len(recs))
			checkCompacted(t, recs, want, true)
		}
	}
	check("after cleaning")

	s := b.scrape(t)
	size, _ := s.value("sluice_partition_size_bytes", "topic="+topic, "partition=0")
	appended, _ := s.value("sluice_storage_appended_bytes_total", "log=partition")
	read, _ := s.value("sluice_log_cleaner_bytes_read_total")
	written, _ := s.value("sluice_log_cleaner_bytes_written_total")
	freed, _ := s.value("sluice_log_cleaner_bytes_freed_total")
	segs, _ := s.value("sluice_log_cleaner_segments_cleaned_total")
	removed, _ := s.value("sluice_log_cleaner_records_removed_total")
	uncleanable, ok := s.value("sluice_log_cleaner_uncleanable_partitions")
	t.Logf("partition %.0f bytes of %.0f appended; cleaner read %.0f, wrote %.0f, freed %.0f bytes, cleaned %.0f segments, removed %.0f records",
		size, appended, read, written, freed, segs, removed)
	switch {
	case size <= 0 || size*4 > appended:
		t.Fatalf("partition holds %.0f bytes of the %.0f appended: want well under a quarter", size, appended)
	case segs == 0 || read == 0 || written == 0 || freed == 0 || written >= read:
		t.Fatalf("cleaner metrics: read %.0f, written %.0f, freed %.0f bytes, %.0f segments", read, written, freed, segs)
	case removed < float64(n/2):
		t.Fatalf("cleaner removed %.0f records of %d superseded plain records at least", removed, n-keys)
	case !ok || uncleanable != 0:
		t.Fatalf("uncleanable partitions: %v (present %v)", uncleanable, ok)
	}

	// After a restart the partition's transactions are rebuilt from the
	// cleaned log, its closed segments' persisted summaries (written at
	// the latest when the broker stops): the result reads the same.
	b.Stop()
	dir := filepath.Join(b.DataDir, "topics", topic+"-0")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sidecars, _ := filepath.Glob(filepath.Join(dir, "*.sidecar"))
	if len(logs) < 2 || len(sidecars) != len(logs)-1 {
		t.Fatalf("%d transaction summaries for %d segments: want one per closed segment", len(sidecars), len(logs))
	}
	b.Restart()
	check("after a restart")
}

// TestPythonConfluentCompactedTransactions: confluent-kafka (librdkafka)
// writes committed and aborted transactions, plain records and tombstones
// to a compacted topic (test/python/confluent_compacted_txn.py produce);
// once the cleaner has cleaned all of it (the partition's dirty ratio in
// /metrics is 0, the topic's min.cleanable.dirty.ratio), a read_committed
// confluent-kafka consumer reads exactly the latest committed value or
// tombstone of each key (read).
func TestPythonConfluentCompactedTransactions(t *testing.T) {
	needPythonModule(t, "confluent_kafka")
	b := startBroker(t, "--cleaner-interval=200ms", "--cleaner-bytes-per-second=-1")
	path, err := filepath.Abs(filepath.Join("python", "confluent_compacted_txn.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 2*time.Minute, "", python3Path, path, b.Kafka, "produce").must(t, b, "confluent_compacted_txn.py produce")
	t.Logf("produce:\n%s", r.Stdout)
	waitCleanerRounds(t, b, 2)
	waitFor(t, 2*time.Minute, "the cleaner to clean cf-compact", func() bool {
		r, ok := b.scrape(t).value("sluice_log_cleaner_dirty_ratio", "topic=cf-compact", "partition=0")
		return ok && r == 0
	})
	segs, _ := b.scrape(t).value("sluice_log_cleaner_segments_cleaned_total")
	if segs == 0 {
		t.Fatal("no segment cleaned")
	}
	r = runTool(t, 2*time.Minute, "", python3Path, path, b.Kafka, "read").must(t, b, "confluent_compacted_txn.py read")
	t.Logf("read:\n%s", r.Stdout)
}

// TestTxnIndexKill9: transactions (one in three aborted) into a topic of
// small segments, with the broker writing the closed segments' persisted
// transaction summaries every 50 ms (the retention tick), killed (SIGKILL)
// after every SLUICE_TXN_INDEX_KILL_TXNS transactions
// SLUICE_TXN_INDEX_KILLS times (default 20 and 4), so that kills land
// while summaries are written: after each restart read_committed reads
// exactly the committed records, read_uncommitted every record, and the
// last stable offset is the end (no transaction left open); after a clean
// stop every closed segment has its summary, and the partition opened from
// them reads the same.
func TestTxnIndexKill9(t *testing.T) {
	kills := envInt(t, "SLUICE_TXN_INDEX_KILLS", 4)
	perKill := envInt(t, "SLUICE_TXN_INDEX_KILL_TXNS", 20)
	b := startBroker(t, "--retention-check-interval=50ms")
	const topic = "txn-index"
	b.createTopic(t, topic, 1, map[string]*string{"segment.bytes": strPtr("65536")})
	pad := make([]byte, 4000)
	rand.Read(pad) // incompressible: the segments roll
	var committed, all []string
	checkRead := func(when string) {
		t.Helper()
		if got := readAll(t, b, topic, 1, true); !equalStrings(got, sortedJoin(committed)) {
			t.Fatalf("%s: read_committed read %d records, want the %d committed", when, len(got), len(committed))
		}
		if got := readAll(t, b, topic, 1, false); len(got) != len(all) {
			t.Fatalf("%s: read_uncommitted read %d records, want %d", when, len(got), len(all))
		}
		adm := b.admin(t)
		ends, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
		if err != nil {
			t.Fatal(err)
		}
		stable, err := adm.ListCommittedOffsets(ctxT(t, 10*time.Second), topic)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := ends.Lookup(topic, 0)
		s, _ := stable.Lookup(topic, 0)
		if e.Offset != s.Offset {
			t.Fatalf("%s: last stable offset %d, end %d: a transaction left open", when, s.Offset, e.Offset)
		}
	}
	n := 0
	for k := range kills {
		tx := txnProducer(t, b, "txn-index", kgo.ProducerLinger(time.Millisecond))
		ctx := ctxT(t, time.Minute)
		for range perKill {
			commit := n%3 != 1
			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			var vals []string
			for j := range 5 {
				v := fmt.Sprintf("t%04d-%d", n, j)
				vals = append(vals, v)
				if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "pad", Value: pad}}}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
			all = append(all, vals...)
			if commit {
				committed = append(committed, vals...)
			}
			n++
		}
		tx.Close()
		b.Kill()
		b.Restart()
		checkRead(fmt.Sprintf("after kill %d", k))
	}
	b.Stop()
	dir := filepath.Join(b.DataDir, "topics", topic+"-0")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sidecars, _ := filepath.Glob(filepath.Join(dir, "*.sidecar"))
	if len(logs) < 10 || len(sidecars) != len(logs)-1 {
		t.Fatalf("%d transaction summaries for %d segments: want many segments, one summary per closed one", len(sidecars), len(logs))
	}
	b.Restart()
	checkRead("after a clean stop")
}

// TestCompactionKill9WithTransactions kills the broker (SIGKILL) while the
// (throttled) cleaner rewrites the segments of a compacted topic holding
// plain records, committed and aborted transactions and tombstones (and
// while the segments' transaction summaries are written, every 100 ms),
// SLUICE_COMPACTION_KILLS times (default 3): after each restart no
// temporary file is left and read_committed reads, in offset order, every
// key's latest committed record (older ones may remain before it; no
// aborted one); at the end the unthrottled cleaner leaves exactly the
// latest committed record per key, at both isolation levels.
func TestCompactionKill9WithTransactions(t *testing.T) {
	kills := envInt(t, "SLUICE_COMPACTION_KILLS", 3)
	b := startBroker(t, "--cleaner-interval=100ms", "--cleaner-bytes-per-second=262144", "--retention-check-interval=100ms")
	const topic = "kvtx"
	b.createTopic(t, topic, 1, map[string]*string{
		"cleanup.policy": strPtr("compact"), "segment.bytes": strPtr("65536"),
		"min.cleanable.dirty.ratio": strPtr("0"), "delete.retention.ms": strPtr("3600000"),
	})
	const keys = 4000
	key := func(i int) string { return fmt.Sprintf("k%d", i) }
	l := &latestLog{want: compactedWant{}}
	plain := b.client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	tx := txnProducer(t, b, "kvtx-txn", kgo.ProducerLinger(5*time.Millisecond))
	for round := range 10 {
		for i := range 4000 {
			l.produce(plain, &kgo.Record{Topic: topic, Key: []byte(key((round*4000 + i) % keys)), Value: []byte(fmt.Sprintf("p%d-%d", round, i))})
		}
		if err := plain.Flush(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			recs := map[string]string{}
			for i := range 100 {
				recs[key((round*997+j*331+i*7)%keys)] = fmt.Sprintf("t%d-%d-%d", round, j, i)
			}
			if err := l.inTxn(t, tx, topic, recs, j != 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k := 5; k < keys; k += 10 {
		l.produce(plain, &kgo.Record{Topic: topic, Key: []byte(key(k))})
	}
	if err := plain.Flush(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A produce of its own (not in the tombstones' batch) rolls the
	// segment.
	big := make([]byte, 100<<10)
	rand.Read(big)
	l.produce(plain, &kgo.Record{Topic: topic, Key: []byte("roll"), Value: big})
	if err := plain.Flush(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	l.check(t)
	tx.Close()

	dir := filepath.Join(b.DataDir, "topics", topic+"-0")
	tmpFiles := func() []string {
		names, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
		return names
	}
	base := b.extra
	for i := range kills {
		waitFor(t, time.Minute, "a cleaned segment being written", func() bool {
			names, _ := filepath.Glob(filepath.Join(dir, "*.log.tmp"))
			return len(names) > 0
		})
		b.Kill()
		t.Logf("kill %d: %d temporary files left by the dead broker", i, len(tmpFiles()))
		b.extra = append(append([]string(nil), base...), "--cleaner-interval=1h")
		b.Restart()
		if left := tmpFiles(); len(left) > 0 {
			t.Fatalf("kill %d: temporary files after recovery: %v", i, left)
		}
		checkCompacted(t, readTopicAt(t, b, topic, kgo.ReadCommitted()), l.want, false)
		b.Stop()
		b.extra = base
		b.Restart()
	}
	b.Stop()
	b.extra = append(append([]string(nil), base...), "--cleaner-bytes-per-second=-1")
	b.Restart()
	waitFor(t, 2*time.Minute, "the cleaner to finish after the kills", func() bool {
		return len(readTopicAt(t, b, topic, kgo.ReadUncommitted())) == len(l.want)
	})
	for _, iso := range []kgo.IsolationLevel{kgo.ReadCommitted(), kgo.ReadUncommitted()} {
		checkCompacted(t, readTopicAt(t, b, topic, iso), l.want, true)
	}
}

// TestPythonKafkaCompacted: kafka-python (Debian's 2.0.2, which has no
// transactions) writes rounds of every key and tombstones to a compacted
// topic and, once the cleaner is done (/metrics), reads across the
// offset gaps exactly the latest value or tombstone per key.
func TestPythonKafkaCompacted(t *testing.T) {
	needPythonModule(t, "kafka")
	b := startBroker(t, "--cleaner-interval=200ms", "--cleaner-bytes-per-second=-1")
	path, err := filepath.Abs(filepath.Join("python", "kafka_python_compacted.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 2*time.Minute, "", python3Path, path, b.Kafka, "produce").must(t, b, "kafka_python_compacted.py produce")
	t.Logf("produce:\n%s", r.Stdout)
	// The gauge reads 0 too before the cleaner first looks at the topic:
	// wait for cleaned segments as well.
	waitFor(t, 2*time.Minute, "the cleaner to clean kp-compact", func() bool {
		m := b.scrape(t)
		r, ok := m.value("sluice_log_cleaner_dirty_ratio", "topic=kp-compact", "partition=0")
		segs, _ := m.value("sluice_log_cleaner_segments_cleaned_total")
		return ok && r == 0 && segs > 0
	})
	r = runTool(t, 2*time.Minute, "", python3Path, path, b.Kafka, "read").must(t, b, "kafka_python_compacted.py read")
	t.Logf("read:\n%s", r.Stdout)
}
