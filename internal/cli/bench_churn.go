package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
)

func init() { benchCommands = append(benchCommands, newBenchChurnCmd) }

type benchChurnOptions struct {
	url           string
	queue         string
	churners      int
	rate          float64
	size          int
	duration      time.Duration
	confirmWindow int
	json          bool
}

func newBenchChurnCmd() *cobra.Command {
	var o benchChurnOptions
	cmd := &cobra.Command{
		Use:   "churn",
		Short: "AMQP 0-9-1 queue declare+delete churn, and publish latency on another queue meanwhile",
		Long: `Declare and delete queues as fast as --churners connections can, while
one publisher sends persistent messages with confirms at a fixed --rate to
another durable queue that one consumer drains, and measure:

  - churn: completed declare+delete pairs, as declarations per second,
    and the latency of each queue.declare and each queue.delete;
  - publish latency: from the publish call to the broker's basic.ack, on
    the queue that is not being churned.

This is what a definition change costs the traffic that does not ask for
one: a broker that holds a lock which routing takes across the metadata
log's fsync shows it in the publish latency. --churners 0 measures the
same publishing alone, the baseline to compare with.

Each churner has its own connection and channel (the amqp091-go client:
declarations are request and answer, so the client's cost is small) and
loops: queue.declare of a durable classic queue with a name unique to the
run, then queue.delete of it. The publisher and the consumer use the lean
client of sluice bench amqp, paced by due time as there: message i is due
at start + i/rate, and how far the publisher ever fell behind is reported.
The consumer acknowledges each message, so the queue does not grow.

The publish queue (--queue) is declared and purged at the start and
deleted at the end, with every churned queue still standing (one a churner
left between its declare and its delete when it failed); do not point
--queue at a queue you need. The run stops after --duration, waits for
outstanding confirms and for the consumer to catch up, and prints a
summary; progress goes to standard error every second. Latencies are kept
in log-linear histograms with 0.8% resolution.`,
		Example: `  sluice bench churn --duration 20s
  sluice bench churn --churners 0 --duration 20s
  sluice bench churn --url amqp://guest:guest@127.0.0.1:5673/ --churners 8 --rate 2000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchChurn(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", envOr(amqpURLEnv, defaultAMQPURL), "AMQP URI of the broker (amqp:// only), with credentials and vhost (env "+amqpURLEnv+")")
	f.StringVar(&o.queue, "queue", "sluice-churn-publish", "durable queue to publish to; purged at the start and deleted at the end")
	f.IntVar(&o.churners, "churners", 4, "connections declaring and deleting queues (0: publish only, the baseline)")
	f.Float64Var(&o.rate, "rate", 1000, "messages per second to publish to --queue during the churn")
	f.IntVar(&o.size, "size", 1024, "bytes per message body (at least 16)")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "how long to churn and publish")
	f.IntVar(&o.confirmWindow, "confirm-window", 256, "unconfirmed messages the publisher may have outstanding")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on standard output (the text summary goes to standard error)")
	return cmd
}

func (o *benchChurnOptions) validate() error {
	u, err := amqp.ParseURI(o.url)
	switch {
	case err != nil:
		return fmt.Errorf("--url: %w", err)
	case u.Scheme != "amqp":
		return fmt.Errorf("--url: scheme %q is not amqp (the lean publisher speaks no TLS)", u.Scheme)
	case o.queue == "":
		return errors.New("--queue must not be empty")
	case o.churners < 0:
		return errors.New("--churners must not be negative")
	case o.rate <= 0:
		return errors.New("--rate must be positive: the publish latency is measured at a fixed rate")
	case o.size < benchHeader:
		return fmt.Errorf("--size must be at least %d (the publish time and run ID)", benchHeader)
	case o.duration <= 0:
		return errors.New("--duration must be positive: the bench must end by itself")
	case o.confirmWindow < 1:
		return errors.New("--confirm-window must be at least 1")
	}
	return nil
}

// churnBench is one run: the publishing side is a sluice bench amqp run
// of one publisher and one consumer; the churners are its own.
type churnBench struct {
	opts    benchChurnOptions
	pub     *amqpBench
	churner []*churner
	start   time.Time

	pairs    atomic.Int64 // declare+delete pairs completed
	errMu    sync.Mutex
	churnErr error
}

// churner is one connection and channel that declares and deletes. Its
// loop owns standing; the latency recorders are also read by the reporter.
type churner struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	prefix     string // of the names it declares
	declareLat latencyRecorder
	deleteLat  latencyRecorder
	standing   string // a queue perhaps declared and not deleted when the loop stopped
}

func runBenchChurn(o benchChurnOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, stop := interruptContext()
	defer stop()

	runID := rand.Uint64()
	b := &churnBench{opts: o}
	b.pub = &amqpBench{
		opts: benchAMQPOptions{
			url: o.url, queue: o.queue, queueType: "classic", publishers: 1, consumers: 1,
			size: o.size, rate: o.rate, duration: o.duration, confirm: true, confirmWindow: o.confirmWindow,
			persistent: true, prefetch: 100, multiAckEvery: 1, purgeFirst: true, client: clientLean,
		},
		runID:    runID,
		template: make([]byte, o.size),
		endpoint: redactURL(o.url),
	}
	rand.NewChaCha8([32]byte{byte(runID)}).Read(b.pub.template)
	pub := b.pub

	if err := pub.declare(stderr); err != nil {
		return err
	}
	// Connect everything before the clock starts.
	defer pub.closeClients()
	defer b.closeChurners()
	c, err := pub.newConsumer(0, stderr)
	if err != nil {
		return err
	}
	pub.consumer = append(pub.consumer, c)
	p, err := pub.newPublisher(0, stderr)
	if err != nil {
		return err
	}
	pub.publisher = append(pub.publisher, p)
	for i := range o.churners {
		ch, err := b.newChurner(i, runID, stderr)
		if err != nil {
			return err
		}
		b.churner = append(b.churner, ch)
	}

	fmt.Fprintf(stderr, "bench: %s, for %v\n", b.setupString(), o.duration)
	b.start = time.Now()
	pub.start, pub.consumeAt = b.start, b.start
	deadline := b.start.Add(o.duration)

	reportDone, reportStopped := make(chan struct{}), make(chan struct{})
	var declareTotal, deleteTotal histogram
	go func() { defer close(reportStopped); b.report(stderr, reportDone, &declareTotal, &deleteTotal) }()

	consumeCtx, stopConsumer := context.WithCancel(context.Background())
	defer stopConsumer()
	if err := c.cons.start(o.queue, c.name); err != nil {
		return err
	}
	var consWG, pubWG, churnWG sync.WaitGroup
	consWG.Go(func() { pub.consume(consumeCtx, c) })
	pubWG.Go(func() { pub.publish(ctx, p, o.rate, deadline, 0) })
	for _, ch := range b.churner {
		churnWG.Go(func() { b.churn(ctx, ch, deadline) })
	}
	// A churner stuck in a call past the grace is cut off.
	watchdog := time.AfterFunc(time.Until(deadline)+benchGrace, b.closeChurners)
	churnWG.Wait()
	watchdog.Stop()
	churnedFor := time.Since(b.start)
	pubWG.Wait()
	publishedFor := time.Since(b.start)

	idle := benchDrainIdle
	if ctx.Err() != nil {
		idle = 2 * time.Second
	}
	missing := pub.drain(idle)
	stopConsumer()
	consWG.Wait()
	close(reportDone)
	<-reportStopped

	cleanupErr := b.cleanup(stderr)
	sum := b.summary(churnedFor, publishedFor, missing, &declareTotal, &deleteTotal)
	sum.Interrupted = ctx.Err() != nil
	if cleanupErr != nil {
		sum.CleanupError = cleanupErr.Error()
	}
	if err := writeBenchSummary(stdout, stderr, o.json, sum.writeText, sum); err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case sum.ChurnError != "":
		return fmt.Errorf("churning failed: %s", sum.ChurnError)
	case sum.PublishError != "":
		return fmt.Errorf("publishing failed: %s", sum.PublishError)
	case sum.Nacked > 0 || sum.Unconfirmed > 0:
		return fmt.Errorf("%d messages nacked, %d never confirmed", sum.Nacked, sum.Unconfirmed)
	case sum.ConsumeError != "":
		return fmt.Errorf("consuming failed: %s", sum.ConsumeError)
	case missing > 0:
		return fmt.Errorf("%d confirmed messages were not consumed", missing)
	case cleanupErr != nil:
		return cleanupErr
	}
	return nil
}

func (b *churnBench) newChurner(i int, runID uint64, stderr io.Writer) (*churner, error) {
	name := fmt.Sprintf("sluice-bench-churner-%d", i)
	conn, err := b.pub.dial091(name, stderr)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &churner{conn: conn, ch: ch, prefix: fmt.Sprintf("sluice-churn-%016x-%d", runID, i)}, nil
}

func (b *churnBench) closeChurners() {
	for _, c := range b.churner {
		c.conn.Close()
	}
}

// churn declares and deletes queues until deadline or until ctx ends. A
// failed call ends the churner (the channel is closed by then); the queue
// it was about remains standing for the cleanup.
func (b *churnBench) churn(ctx context.Context, c *churner, deadline time.Time) {
	for n := 0; ctx.Err() == nil && time.Now().Before(deadline); n++ {
		name := fmt.Sprintf("%s-%d", c.prefix, n)
		t0 := time.Now()
		if _, err := c.ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			c.standing = name
			b.setErr(fmt.Errorf("queue.declare %s: %w", name, err))
			return
		}
		t1 := time.Now()
		c.declareLat.record(t1.Sub(t0))
		if _, err := c.ch.QueueDelete(name, false, false, false); err != nil {
			c.standing = name
			b.setErr(fmt.Errorf("queue.delete %s: %w", name, err))
			return
		}
		c.deleteLat.record(time.Since(t1))
		b.pairs.Add(1)
	}
}

func (b *churnBench) setErr(err error) {
	b.errMu.Lock()
	if b.churnErr == nil {
		b.churnErr = err
	}
	b.errMu.Unlock()
}

// cleanup deletes the publish queue and any churned queue left standing,
// on a connection of its own: the churners' channels may be closed. A
// standing queue that turns out not to exist is no error.
func (b *churnBench) cleanup(stderr io.Writer) error {
	names := []string{b.opts.queue}
	for _, c := range b.churner {
		if c.standing != "" {
			names = append(names, c.standing)
		}
	}
	conn, err := b.pub.dial091("sluice-bench-cleanup", stderr)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	defer conn.Close()
	for i, name := range names {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		_, err = ch.QueueDelete(name, false, false, false)
		var aerr *amqp.Error
		if err != nil && !(i > 0 && errors.As(err, &aerr) && aerr.Code == amqp.NotFound) {
			return fmt.Errorf("cleanup: queue.delete %s: %w", name, err)
		}
		if err == nil {
			ch.Close()
		}
	}
	return nil
}

// takeChurnLatencies moves every churner's interval histograms into the
// totals and returns the interval's declare and delete latencies.
func (b *churnBench) takeChurnLatencies(declare, del *histogram) {
	var h histogram
	declare.Reset()
	del.Reset()
	for _, c := range b.churner {
		c.declareLat.takeInterval(&h)
		declare.Merge(&h)
		c.deleteLat.takeInterval(&h)
		del.Merge(&h)
	}
}

// report prints a progress line every second until done is closed, and
// then fills the run's declare and delete totals.
func (b *churnBench) report(w io.Writer, done <-chan struct{}, declareTotal, deleteTotal *histogram) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var (
		prevPairs, prevConf int64
		prevAt              = b.start
		confirm, e2e        histogram
		declare, del        histogram
	)
	for {
		select {
		case <-done:
			b.pub.takeLatencies(&confirm, &e2e) // the rest of the last interval
			b.takeChurnLatencies(&declare, &del)
			for _, c := range b.churner {
				declareTotal.Merge(&c.declareLat.total)
				deleteTotal.Merge(&c.deleteLat.total)
			}
			return
		case now := <-t.C:
			secs := now.Sub(prevAt).Seconds()
			prevAt = now
			pairs, conf := b.pairs.Load(), b.pub.confirmed.Load()
			b.pub.takeLatencies(&confirm, &e2e)
			b.takeChurnLatencies(&declare, &del)
			line := fmt.Sprintf("[%4.0fs]", now.Sub(b.start).Seconds())
			if len(b.churner) > 0 {
				line += fmt.Sprintf(" declared %6.0f/s  declare p50 %s p99 %s  delete p50 %s p99 %s ",
					float64(pairs-prevPairs)/secs, fmtLatency(declare.Quantile(0.5)), fmtLatency(declare.Quantile(0.99)),
					fmtLatency(del.Quantile(0.5)), fmtLatency(del.Quantile(0.99)))
			}
			line += fmt.Sprintf(" confirmed %6.0f/s  confirm p50 %s p99 %s", float64(conf-prevConf)/secs,
				fmtLatency(confirm.Quantile(0.5)), fmtLatency(confirm.Quantile(0.99)))
			fmt.Fprintln(w, line)
			prevPairs, prevConf = pairs, conf
		}
	}
}

// benchChurnSummary is the result of a run, as printed and as JSON.
type benchChurnSummary struct {
	Broker         string         `json:"broker"`
	Queue          string         `json:"queue"`
	Churners       int            `json:"churners"`
	Size           int            `json:"size"`
	TargetRate     float64        `json:"target_rate"`
	ConfirmWindow  int            `json:"confirm_window"`
	ChurnSecs      float64        `json:"churn_seconds"`
	Declarations   int64          `json:"declarations"`
	DeclareRate    float64        `json:"declarations_per_sec"`
	DeclareLatency latencySummary `json:"declare_latency"`
	DeleteLatency  latencySummary `json:"delete_latency"`
	PublishSecs    float64        `json:"publish_seconds"`
	MaxBehindMs    float64        `json:"max_behind_schedule_ms"`
	Published      int64          `json:"published"`
	Confirmed      int64          `json:"confirmed"`
	Nacked         int64          `json:"nacked"`
	Unconfirmed    int64          `json:"unconfirmed"`
	Consumed       int64          `json:"consumed"`
	Missing        int64          `json:"missing"`
	ConfirmRate    float64        `json:"confirm_msgs_per_sec"`
	ConfirmLatency latencySummary `json:"confirm_latency"`
	Interrupted    bool           `json:"interrupted,omitempty"`
	ChurnError     string         `json:"churn_error,omitempty"`
	PublishError   string         `json:"publish_error,omitempty"`
	ConsumeError   string         `json:"consume_error,omitempty"`
	CleanupError   string         `json:"cleanup_error,omitempty"`
	setup          string
}

func (b *churnBench) summary(churnedFor, publishedFor time.Duration, missing int64, declare, del *histogram) benchChurnSummary {
	o := b.opts
	ps := b.pub.summary(publishedFor, missing)
	s := benchChurnSummary{
		Broker: b.pub.endpoint, Queue: o.queue, Churners: o.churners, Size: o.size,
		TargetRate: o.rate, ConfirmWindow: o.confirmWindow,
		DeclareLatency: summarize(declare), DeleteLatency: summarize(del),
		PublishSecs: ps.PublishSecs, MaxBehindMs: ps.MaxBehindMs,
		Published: ps.Published, Confirmed: ps.Confirmed, Nacked: ps.Nacked, Unconfirmed: ps.Unconfirmed,
		Consumed: ps.Consumed, Missing: ps.Missing, ConfirmRate: ps.ConfirmRate, ConfirmLatency: ps.ConfirmLatency,
		PublishError: ps.PublishError, ConsumeError: ps.ConsumeError,
		setup: b.setupString(),
	}
	if o.churners > 0 {
		s.ChurnSecs = churnedFor.Seconds()
		s.Declarations = b.pairs.Load()
		s.DeclareRate = float64(s.Declarations) / s.ChurnSecs
	}
	b.errMu.Lock()
	if b.churnErr != nil {
		s.ChurnError = b.churnErr.Error()
	}
	b.errMu.Unlock()
	return s
}

func (s *benchChurnSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", s.setup)
	if s.Churners > 0 {
		fmt.Fprintf(w, "churn:       %d queues declared and deleted, %.0f declarations/s over %.1fs\n",
			s.Declarations, s.DeclareRate, s.ChurnSecs)
	}
	fmt.Fprintf(w, "messages:    published %d, confirmed %d, nacked %d", s.Published, s.Confirmed, s.Nacked)
	if s.Unconfirmed > 0 {
		fmt.Fprintf(w, ", NEVER CONFIRMED %d", s.Unconfirmed)
	}
	fmt.Fprintf(w, ", consumed %d", s.Consumed)
	switch {
	case s.Missing > 0 && s.Interrupted:
		fmt.Fprintf(w, ", not consumed before the interrupt %d", s.Missing)
	case s.Missing > 0:
		fmt.Fprintf(w, ", MISSING %d", s.Missing)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "publish:     %.0f msgs/s confirmed over %.1fs (target %s, at worst %s behind schedule)\n",
		s.ConfirmRate, s.PublishSecs, rateString(s.TargetRate), fmtLatency(time.Duration(s.MaxBehindMs*1e6)))
	fmt.Fprintf(w, "latency      %9s %9s %9s %9s %9s\n", "p50", "p99", "p99.9", "max", "mean")
	row := func(name string, l latencySummary) {
		d := func(ms float64) string { return fmtLatency(time.Duration(ms * 1e6)) }
		fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s\n", name, d(l.P50Ms), d(l.P99Ms), d(l.P999Ms), d(l.MaxMs), d(l.MeanMs))
	}
	row("confirm", s.ConfirmLatency)
	if s.Churners > 0 {
		row("declare", s.DeclareLatency)
		row("delete", s.DeleteLatency)
	}
	for _, e := range []struct{ what, err string }{
		{"churn", s.ChurnError}, {"publish", s.PublishError}, {"consume", s.ConsumeError}, {"cleanup", s.CleanupError},
	} {
		if e.err != "" {
			fmt.Fprintf(w, "%s error: %s\n", e.what, e.err)
		}
	}
}

// setupString describes what the run does, for its first and last lines.
func (b *churnBench) setupString() string {
	o := b.opts
	return fmt.Sprintf("%s, %s declaring and deleting durable queues; queue %s: 1 publisher at %s, %d-byte persistent messages, confirms (window %d), 1 consumer",
		b.pub.endpoint, plural(o.churners, "churner"), o.queue, rateString(o.rate), o.size, o.confirmWindow)
}
