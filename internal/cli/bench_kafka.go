package cli

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func init() { benchCommands = append(benchCommands, newBenchKafkaCmd) }

type benchKafkaOptions struct {
	topic         string
	partitions    int32
	producers     int
	consumers     int
	recordSize    int
	rate          float64
	duration      time.Duration
	records       int64
	acks          string
	compression   string
	linger        time.Duration
	maxInflight   int
	batchMaxBytes int32
	maxBuffered   int
	txnRecords    int
	txnClassic    bool
	json          bool
}

const (
	// benchHeader is the part of each value the bench reads back: the
	// send time (unix nanoseconds) and the run's ID, both big-endian.
	benchHeader = 16

	// benchDrainIdle is how long consumers may go without progress, once
	// producing stopped, before the acknowledged records they have not
	// seen are reported missing.
	benchDrainIdle = 10 * time.Second

	// benchGrace bounds waiting for acknowledgements after the last send.
	benchGrace = 30 * time.Second
)

func newBenchKafkaCmd() *cobra.Command {
	var (
		cf clientFlags
		o  benchKafkaOptions
	)
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Kafka load generator: producer throughput, ack and end-to-end latency",
		Long: `Produce fixed-size records to a topic (created with --partitions if missing)
from --producers clients, each its own connection, while --consumers clients
read the new records back, and measure:

  - throughput of acknowledged records (records/s and MB/s, MB = 10^6 bytes);
  - ack latency: from the send call to the producer's acknowledgement;
  - end-to-end latency: from the send call to a consumer receiving it.

Each value starts with its send time (unix nanoseconds, 8 bytes big-endian)
and the run's random ID (8 bytes); the rest is random bytes, so compression
gains nothing. Consumers use no group: they are assigned the topic's
partitions directly, starting at the end offsets taken before the first send,
and count only this run's records.

--rate paces the total send rate (split evenly among producers) by due
time: record i of a producer is sent at start + i/rate, so short stalls are
caught up and the average rate is exact; 0 sends flat out. The run stops
after --duration, or after --records (then --duration is no limit unless
given too), waits for acknowledgements and for the consumers to catch up,
and prints a summary; progress goes to standard error every second.
Latencies are kept in log-linear histograms with 0.8% resolution.

--txn-records N makes each producer transactional: it commits a transaction
every N records (and at the end), and consumers read with read_committed. A
record then counts as acknowledged when its transaction commits, and its ack
latency runs from the send call to the commit's answer. The producers run
transaction version 2 (KIP-890) where the broker offers it; --txn-classic
keeps them on the classic protocol (EndTxn capped at v4), for comparison.

The broker's durability policy (fsync) is a server setting: report it with
the results.`,
		Example: `  sluice bench kafka --duration 10s
  sluice bench kafka --rate 20000 --duration 60s
  sluice bench kafka --records 1000000 --producers 4 --consumers 4 --partitions 16
  sluice bench kafka --acks 1 --compression lz4 --linger 5ms --record-size 200
  sluice bench kafka --txn-records 1000 --producers 4 --duration 30s
  sluice bench kafka --consumers 0 --json > result.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("records") && !cmd.Flags().Changed("duration") {
				o.duration = 0
			}
			return runBenchKafka(&cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "sluice-bench", "topic to produce to and consume from")
	f.Int32Var(&o.partitions, "partitions", 8, "partitions of the topic if the bench creates it")
	f.IntVar(&o.producers, "producers", 1, "producer clients, each with its own connections")
	f.IntVar(&o.consumers, "consumers", 1, "consumer clients sharing the partitions (0: produce only)")
	f.IntVar(&o.recordSize, "record-size", 1024, "bytes per record value (at least 16)")
	f.Float64Var(&o.rate, "rate", 0, "total records per second (0: as fast as possible)")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "how long to produce")
	f.Int64Var(&o.records, "records", 0, "records to produce in total (0: no limit)")
	f.StringVar(&o.acks, "acks", "all", "all, 1 or 0")
	f.StringVar(&o.compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&o.linger, "linger", 0, "how long a producer waits to fill a batch")
	f.IntVar(&o.maxInflight, "max-inflight", 0, "produce requests in flight per broker; setting it turns idempotent writes off (0: the client's default, 5 with idempotence)")
	f.Int32Var(&o.batchMaxBytes, "batch-max-bytes", 0, "largest record batch a producer builds (0: the client's default, 1 MiB)")
	f.IntVar(&o.maxBuffered, "max-buffered", 10000, "records a producer buffers before sending blocks")
	f.IntVar(&o.txnRecords, "txn-records", 0, "records per transaction: producers are transactional and consumers read committed (0: no transactions)")
	f.BoolVar(&o.txnClassic, "txn-classic", false, "with --txn-records: the classic transaction protocol (EndTxn capped at v4) instead of transaction version 2")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on standard output (the text summary goes to standard error)")
	return cmd
}

func (o *benchKafkaOptions) validate() error {
	switch {
	case o.topic == "":
		return errors.New("--topic must not be empty")
	case o.partitions < 1:
		return errors.New("--partitions must be at least 1")
	case o.producers < 1:
		return errors.New("--producers must be at least 1")
	case o.consumers < 0:
		return errors.New("--consumers must not be negative")
	case o.recordSize < benchHeader:
		return fmt.Errorf("--record-size must be at least %d (the send time and run ID)", benchHeader)
	case o.rate < 0:
		return errors.New("--rate must not be negative")
	case o.duration < 0 || o.records < 0:
		return errors.New("--duration and --records must not be negative")
	case o.duration == 0 && o.records == 0:
		return errors.New("give --duration or --records: the bench must end by itself")
	case o.maxInflight < 0 || o.batchMaxBytes < 0 || o.maxBuffered < 1:
		return errors.New("--max-inflight, --batch-max-bytes and --max-buffered must be positive")
	case o.txnRecords < 0:
		return errors.New("--txn-records must not be negative")
	case o.txnRecords > 0 && (o.acks != "all" || o.maxInflight > 0):
		return errors.New("--txn-records needs idempotent writes: --acks all and no --max-inflight")
	case o.txnClassic && o.txnRecords == 0:
		return errors.New("--txn-classic needs --txn-records")
	}
	if _, err := ackOpts(o.acks); err != nil {
		return err
	}
	_, err := compressionCodec(o.compression)
	return err
}

// benchRun is the shared state of one run: counters read by the progress
// reporter, and the latency histograms.
type benchRun struct {
	opts     benchKafkaOptions
	runID    uint64
	template []byte
	free     chan []byte // value buffers returned by acknowledgements
	start    time.Time

	sent, acked, failed, consumed, foreign atomic.Int64
	ackedBytes, consumedBytes              atomic.Int64
	lastAck, lastConsume                   atomic.Int64 // unix nanoseconds
	maxBehind                              atomic.Int64 // pacing: worst lateness of a send

	ackLat, e2eLat latencyRecorder

	errMu                  sync.Mutex
	produceErr, consumeErr error
	produceErrs, fetchErrs int64
	partitions, nConsumers int
}

// latencyRecorder is a histogram for the current progress interval and
// one for the whole run, behind one lock.
type latencyRecorder struct {
	mu       sync.Mutex
	interval histogram
	total    histogram
}

func (l *latencyRecorder) record(d time.Duration) {
	l.mu.Lock()
	l.interval.Record(d)
	l.mu.Unlock()
}

// takeInterval copies the interval into dst, folds it into the total and
// starts a new interval.
func (l *latencyRecorder) takeInterval(dst *histogram) {
	l.mu.Lock()
	*dst = l.interval
	l.total.Merge(&l.interval)
	l.interval.Reset()
	l.mu.Unlock()
}

func runBenchKafka(cf *clientFlags, o benchKafkaOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, stop := interruptContext()
	defer stop()

	// A short metadata cache, so that a topic just created is seen at once.
	adm, err := cf.newAdmin(kgo.MetadataMinAge(50 * time.Millisecond))
	if err != nil {
		return err
	}
	defer adm.Close()
	partitions, err := ensureBenchTopic(ctx, adm, o, stderr)
	if err != nil {
		return cf.explainTimeout(err)
	}

	b := &benchRun{
		opts:       o,
		runID:      rand.Uint64(),
		template:   make([]byte, o.recordSize),
		free:       make(chan []byte, o.producers*o.maxBuffered),
		partitions: partitions,
	}
	rng := rand.NewChaCha8([32]byte{byte(b.runID)})
	rng.Read(b.template)

	consumers, err := b.newConsumers(ctx, cf, adm)
	if err != nil {
		return err
	}
	defer closeClients(consumers)
	producers, err := b.newProducers(cf)
	if err != nil {
		return err
	}

	// Connect every client before the clock starts, so that the first
	// latencies do not include dialing.
	pingCtx, cancelPing := context.WithTimeout(ctx, adminTimeout)
	for _, c := range append(append([]*kgo.Client(nil), producers...), consumers...) {
		if err := c.Ping(pingCtx); err != nil {
			cancelPing()
			closeClients(producers)
			return cf.explainTimeout(fmt.Errorf("connecting: %w", err))
		}
	}
	cancelPing()

	fmt.Fprintf(stderr, "bench: %s, rate %s, %s\n", b.setupString(), rateString(o.rate), boundString(o))

	b.start = time.Now()
	var deadline time.Time
	if o.duration > 0 {
		deadline = b.start.Add(o.duration)
	}

	reportDone := make(chan struct{})
	reportStopped := make(chan struct{})
	go func() { defer close(reportStopped); b.report(stderr, reportDone) }()

	consumeCtx, stopConsumers := context.WithCancel(context.Background())
	defer stopConsumers()
	var consWG sync.WaitGroup
	for _, c := range consumers {
		consWG.Go(func() { b.consume(consumeCtx, c) })
	}

	// Records outlive a SIGINT for a moment, and the whole run for at
	// most benchGrace after its deadline, so that it always ends.
	produceCtx, cancelProduce := context.WithCancel(context.Background())
	defer cancelProduce()
	producersDone := make(chan struct{})
	go func() {
		var hard <-chan time.Time
		if !deadline.IsZero() {
			hard = time.After(time.Until(deadline) + benchGrace)
		}
		select {
		case <-ctx.Done():
			select {
			case <-time.After(5 * time.Second):
			case <-producersDone:
			}
		case <-hard:
		case <-producersDone:
		}
		cancelProduce()
	}()

	var prodWG sync.WaitGroup
	for i, c := range producers {
		quota := int64(-1)
		if o.records > 0 {
			quota = o.records / int64(len(producers))
			if int64(i) < o.records%int64(len(producers)) {
				quota++
			}
		}
		prodWG.Go(func() {
			b.produce(ctx, produceCtx, c, quota, o.rate/float64(len(producers)), deadline)
			c.Close() // fails whatever is still unacknowledged
		})
	}
	prodWG.Wait()
	close(producersDone)
	producedFor := time.Since(b.start)

	missing := int64(0)
	if len(consumers) > 0 {
		idle := benchDrainIdle
		if ctx.Err() != nil {
			idle = 2 * time.Second // interrupted: do not keep the user waiting
		}
		missing = b.drain(idle)
	}
	stopConsumers()
	consWG.Wait()
	close(reportDone)
	<-reportStopped

	sum := b.summary(producedFor, missing)
	sum.Interrupted = ctx.Err() != nil
	if err := writeBenchSummary(stdout, stderr, o.json, sum.writeText, sum); err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case sum.Failed > 0:
		return fmt.Errorf("%d records failed: %s", sum.Failed, sum.ProduceError)
	case missing > 0 && o.acks != "0":
		return fmt.Errorf("%d acknowledged records were not consumed", missing)
	}
	return nil
}

// ensureBenchTopic creates the topic if it is missing and returns its
// partition count.
func ensureBenchTopic(ctx context.Context, adm *kadm.Client, o benchKafkaOptions, stderr io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, o.partitions, -1, nil, o.topic)
	switch {
	case err != nil && resp.Err == nil:
		return 0, err
	case resp.Err == nil && resp.NumPartitions > 0:
		return int(resp.NumPartitions), nil
	case resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists):
		return 0, fmt.Errorf("create topic %s: %w", o.topic, withMessage(resp.Err, resp.ErrMessage))
	}
	existed := resp.Err != nil
	// The topic exists, or was created by a broker that does not say
	// with how many partitions: ask the metadata until it has them.
	for {
		topics, err := adm.ListTopics(ctx, o.topic)
		if err != nil {
			return 0, err
		}
		t, ok := topics[o.topic]
		if ok && t.Err == nil && len(t.Partitions) > 0 {
			if existed && int32(len(t.Partitions)) != o.partitions {
				fmt.Fprintf(stderr, "bench: using existing topic %s with %d partitions\n", o.topic, len(t.Partitions))
			}
			return len(t.Partitions), nil
		}
		if ok && t.Err != nil && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("topic %s: %w", o.topic, t.Err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newConsumers builds the consumer clients, dividing the partitions among
// them and starting each at the partition's current end.
func (b *benchRun) newConsumers(ctx context.Context, cf *clientFlags, adm *kadm.Client) ([]*kgo.Client, error) {
	n := min(b.opts.consumers, b.partitions)
	b.nConsumers = n
	if n == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, b.opts.topic)
	if err != nil {
		return nil, cf.explainTimeout(err)
	}
	assign := make([]map[int32]kgo.Offset, n)
	for p := range b.partitions {
		end, ok := ends.Lookup(b.opts.topic, int32(p))
		if !ok || end.Err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %v", b.opts.topic, p, end.Err)
		}
		if assign[p%n] == nil {
			assign[p%n] = map[int32]kgo.Offset{}
		}
		assign[p%n][int32(p)] = kgo.NewOffset().At(end.Offset)
	}
	return cf.newClients(n, func(i int) []kgo.Opt {
		opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{b.opts.topic: assign[i]})}
		if b.opts.txnRecords > 0 {
			opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		}
		return opts
	})
}

func (b *benchRun) newProducers(cf *clientFlags) ([]*kgo.Client, error) {
	o := b.opts
	opts, _ := ackOpts(o.acks)
	codec, _ := compressionCodec(o.compression)
	opts = append(opts,
		kgo.DefaultProduceTopic(o.topic),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(o.linger),
		kgo.MaxBufferedRecords(o.maxBuffered),
		kgo.RecordDeliveryTimeout(benchGrace),
	)
	if o.maxInflight > 0 {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(o.maxInflight))
	}
	if o.batchMaxBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(o.batchMaxBytes))
	}
	if o.txnClassic {
		v := kversion.Stable()
		v.SetMaxKeyVersion(int16(kmsg.EndTxn), 4) // franz-go then keeps to the classic protocol
		opts = append(opts, kgo.MaxVersions(v))
	}
	return cf.newClients(o.producers, func(i int) []kgo.Opt {
		if o.txnRecords == 0 {
			return opts
		}
		return append(opts[:len(opts):len(opts)], kgo.TransactionalID(fmt.Sprintf("sluice-bench-%016x-%d", b.runID, i)))
	})
}

// produce sends up to quota records (negative: no limit) until deadline
// (zero: none) or until ctx ends, at rate records/s (0: flat out), and
// waits for their acknowledgements.
func (b *benchRun) produce(ctx, produceCtx context.Context, cl *kgo.Client, quota int64, rate float64, deadline time.Time) {
	var (
		behind time.Duration
		txn    *benchTxn
	)
	if b.opts.txnRecords > 0 {
		txn = &benchTxn{b: b, cl: cl, ctx: produceCtx}
		defer txn.end()
	}
	for i := int64(0); quota < 0 || i < quota; i++ {
		if ctx.Err() != nil {
			break
		}
		now := time.Now()
		if rate > 0 {
			due := b.start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
			if !deadline.IsZero() && !due.Before(deadline) {
				break
			}
			if late := now.Sub(due); late < 0 {
				if !pace(ctx, due) {
					break
				}
				now = time.Now()
			} else {
				behind = max(behind, late)
			}
		}
		if rate == 0 && !deadline.IsZero() && !now.Before(deadline) {
			break
		}
		v := b.value(now)
		if txn != nil && !txn.add(now) {
			break
		}
		b.sent.Add(1)
		cl.Produce(produceCtx, &kgo.Record{Value: v}, b.onAck)
		if txn != nil && len(txn.sent) == b.opts.txnRecords && !txn.end() {
			break
		}
	}
	for {
		cur := b.maxBehind.Load()
		if int64(behind) <= cur || b.maxBehind.CompareAndSwap(cur, int64(behind)) {
			break
		}
	}
	cl.Flush(produceCtx)
}

// benchTxn is a producer's open transaction: the send times of its
// records, which count as acknowledged when it commits.
type benchTxn struct {
	b    *benchRun
	cl   *kgo.Client
	ctx  context.Context
	sent []int64 // unix nanoseconds
	open bool
}

// add opens a transaction if none is open and notes a record's send
// time; it reports false if the transaction could not begin.
func (t *benchTxn) add(now time.Time) bool {
	if !t.open {
		if err := t.cl.BeginTransaction(); err != nil {
			t.fail(0, err)
			return false
		}
		t.open = true
	}
	t.sent = append(t.sent, now.UnixNano())
	return true
}

// end flushes and commits the open transaction, if any, and counts its
// records as acknowledged or failed; it reports whether it committed.
func (t *benchTxn) end() bool {
	if !t.open {
		return true
	}
	t.open = false
	n := int64(len(t.sent))
	defer func() { t.sent = t.sent[:0] }()
	if err := t.cl.Flush(t.ctx); err != nil {
		t.cl.EndTransaction(t.ctx, kgo.TryAbort)
		t.fail(n, err)
		return false
	}
	if err := t.cl.EndTransaction(t.ctx, kgo.TryCommit); err != nil {
		t.cl.EndTransaction(t.ctx, kgo.TryAbort)
		t.fail(n, err)
		return false
	}
	b := t.b
	now := time.Now().UnixNano()
	b.ackLat.mu.Lock()
	for _, sent := range t.sent {
		b.ackLat.interval.Record(time.Duration(now - sent))
	}
	b.ackLat.mu.Unlock()
	b.acked.Add(n)
	b.ackedBytes.Add(n * int64(b.opts.recordSize))
	b.lastAck.Store(now)
	return true
}

func (t *benchTxn) fail(n int64, err error) {
	b := t.b
	b.failed.Add(n)
	b.errMu.Lock()
	b.produceErrs++
	b.produceErr = fmt.Errorf("transaction: %w", err)
	b.errMu.Unlock()
}

// benchSpinBelow is the wait under which pacing spins instead of sleeping:
// a sleep takes up to a millisecond here, so a longer wait is slept and
// the records that fall due meanwhile are sent at once.
const benchSpinBelow = 20 * time.Microsecond

// pace waits until due; it reports false if ctx ended first.
func pace(ctx context.Context, due time.Time) bool {
	for {
		wait := time.Until(due)
		switch {
		case wait <= 0:
			return true
		case ctx.Err() != nil:
			return false
		case wait < benchSpinBelow:
			runtime.Gosched()
		case wait < 50*time.Millisecond:
			time.Sleep(wait)
		default:
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
	}
}

// value returns a record value stamped with the send time and run ID.
func (b *benchRun) value(now time.Time) []byte {
	var v []byte
	select {
	case v = <-b.free:
	default:
		v = make([]byte, len(b.template))
		copy(v, b.template)
	}
	binary.BigEndian.PutUint64(v[0:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(v[8:16], b.runID)
	return v
}

func (b *benchRun) onAck(r *kgo.Record, err error) {
	now := time.Now()
	switch {
	case b.opts.txnRecords > 0 && err != nil:
		// The transaction fails as a whole: benchTxn.end counts it.
		b.errMu.Lock()
		if b.produceErr == nil {
			b.produceErr = err
		}
		b.errMu.Unlock()
	case b.opts.txnRecords > 0:
		// Acknowledged when the transaction commits.
	case err != nil:
		b.failed.Add(1)
		b.errMu.Lock()
		b.produceErrs++
		if b.produceErr == nil {
			b.produceErr = err
		}
		b.errMu.Unlock()
	default:
		sent := int64(binary.BigEndian.Uint64(r.Value))
		b.ackLat.record(time.Duration(now.UnixNano() - sent))
		b.acked.Add(1)
		b.ackedBytes.Add(int64(len(r.Value)))
		b.lastAck.Store(now.UnixNano())
	}
	select {
	case b.free <- r.Value:
	default:
	}
}

// consume reads this run's records until ctx ends.
func (b *benchRun) consume(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			b.errMu.Lock()
			b.fetchErrs++
			if b.consumeErr == nil {
				b.consumeErr = fmt.Errorf("%s/%d: %w", topic, p, err)
			}
			b.errMu.Unlock()
		})
		now := time.Now().UnixNano()
		var n, bytes, foreign int64
		b.e2eLat.mu.Lock()
		for r := range fs.RecordsAll() {
			if len(r.Value) < benchHeader || binary.BigEndian.Uint64(r.Value[8:16]) != b.runID {
				foreign++
				continue
			}
			b.e2eLat.interval.Record(time.Duration(now - int64(binary.BigEndian.Uint64(r.Value))))
			n++
			bytes += int64(len(r.Value))
		}
		b.e2eLat.mu.Unlock()
		b.foreign.Add(foreign)
		if n > 0 {
			b.consumed.Add(n)
			b.consumedBytes.Add(bytes)
			b.lastConsume.Store(now)
		}
	}
}

// drain waits until the consumers have seen every acknowledged record, or
// until they make no progress for idle, and returns how many they did not
// see.
func (b *benchRun) drain(idle time.Duration) int64 {
	want := b.acked.Load()
	seen, progress := b.consumed.Load(), time.Now()
	for seen < want && time.Since(progress) < idle {
		time.Sleep(10 * time.Millisecond)
		if n := b.consumed.Load(); n > seen {
			seen, progress = n, time.Now()
		}
	}
	return max(want-b.consumed.Load(), 0)
}

// report prints a progress line every second until done is closed.
func (b *benchRun) report(w io.Writer, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var (
		prevSent, prevAcked, prevBytes, prevConsumed int64
		prevAt                                       = b.start
		ack, e2e                                     histogram
	)
	for {
		select {
		case <-done:
			// Fold what is left of the last interval into the totals.
			b.ackLat.takeInterval(&ack)
			b.e2eLat.takeInterval(&e2e)
			return
		case now := <-t.C:
			secs := now.Sub(prevAt).Seconds()
			prevAt = now
			sent, acked, bytes, consumed := b.sent.Load(), b.acked.Load(), b.ackedBytes.Load(), b.consumed.Load()
			b.ackLat.takeInterval(&ack)
			b.e2eLat.takeInterval(&e2e)
			line := fmt.Sprintf("[%4.0fs] sent %7.0f/s  acked %7.0f/s %7.2f MB/s",
				now.Sub(b.start).Seconds(), float64(sent-prevSent)/secs, float64(acked-prevAcked)/secs,
				float64(bytes-prevBytes)/secs/1e6)
			if b.nConsumers > 0 {
				line += fmt.Sprintf("  consumed %7.0f/s", float64(consumed-prevConsumed)/secs)
			}
			line += fmt.Sprintf("  ack p50 %s p99 %s", fmtLatency(ack.Quantile(0.5)), fmtLatency(ack.Quantile(0.99)))
			if b.nConsumers > 0 {
				line += fmt.Sprintf("  e2e p50 %s p99 %s", fmtLatency(e2e.Quantile(0.5)), fmtLatency(e2e.Quantile(0.99)))
			}
			if f := b.failed.Load(); f > 0 {
				line += fmt.Sprintf("  failed %d", f)
			}
			fmt.Fprintln(w, line)
			prevSent, prevAcked, prevBytes, prevConsumed = sent, acked, bytes, consumed
		}
	}
}

// benchSummary is the result of a run, as printed and as JSON.
type benchSummary struct {
	Topic         string         `json:"topic"`
	Partitions    int            `json:"partitions"`
	Producers     int            `json:"producers"`
	Consumers     int            `json:"consumers"`
	RecordSize    int            `json:"record_size"`
	Acks          string         `json:"acks"`
	Compression   string         `json:"compression"`
	LingerMs      float64        `json:"linger_ms"`
	TargetRate    float64        `json:"target_rate"`
	ProduceSecs   float64        `json:"produce_seconds"`
	MaxBehindMs   float64        `json:"max_behind_schedule_ms,omitempty"`
	TxnRecords    int            `json:"txn_records,omitempty"`
	Sent          int64          `json:"sent"`
	Acked         int64          `json:"acked"`
	Failed        int64          `json:"failed"`
	Consumed      int64          `json:"consumed"`
	Missing       int64          `json:"missing"`
	Interrupted   bool           `json:"interrupted,omitempty"`
	Foreign       int64          `json:"foreign_records_ignored,omitempty"`
	ProduceRate   float64        `json:"produce_records_per_sec"`
	ProduceMBps   float64        `json:"produce_mb_per_sec"`
	ConsumeRate   float64        `json:"consume_records_per_sec"`
	ConsumeMBps   float64        `json:"consume_mb_per_sec"`
	AckLatency    latencySummary `json:"ack_latency"`
	E2ELatency    latencySummary `json:"e2e_latency"`
	ProduceError  string         `json:"produce_error,omitempty"`
	ConsumeError  string         `json:"consume_error,omitempty"`
	FetchErrors   int64          `json:"fetch_errors,omitempty"`
	ProduceErrors int64          `json:"-"`
	setup         string
}

// latencySummary is one latency histogram in milliseconds.
type latencySummary struct {
	Count  uint64  `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

func summarize(h *histogram) latencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return latencySummary{
		Count: h.Count(),
		P50Ms: ms(h.Quantile(0.5)), P99Ms: ms(h.Quantile(0.99)), P999Ms: ms(h.Quantile(0.999)),
		MaxMs: ms(h.Max()), MeanMs: ms(h.Mean()),
	}
}

func (b *benchRun) summary(producedFor time.Duration, missing int64) benchSummary {
	o := b.opts
	s := benchSummary{
		Topic: o.topic, Partitions: b.partitions, Producers: o.producers, Consumers: b.nConsumers,
		RecordSize: o.recordSize, Acks: o.acks, Compression: o.compression,
		LingerMs: float64(o.linger) / 1e6, TargetRate: o.rate, ProduceSecs: producedFor.Seconds(), TxnRecords: o.txnRecords,
		Sent: b.sent.Load(), Acked: b.acked.Load(), Failed: b.failed.Load(),
		Consumed: b.consumed.Load(), Missing: missing, Foreign: b.foreign.Load(),
		AckLatency: summarize(&b.ackLat.total), E2ELatency: summarize(&b.e2eLat.total),
	}
	s.setup = b.setupString()
	if o.rate > 0 {
		s.MaxBehindMs = float64(b.maxBehind.Load()) / 1e6
	}
	// Throughput over the time from the start to the last record seen,
	// so that waiting for stragglers does not dilute it.
	if last := b.lastAck.Load(); last > 0 {
		secs := time.Duration(last - b.start.UnixNano()).Seconds()
		s.ProduceRate = float64(s.Acked) / secs
		s.ProduceMBps = float64(b.ackedBytes.Load()) / secs / 1e6
	}
	if last := b.lastConsume.Load(); last > 0 {
		secs := time.Duration(last - b.start.UnixNano()).Seconds()
		s.ConsumeRate = float64(s.Consumed) / secs
		s.ConsumeMBps = float64(b.consumedBytes.Load()) / secs / 1e6
	}
	b.errMu.Lock()
	if b.produceErr != nil {
		s.ProduceError = b.produceErr.Error()
	}
	if b.consumeErr != nil {
		s.ConsumeError = b.consumeErr.Error()
	}
	s.FetchErrors, s.ProduceErrors = b.fetchErrs, b.produceErrs
	b.errMu.Unlock()
	return s
}

func (s *benchSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", s.setup)
	fmt.Fprintf(w, "records:     sent %d, acked %d, failed %d", s.Sent, s.Acked, s.Failed)
	if s.Consumers > 0 {
		fmt.Fprintf(w, ", consumed %d", s.Consumed)
		switch {
		case s.Missing > 0 && s.Interrupted:
			fmt.Fprintf(w, ", not consumed before the interrupt %d", s.Missing)
		case s.Missing > 0:
			fmt.Fprintf(w, ", MISSING %d", s.Missing)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "produce:     %.0f records/s, %.2f MB/s acknowledged over %.1fs", s.ProduceRate, s.ProduceMBps, s.ProduceSecs)
	if s.TargetRate > 0 {
		fmt.Fprintf(w, " (target %s, at worst %s behind schedule)", rateString(s.TargetRate), fmtLatency(time.Duration(s.MaxBehindMs*1e6)))
	}
	fmt.Fprintln(w)
	if s.Consumers > 0 {
		fmt.Fprintf(w, "consume:     %.0f records/s, %.2f MB/s\n", s.ConsumeRate, s.ConsumeMBps)
	}
	fmt.Fprintf(w, "latency      %9s %9s %9s %9s %9s\n", "p50", "p99", "p99.9", "max", "mean")
	row := func(name string, l latencySummary) {
		d := func(ms float64) string { return fmtLatency(time.Duration(ms * 1e6)) }
		fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s\n", name, d(l.P50Ms), d(l.P99Ms), d(l.P999Ms), d(l.MaxMs), d(l.MeanMs))
	}
	row("ack", s.AckLatency)
	if s.Consumers > 0 {
		row("end-to-end", s.E2ELatency)
	}
	if s.ProduceError != "" {
		fmt.Fprintf(w, "produce errors: %d, first: %s\n", s.ProduceErrors, s.ProduceError)
	}
	if s.ConsumeError != "" {
		fmt.Fprintf(w, "fetch errors: %d, first: %s\n", s.FetchErrors, s.ConsumeError)
	}
	if s.Foreign > 0 {
		fmt.Fprintf(w, "ignored %d records not produced by this run\n", s.Foreign)
	}
}

// fmtLatency prints a duration with three significant digits or so.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// setupString describes what the run does, for its first and last lines.
func (b *benchRun) setupString() string {
	o := b.opts
	s := fmt.Sprintf("topic %s (%s), %s, %s, %d-byte records, acks=%s, compression=%s, linger=%v",
		o.topic, plural(b.partitions, "partition"), plural(o.producers, "producer"), plural(b.nConsumers, "consumer"),
		o.recordSize, o.acks, o.compression, o.linger)
	if o.txnRecords > 0 {
		s += fmt.Sprintf(", transactions of %d records, read_committed", o.txnRecords)
		if o.txnClassic {
			s += ", classic transaction protocol"
		}
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func rateString(rate float64) string {
	if rate == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f/s", rate)
}

func boundString(o benchKafkaOptions) string {
	switch {
	case o.records > 0 && o.duration > 0:
		return fmt.Sprintf("%d records or %v", o.records, o.duration)
	case o.records > 0:
		return fmt.Sprintf("%d records", o.records)
	}
	return fmt.Sprintf("for %v", o.duration)
}

// writeBenchSummary prints a bench summary as text (to stderr when JSON goes
// to stdout) and, with asJSON, as indented JSON on stdout.
func writeBenchSummary(stdout, stderr io.Writer, asJSON bool, writeText func(io.Writer), sum any) error {
	text := stdout
	if asJSON {
		text = stderr
	}
	writeText(text)
	if !asJSON {
		return nil
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sum)
}
