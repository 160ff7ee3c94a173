package cli

import (
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { benchCommands = append(benchCommands, newBenchShapeCmd) }

type benchShapeOptions struct {
	protocol      string
	baseline      string
	url           string
	queue         string
	topic         string
	baseRate      float64
	burstFactor   float64
	burstDuration time.Duration
	quietDuration time.Duration
	duration      time.Duration
	capacity      float64
	size          int
	prefetch      int
	drainTimeout  time.Duration
	callTimeout   time.Duration
	concurrency   int
	csvPath       string
	chartPath     string
	json          bool
}

// shapeHeader is the start of every body: publish time (unix nanoseconds),
// run ID and sequence number, 8 bytes each, big-endian.
const shapeHeader = 24

func newBenchShapeCmd() *cobra.Command {
	var o benchShapeOptions
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "shape",
		Short: "Peak shaving: a burst far above a rate-limited consumer, inflow, outflow and backlog per second",
		Long: `Offer a load with a burst far above what a rate-limited consumer can take,
through the broker, and record what happens second by second: the broker
takes the burst at once and the consumer works it off at its own pace.

The offered load is --base-rate messages per second for --quiet-duration,
then --base-rate × --burst-factor for --burst-duration, then --base-rate
again until --duration has passed; then publishing stops and the run goes on
until the consumer has received everything (or --drain-timeout passes). The
consumer handles at most --capacity messages per second.

--protocol amqp publishes persistent messages with publisher confirms
(amqp091-go) to a durable queue; one consumer acknowledges each message
manually with --prefetch outstanding. --protocol kafka produces with
acks=all (franz-go) to a topic; one consumer in a consumer group of its own,
which starts at the topic's end, commits after each batch it has handled.

Each second the run records: offered (messages the producer sent), inflow
(messages the broker confirmed), outflow (messages the consumer handled),
backlog (sent but not yet handled) and the end-to-end latency, p50 and p99,
of the messages handled in that second (publish to handling, including the
time spent waiting in the backlog).

--baseline direct runs the same offered load without a broker: each message
is a synchronous in-process call to a service of the same --capacity, with
at most --concurrency calls in flight and a --call-timeout; a call that
finds no free slot, or would wait past its timeout, fails. The per-second
record then shows errors instead of a backlog: what overload turns into
when nothing absorbs it.

--csv writes the per-second record; --chart draws it (.svg or .png):
offered, inflow, outflow and backlog (or errors) over time, and the
latency below. --json prints the accounting on standard output: sent,
confirmed, received, duplicates, missing, the largest backlog and the
backlog at the end.`,
		Example: `  sluice bench shape --protocol amqp --csv shape.csv --chart shape.svg
  sluice bench shape --protocol kafka --base-rate 100 --burst-factor 20 --burst-duration 30s --capacity 400 --duration 60s
  sluice bench shape --baseline direct --chart direct.svg
  sluice bench shape --json > accounting.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchShape(cmd.Context(), &cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.protocol, "protocol", "amqp", "amqp or kafka")
	f.StringVar(&o.baseline, "baseline", "", `"direct": call the rate-limited consumer synchronously, without a broker`)
	f.StringVar(&o.url, "url", envOr(amqpURLEnv, defaultAMQPURL), "AMQP URI of the broker, with credentials and vhost (env "+amqpURLEnv+")")
	f.StringVar(&o.queue, "queue", "sluice-shape", "durable queue (--protocol amqp)")
	f.StringVar(&o.topic, "topic", "sluice-shape", "topic, created with one partition if missing (--protocol kafka)")
	f.Float64Var(&o.baseRate, "base-rate", 50, "offered messages per second outside the burst")
	f.Float64Var(&o.burstFactor, "burst-factor", 20, "the burst offers --base-rate times this")
	f.DurationVar(&o.burstDuration, "burst-duration", 5*time.Second, "how long the burst lasts")
	f.DurationVar(&o.quietDuration, "quiet-duration", 5*time.Second, "time at --base-rate before the burst")
	f.DurationVar(&o.duration, "duration", 20*time.Second, "how long to publish in all")
	f.Float64Var(&o.capacity, "capacity", 200, "messages per second the consumer handles at most")
	f.IntVar(&o.size, "size", 256, "bytes per message body (at least 24)")
	f.IntVar(&o.prefetch, "prefetch", 50, "basic.qos prefetch of the AMQP consumer")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute, "how long to wait for the consumer after publishing ends")
	f.DurationVar(&o.callTimeout, "call-timeout", time.Second, "--baseline direct: a call fails if it would wait longer")
	f.IntVar(&o.concurrency, "concurrency", 100, "--baseline direct: calls in flight at most; more fail at once")
	f.StringVar(&o.csvPath, "csv", "", "write the per-second record to this CSV file")
	f.StringVar(&o.chartPath, "chart", "", "draw the per-second record to this file (.svg or .png)")
	f.BoolVar(&o.json, "json", false, "print the accounting as JSON on standard output (the text summary goes to standard error)")
	return cmd
}

func (o *benchShapeOptions) validate() error {
	switch {
	case o.protocol != "amqp" && o.protocol != "kafka":
		return fmt.Errorf("--protocol: %q is not amqp or kafka", o.protocol)
	case o.baseline != "" && o.baseline != "direct":
		return fmt.Errorf("--baseline: %q is not direct", o.baseline)
	case o.baseRate <= 0:
		return errors.New("--base-rate must be positive")
	case o.burstFactor < 1:
		return errors.New("--burst-factor must be at least 1")
	case o.burstDuration < 0 || o.quietDuration < 0:
		return errors.New("--burst-duration and --quiet-duration must not be negative")
	case o.duration <= 0:
		return errors.New("--duration must be positive")
	case o.capacity <= 0:
		return errors.New("--capacity must be positive")
	case o.size < shapeHeader:
		return fmt.Errorf("--size must be at least %d (publish time, run ID, sequence number)", shapeHeader)
	case o.prefetch < 1 || o.prefetch > 65535:
		return errors.New("--prefetch must be between 1 and 65535")
	case o.drainTimeout <= 0 || o.callTimeout <= 0:
		return errors.New("--drain-timeout and --call-timeout must be positive")
	case o.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.chartPath != "" && !strings.HasSuffix(o.chartPath, ".svg") && !strings.HasSuffix(o.chartPath, ".png"):
		return errors.New("--chart must name a .svg or .png file")
	}
	return nil
}

// rateAt is the offered rate at offset t into the run.
func (o *benchShapeOptions) rateAt(t time.Duration) float64 {
	if t >= o.quietDuration && t < o.quietDuration+o.burstDuration {
		return o.baseRate * o.burstFactor
	}
	return o.baseRate
}

// pacer hands out times no closer than 1/rate apart and never banks
// credit while idle: a rate-limited consumer or service.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

// reserve returns when the next unit of work may start.
func (p *pacer) reserve(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	return at
}

// tryReserve is reserve for a caller that waits at most limit: it takes
// no turn if the turn would come later than that.
func (p *pacer) tryReserve(now time.Time, limit time.Duration) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Before(now) {
		p.next = now
	}
	if p.next.Sub(now) > limit {
		return time.Time{}, false
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	return at, true
}

// shapeSecond is one row of the per-second record.
type shapeSecond struct {
	Second   int
	Offered  int64 // messages the producer sent (or calls it made)
	Inflow   int64 // confirmed by the broker (direct: calls accepted)
	Outflow  int64 // handled by the consumer
	Backlog  int64 // sent and not yet handled, at the end of the second
	Errors   int64 // direct: calls that failed
	P50, P99 time.Duration
}

// shapeRun is the shared state of one run.
type shapeRun struct {
	opts  benchShapeOptions
	runID uint64
	start time.Time

	sent, confirmed, nacked, received, dups, errs atomic.Int64

	mu       sync.Mutex
	acked    []bool // by sequence number: confirmed by the broker
	seen     []bool // by sequence number: handled by the consumer
	lat      histogram
	allLat   histogram
	seconds  []shapeSecond
	last     shapeSecond // cumulative counters at the last sample
	maxBack  int64
	consumer pacer
}

func newShapeRun(o benchShapeOptions) *shapeRun {
	r := &shapeRun{opts: o, runID: rand.Uint64()}
	r.consumer.interval = time.Duration(float64(time.Second) / o.capacity)
	return r
}

// body builds message seq with the current time in its header.
func (r *shapeRun) body(seq uint64, pad []byte) []byte {
	b := make([]byte, r.opts.size)
	binary.BigEndian.PutUint64(b[0:], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(b[8:], r.runID)
	binary.BigEndian.PutUint64(b[16:], seq)
	copy(b[shapeHeader:], pad)
	return b
}

func grow(s []bool, i uint64) []bool {
	for uint64(len(s)) <= i {
		s = append(s, make([]bool, len(s)+1024)...)
	}
	return s
}

func (r *shapeRun) markConfirmed(seq uint64) {
	r.mu.Lock()
	r.acked = grow(r.acked, seq)
	r.acked[seq] = true
	r.mu.Unlock()
	r.confirmed.Add(1)
}

// handle is the rate-limited consumer: it waits for its turn, then counts
// the message. It reports false for a message of another run.
func (r *shapeRun) handle(ctx context.Context, body []byte) bool {
	if len(body) < shapeHeader || binary.BigEndian.Uint64(body[8:]) != r.runID {
		return false
	}
	return r.handleAt(ctx, body, r.consumer.reserve(time.Now()))
}

// handleAt counts a message of this run at time at, the consumer's turn.
func (r *shapeRun) handleAt(ctx context.Context, body []byte, at time.Time) bool {
	if wait := time.Until(at); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(body[0:])))
	seq := binary.BigEndian.Uint64(body[16:])
	r.mu.Lock()
	r.seen = grow(r.seen, seq)
	if r.seen[seq] {
		r.mu.Unlock()
		r.dups.Add(1)
		return true
	}
	r.seen[seq] = true
	d := time.Since(sent)
	r.lat.Record(d)
	r.allLat.Record(d)
	r.mu.Unlock()
	r.received.Add(1)
	return true
}

// sample closes one second of the record.
func (r *shapeRun) sample() {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := shapeSecond{
		Offered: r.sent.Load(), Inflow: r.confirmed.Load(),
		Outflow: r.received.Load(), Errors: r.errs.Load(),
	}
	row := shapeSecond{
		Second:  len(r.seconds) + 1,
		Offered: cur.Offered - r.last.Offered,
		Inflow:  cur.Inflow - r.last.Inflow,
		Outflow: cur.Outflow - r.last.Outflow,
		Errors:  cur.Errors - r.last.Errors,
		Backlog: cur.Offered - cur.Outflow - cur.Errors - r.nacked.Load(),
	}
	if r.lat.Count() > 0 {
		row.P50, row.P99 = r.lat.Quantile(0.5), r.lat.Quantile(0.99)
	}
	r.lat.Reset()
	r.last = cur
	r.maxBack = max(r.maxBack, row.Backlog)
	r.seconds = append(r.seconds, row)
}

// produce offers the load, calling send for each message in turn at its
// due time, until --duration has passed.
func (r *shapeRun) produce(ctx context.Context, send func(seq uint64, body []byte)) {
	pad := make([]byte, max(0, r.opts.size-shapeHeader))
	for i := range pad {
		pad[i] = byte(rand.Uint32())
	}
	var due time.Duration
	for seq := uint64(0); due < r.opts.duration; seq++ {
		if wait := time.Until(r.start.Add(due)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.sent.Add(1)
		send(seq, r.body(seq, pad))
		due += time.Duration(float64(time.Second) / r.opts.rateAt(due))
	}
}

func runBenchShape(ctx context.Context, cf *clientFlags, o benchShapeOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r := newShapeRun(o)
	var err error
	switch {
	case o.baseline == "direct":
		err = r.runDirect(ctx, stderr)
	case o.protocol == "amqp":
		err = r.runAMQP(ctx, stderr)
	default:
		err = r.runKafka(ctx, cf, stderr)
	}
	if err != nil {
		return err
	}
	if o.csvPath != "" {
		if err := r.writeCSV(o.csvPath); err != nil {
			return err
		}
	}
	if o.chartPath != "" {
		if err := drawShapeChart(o.chartPath, r.title(), r.seconds, o.baseline == "direct"); err != nil {
			return fmt.Errorf("--chart: %w", err)
		}
	}
	sum := r.summary()
	fmt.Fprintf(stderr, "sent %d, confirmed %d, received %d, duplicates %d, missing %d, errors %d; backlog max %d, at end %d; e2e p50 %v p99 %v\n",
		sum.Sent, sum.Confirmed, sum.Received, sum.Duplicates, sum.Missing, sum.Errors,
		sum.MaxBacklog, sum.BacklogEnd, time.Duration(sum.P50ms*1e6), time.Duration(sum.P99ms*1e6))
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	return nil
}

func (r *shapeRun) title() string {
	o := r.opts
	how := o.protocol + " through Sluice"
	if o.baseline == "direct" {
		how = "direct calls, no broker"
	}
	return fmt.Sprintf("%s: %.0f msg/s, burst ×%.0f for %v, consumer capacity %.0f msg/s", how, o.baseRate, o.burstFactor, o.burstDuration, o.capacity)
}

// sampleUntil samples every second until done is closed, then once more.
func (r *shapeRun) sampleUntil(done <-chan struct{}, stderr io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.sample()
			s := r.seconds[len(r.seconds)-1]
			fmt.Fprintf(stderr, "%3ds offered %5d inflow %5d outflow %5d backlog %6d errors %5d p99 %v\n",
				s.Second, s.Offered, s.Inflow, s.Outflow, s.Backlog, s.Errors, s.P99.Round(time.Millisecond))
		case <-done:
			r.sample()
			return
		}
	}
}

// drain waits until the consumer has handled every confirmed message, or
// has stopped (consumerDone closed), or --drain-timeout has passed.
func (r *shapeRun) drain(ctx context.Context, consumerDone <-chan struct{}, stderr io.Writer) {
	fmt.Fprintln(stderr, "publishing ended; draining")
	deadline := time.NewTimer(r.opts.drainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for r.received.Load() < r.confirmed.Load() {
		select {
		case <-tick.C:
		case <-consumerDone:
			fmt.Fprintln(stderr, "the consumer stopped before it had received everything")
			return
		case <-deadline.C:
			fmt.Fprintf(stderr, "the consumer did not catch up within --drain-timeout %v\n", r.opts.drainTimeout)
			return
		case <-ctx.Done():
			return
		}
	}
}

func (r *shapeRun) runAMQP(ctx context.Context, stderr io.Writer) error {
	o := r.opts
	pconn, err := amqp.Dial(o.url)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer pconn.Close()
	pch, err := pconn.Channel()
	if err != nil {
		return err
	}
	if _, err := pch.QueueDeclare(o.queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declaring queue %q: %w", o.queue, err)
	}
	if err := pch.Confirm(false); err != nil {
		return err
	}
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, 4096))
	// With one channel, delivery tag n is message n-1.
	confirmDone := make(chan struct{})
	go func() {
		defer close(confirmDone)
		for c := range confirms {
			if c.Ack {
				r.markConfirmed(c.DeliveryTag - 1)
			} else {
				r.nacked.Add(1)
			}
		}
	}()

	cconn, err := amqp.Dial(o.url)
	if err != nil {
		return fmt.Errorf("connecting consumer: %w", err)
	}
	defer cconn.Close()
	cch, err := cconn.Channel()
	if err != nil {
		return err
	}
	if err := cch.Qos(o.prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := cch.Consume(o.queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				if !r.handle(cctx, d.Body) && cctx.Err() != nil {
					return // not handled: left unacked, the broker requeues it
				}
				_ = d.Ack(false)
			case <-cctx.Done():
				return
			}
		}
	}()

	done := make(chan struct{})
	sampled := make(chan struct{})
	r.start = time.Now()
	go func() { r.sampleUntil(done, stderr); close(sampled) }()
	var pubErr error
	r.produce(ctx, func(_ uint64, body []byte) {
		if pubErr != nil {
			return
		}
		pubErr = pch.PublishWithContext(ctx, "", o.queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "application/octet-stream", Body: body,
		})
	})
	if pubErr == nil {
		// Every publish is confirmed or nacked before the count is final.
		for r.confirmed.Load()+r.nacked.Load() < r.sent.Load() && ctx.Err() == nil {
			select {
			case <-confirmDone: // the channel closed: no more confirms
				pubErr = errors.New("the channel closed before every publish was confirmed")
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
	}
	r.drain(ctx, consumerDone, stderr)
	close(done)
	<-sampled
	stopConsumer()
	<-consumerDone
	if pubErr != nil {
		return fmt.Errorf("publishing: %w", pubErr)
	}
	return nil
}

func (r *shapeRun) runKafka(ctx context.Context, cf *clientFlags, stderr io.Writer) error {
	o := r.opts
	seeds, err := cf.seeds()
	if err != nil {
		return err
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(o.topic), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	if resp, err := adm.CreateTopic(ctx, 1, -1, nil, o.topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("creating topic %q: %w", o.topic, err)
	} else if err == nil && resp.Err != nil && !strings.Contains(resp.Err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("creating topic %q: %w", o.topic, resp.Err)
	}
	// A group of its own that starts where the topic ends now: commit the
	// end offsets for it before it first joins.
	group := fmt.Sprintf("sluice-shape-%016x", r.runID)
	ends, err := adm.ListEndOffsets(ctx, o.topic)
	if err != nil {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	start := kadm.Offsets{}
	ends.Each(func(lo kadm.ListedOffset) {
		start.Add(kadm.Offset{Topic: lo.Topic, Partition: lo.Partition, At: lo.Offset, LeaderEpoch: -1})
	})
	if resp, err := adm.CommitOffsets(ctx, group, start); err != nil {
		return fmt.Errorf("committing start offsets: %w", err)
	} else if err := resp.Error(); err != nil {
		return fmt.Errorf("committing start offsets: %w", err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(o.topic),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return err
	}
	defer cons.Close()
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			var handled []*kgo.Record
			fs.EachRecord(func(rec *kgo.Record) {
				if cctx.Err() == nil {
					r.handle(cctx, rec.Value)
					handled = append(handled, rec)
				}
			})
			if len(handled) > 0 {
				_ = cons.CommitRecords(context.WithoutCancel(cctx), handled...)
			}
		}
	}()

	done := make(chan struct{})
	sampled := make(chan struct{})
	r.start = time.Now()
	go func() { r.sampleUntil(done, stderr); close(sampled) }()
	var firstErr atomic.Value
	r.produce(ctx, func(seq uint64, body []byte) {
		prod.Produce(ctx, &kgo.Record{Value: body}, func(_ *kgo.Record, err error) {
			if err != nil {
				r.nacked.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			r.markConfirmed(seq)
		})
	})
	_ = prod.Flush(ctx)
	r.drain(ctx, consumerDone, stderr)
	close(done)
	<-sampled
	stopConsumer()
	<-consumerDone
	_, _ = adm.DeleteGroup(context.WithoutCancel(ctx), group)
	if err, _ := firstErr.Load().(error); err != nil {
		fmt.Fprintf(stderr, "some records were not acknowledged; the first error: %v\n", err)
	}
	return nil
}

// runDirect offers the same load to the same rate-limited consumer called
// synchronously: with nothing to absorb the burst, overload becomes errors.
func (r *shapeRun) runDirect(ctx context.Context, stderr io.Writer) error {
	o := r.opts
	slots := make(chan struct{}, o.concurrency)
	var calls sync.WaitGroup
	done := make(chan struct{})
	sampled := make(chan struct{})
	r.start = time.Now()
	go func() { r.sampleUntil(done, stderr); close(sampled) }()
	r.produce(ctx, func(seq uint64, body []byte) {
		select {
		case slots <- struct{}{}:
		default:
			r.errs.Add(1) // every slot busy: refused at once
			return
		}
		calls.Add(1)
		go func() {
			defer func() { <-slots; calls.Done() }()
			// The service would start this call too late: the caller
			// gives up.
			at, ok := r.consumer.tryReserve(time.Now(), o.callTimeout)
			if !ok {
				r.errs.Add(1)
				return
			}
			r.markConfirmed(seq)
			r.handleAt(ctx, body, at)
		}()
	})
	calls.Wait()
	close(done)
	<-sampled
	return nil
}

// shapeSummary is the accounting of a run (--json).
type shapeSummary struct {
	Protocol   string  `json:"protocol"`
	Baseline   string  `json:"baseline,omitempty"`
	Seconds    int     `json:"seconds"`
	Sent       int64   `json:"sent"`
	Confirmed  int64   `json:"confirmed"`
	Nacked     int64   `json:"nacked"`
	Received   int64   `json:"received"`
	Duplicates int64   `json:"duplicates"`
	Missing    int64   `json:"missing"`
	Errors     int64   `json:"errors"`
	MaxBacklog int64   `json:"max_backlog"`
	BacklogEnd int64   `json:"backlog_end"`
	P50ms      float64 `json:"e2e_p50_ms"`
	P99ms      float64 `json:"e2e_p99_ms"`
}

func (r *shapeRun) summary() shapeSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := shapeSummary{
		Protocol: r.opts.protocol, Baseline: r.opts.baseline, Seconds: len(r.seconds),
		Sent: r.sent.Load(), Confirmed: r.confirmed.Load(), Nacked: r.nacked.Load(),
		Received: r.received.Load(), Duplicates: r.dups.Load(), Errors: r.errs.Load(),
		MaxBacklog: r.maxBack,
	}
	if r.opts.baseline == "direct" {
		s.Protocol = ""
	}
	for i, ok := range r.acked {
		if ok && (i >= len(r.seen) || !r.seen[i]) {
			s.Missing++
		}
	}
	if n := len(r.seconds); n > 0 {
		s.BacklogEnd = r.seconds[n-1].Backlog
	}
	if r.allLat.Count() > 0 {
		s.P50ms = float64(r.allLat.Quantile(0.5)) / 1e6
		s.P99ms = float64(r.allLat.Quantile(0.99)) / 1e6
	}
	return s
}

func (r *shapeRun) writeCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--csv: %w", err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"second", "offered", "inflow", "outflow", "backlog", "errors", "e2e_p50_ms", "e2e_p99_ms"})
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }
	for _, s := range r.seconds {
		_ = w.Write([]string{strconv.Itoa(s.Second), strconv.FormatInt(s.Offered, 10), strconv.FormatInt(s.Inflow, 10),
			strconv.FormatInt(s.Outflow, 10), strconv.FormatInt(s.Backlog, 10), strconv.FormatInt(s.Errors, 10), ms(s.P50), ms(s.P99)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("--csv: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--csv: %w", err)
	}
	return nil
}
