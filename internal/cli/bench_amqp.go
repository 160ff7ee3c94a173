package cli

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
)

func init() { benchCommands = append(benchCommands, newBenchAMQPCmd) }

type benchAMQPOptions struct {
	url           string
	queue         string
	queueType     string
	publishers    int
	consumers     int
	size          int
	rate          float64
	duration      time.Duration
	confirm       bool
	confirmWindow int
	persistent    bool
	prefetch      int
	multiAckEvery int
	purgeFirst    bool
	json          bool
	messages      int64
	fillFirst     bool
	watchPID      int
	client        string
	tlsCA         string // amqps:// trusts these CAs (PEM); "" the system's
}

const (
	defaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"
	amqpURLEnv     = "SLUICE_AMQP_URL"
)

func newBenchAMQPCmd() *cobra.Command {
	var o benchAMQPOptions
	cmd := &cobra.Command{
		Use:   "amqp",
		Short: "AMQP 0-9-1 load generator: publish, confirm and end-to-end latency",
		Long: `Publish fixed-size messages to a durable queue through the default exchange
from --publishers connections, while --consumers connections consume them
with manual acknowledgements, and measure:

  - throughput: messages published, confirmed, nacked and consumed per
    second, and MB/s (MB = 10^6 bytes of message body);
  - confirm latency: from the publish call to the broker's basic.ack;
  - end-to-end latency: from the publish call to the delivery reaching
    the consumer.

Works against any AMQP 0-9-1 broker (Sluice, RabbitMQ). The queue is
declared durable with x-queue-type set to --queue-type; it is not deleted
afterwards. Each publisher and each consumer has its own connection and
one channel.

With --confirm (the default) each channel is in confirm mode and keeps at
most --confirm-window messages unconfirmed: a publisher waits for a confirm
before going past the window. A message's confirm means what the broker
makes it mean (Sluice: written and, under the default fsync policy, synced;
RabbitMQ: see its documentation for each queue type): report that with the
results.

Each body starts with its publish time (unix nanoseconds, 8 bytes
big-endian) and the run's random ID (8 bytes); the rest is random. Consumers
count only this run's messages and acknowledge the others unseen, so a
queue holding older messages does no harm beyond the time spent on them
(--purge-first empties it before the run). Consumers acknowledge each
message (--multi-ack-every 1, as RabbitMQ's PerfTest does by default), or
every Nth with multiple=true.

--rate paces the total publish rate (split evenly among publishers) by due
time: message i of a publisher is due at start + i/rate, so short stalls are
caught up and the average rate is exact; how far the generator ever fell
behind its schedule is reported, since latencies measured while it is behind
understate the broker's. 0 publishes flat out. The run stops after
--duration (or once --messages are published), waits for outstanding
confirms and for the consumers to catch up, and prints a summary; progress
goes to standard error every second.

--fill-first connects the consumers but starts them only when publishing
has ended, so the queue first grows to the whole run and then drains; with
--watch-pid the broker's resident memory is sampled throughout, which is
how to check that memory does not grow with a queue's backlog.
Latencies are kept in log-linear histograms with 0.8% resolution.

--client picks the AMQP client the bench loads the broker with; the same
client drives every broker, so comparisons stay fair. "lean" (the default)
is Sluice's own minimal client (internal/amqp/benchclient): it pipelines,
appending publishes and acks to a buffer written in one system call per
batch, and handles confirms and deliveries in the goroutine that reads them,
so that the bench measures the broker rather than itself. A flat-out lean
publisher therefore writes several messages per system call: it writes
when its confirm window is full, when 64 KiB are buffered, or when the next
message is not yet due (so a paced publisher writes each message at once).
A publish time is taken when the message is added to the buffer, so time
spent buffered counts in its latency. A lean consumer acknowledges from its
read loop and writes the acks whenever it has read all the input there is.
"amqp091-go" is the RabbitMQ Go client: one write per publish and per ack,
and frames handed through goroutines; it costs the bench about as much CPU
as the broker spends, which on a small machine limits what is measured.`,
		Example: `  sluice bench amqp --duration 10s
  sluice bench amqp --url amqp://guest:guest@127.0.0.1:5673/ --publishers 4 --consumers 4
  sluice bench amqp --rate 5000 --duration 60s --purge-first
  sluice bench amqp --queue-type quorum --confirm-window 1000 --multi-ack-every 50
  sluice bench amqp --consumers 0 --json > result.json
  sluice bench amqp --messages 10000000 --duration 2h --fill-first --watch-pid $(pidof sluice)
  sluice bench amqp --client amqp091-go --publishers 4 --consumers 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchAMQP(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", envOr(amqpURLEnv, defaultAMQPURL), "AMQP URI of the broker, with credentials and vhost (env "+amqpURLEnv+")")
	f.StringVar(&o.queue, "queue", "sluice-bench", "durable queue to publish to and consume from")
	f.StringVar(&o.queueType, "queue-type", "classic", "x-queue-type of the queue if the bench declares it: classic or quorum")
	f.IntVar(&o.publishers, "publishers", 1, "publishing connections")
	f.IntVar(&o.consumers, "consumers", 1, "consuming connections (0: publish only)")
	f.IntVar(&o.size, "size", 1024, "bytes per message body (at least 16)")
	f.Float64Var(&o.rate, "rate", 0, "total messages per second (0: as fast as possible)")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "how long to publish")
	f.BoolVar(&o.confirm, "confirm", true, "put publisher channels in confirm mode and wait for confirms")
	f.IntVar(&o.confirmWindow, "confirm-window", 256, "unconfirmed messages a publisher may have outstanding")
	f.BoolVar(&o.persistent, "persistent", true, "publish with delivery-mode 2 (persistent)")
	f.IntVar(&o.prefetch, "prefetch", 100, "basic.qos prefetch count per consumer channel (0: unlimited)")
	f.IntVar(&o.multiAckEvery, "multi-ack-every", 1, "acknowledge with multiple=true every N messages (1: ack each message singly)")
	f.BoolVar(&o.purgeFirst, "purge-first", false, "purge the queue before the run")
	f.Int64Var(&o.messages, "messages", 0, "publish this many messages in total and stop (0: publish for --duration, which still caps the run)")
	f.BoolVar(&o.fillFirst, "fill-first", false, "start consuming only after publishing ends: the queue fills, then drains")
	f.IntVar(&o.watchPID, "watch-pid", 0, "sample this process's resident memory (Linux /proc) every second and report its peak, e.g. the broker's PID")
	f.StringVar(&o.client, "client", clientLean, "AMQP client to load the broker with: lean (pipelined, batches writes) or amqp091-go")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on standard output (the text summary goes to standard error)")
	f.StringVar(&o.tlsCA, "tls-ca", os.Getenv(tlsCAEnv), "with an amqps:// --url, trust the CA certificates in this PEM file (env "+tlsCAEnv+")")
	return cmd
}

func (o *benchAMQPOptions) validate() error {
	u, err := amqp.ParseURI(o.url)
	switch {
	case err != nil:
		return fmt.Errorf("--url: %w", err)
	case u.Scheme != "amqp" && u.Scheme != "amqps":
		return fmt.Errorf("--url: scheme %q is not amqp or amqps", u.Scheme)
	case o.client != clientLean && o.client != clientAMQP091:
		return fmt.Errorf("--client: %q is not %s or %s", o.client, clientLean, clientAMQP091)
	case o.client == clientLean && u.Scheme != "amqp":
		return errors.New("--client lean speaks amqp:// only (no TLS); use --client amqp091-go for amqps://")
	case o.queue == "":
		return errors.New("--queue must not be empty")
	case o.queueType != "classic" && o.queueType != "quorum":
		return fmt.Errorf("--queue-type: %q is not classic or quorum", o.queueType)
	case o.publishers < 1:
		return errors.New("--publishers must be at least 1")
	case o.consumers < 0:
		return errors.New("--consumers must not be negative")
	case o.size < benchHeader:
		return fmt.Errorf("--size must be at least %d (the publish time and run ID)", benchHeader)
	case o.rate < 0:
		return errors.New("--rate must not be negative")
	case o.duration <= 0:
		return errors.New("--duration must be positive: the bench must end by itself")
	case o.confirm && o.confirmWindow < 1:
		return errors.New("--confirm-window must be at least 1")
	case o.prefetch < 0 || o.prefetch > 65535:
		return errors.New("--prefetch must be between 0 and 65535")
	case o.messages < 0:
		return errors.New("--messages must not be negative")
	case o.messages > 0 && o.messages < int64(o.publishers):
		return errors.New("--messages must be at least --publishers")
	case o.fillFirst && o.consumers == 0:
		return errors.New("--fill-first needs consumers to drain the queue")
	case o.watchPID < 0:
		return errors.New("--watch-pid must not be negative")
	case o.multiAckEvery < 1:
		return errors.New("--multi-ack-every must be at least 1")
	case o.prefetch > 0 && o.multiAckEvery > o.prefetch:
		// The consumer would stop at the prefetch limit before ever
		// reaching the message that acknowledges the others.
		return errors.New("--multi-ack-every must not exceed --prefetch")
	}
	return nil
}

// amqpBench is the shared state of one run: counters read by the progress
// reporter, the clients and their latency histograms.
type amqpBench struct {
	opts      benchAMQPOptions
	runID     uint64
	template  []byte
	start     time.Time
	consumeAt time.Time // when the consumers started: start, or the end of publishing with --fill-first
	endpoint  string    // the broker's address, without credentials
	publisher []*amqpPublisher
	consumer  []*amqpConsumer
	rss       *rssWatcher // nil without --watch-pid

	published, confirmed, nacked, unconfirmed atomic.Int64
	consumed, foreign, redelivered            atomic.Int64
	lastConfirm, lastConsume                  atomic.Int64 // unix nanoseconds
	maxBehind                                 atomic.Int64 // pacing: worst lateness of a publish

	errMu                  sync.Mutex
	publishErr, consumeErr error
}

// amqpPublisher is one connection and channel that publishes, through
// either client. With confirms, window holds a token for every unconfirmed
// message, and slots the publish time and tag of each, indexed by delivery
// tag modulo the window: the tags outstanding are consecutive and never
// more than the window, so they never share a slot. Delivery tags count
// from 1 in publish order, so the next one is published+1.
type amqpPublisher struct {
	pub       amqpPubConn
	window    chan struct{}
	slots     []confirmSlot
	low       uint64        // lowest tag a multiple confirm may still cover; owned by the confirm reader
	confirmed chan struct{} // closed when the confirms end (the channel or connection closed)
	published int64         // owned by the publishing goroutine
	settled   atomic.Int64  // acked or nacked by the broker
	lat       latencyRecorder
}

// amqpConsumer is one connection and channel that consumes.
type amqpConsumer struct {
	name string
	cons amqpConsConn
	lat  latencyRecorder
}

func runBenchAMQP(o benchAMQPOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, stop := interruptContext()
	defer stop()

	b := &amqpBench{opts: o, runID: rand.Uint64(), template: make([]byte, o.size)}
	b.endpoint = redactURL(o.url)
	rng := rand.NewChaCha8([32]byte{byte(b.runID)})
	rng.Read(b.template)

	var err error
	if err = b.declare(stderr); err != nil {
		return err
	}
	// Connect every client before the clock starts, so that the first
	// latencies do not include dialing.
	defer b.closeClients()
	for i := range o.consumers {
		c, err := b.newConsumer(i, stderr)
		if err != nil {
			return err
		}
		b.consumer = append(b.consumer, c)
	}
	for i := range o.publishers {
		p, err := b.newPublisher(i, stderr)
		if err != nil {
			return err
		}
		b.publisher = append(b.publisher, p)
	}

	if o.watchPID > 0 {
		if b.rss, err = watchRSS(o.watchPID); err != nil {
			return err
		}
		defer b.rss.stop()
	}
	fmt.Fprintf(stderr, "bench: %s, rate %s, %s\n", b.setupString(), rateString(o.rate), b.lengthString())
	b.start = time.Now()
	deadline := b.start.Add(o.duration)

	reportDone := make(chan struct{})
	reportStopped := make(chan struct{})
	go func() { defer close(reportStopped); b.report(stderr, reportDone) }()

	consumeCtx, stopConsumers := context.WithCancel(context.Background())
	defer stopConsumers()
	var consWG sync.WaitGroup
	startConsumers := func() error {
		b.consumeAt = time.Now()
		for _, c := range b.consumer {
			if err := c.cons.start(o.queue, c.name); err != nil {
				return err
			}
			consWG.Go(func() { b.consume(consumeCtx, c) })
		}
		return nil
	}
	if !o.fillFirst {
		if err := startConsumers(); err != nil {
			return err
		}
	}

	var pubWG sync.WaitGroup
	for i, p := range b.publisher {
		quota := int64(0) // unlimited
		if n := int64(len(b.publisher)); o.messages > 0 {
			quota = o.messages / n
			if int64(i) < o.messages%n {
				quota++
			}
		}
		pubWG.Go(func() { b.publish(ctx, p, o.rate/float64(len(b.publisher)), deadline, quota) })
	}
	pubWG.Wait()
	publishedFor := time.Since(b.start)
	if o.fillFirst && ctx.Err() == nil {
		fmt.Fprintf(stderr, "bench: published %d in %.1fs; draining\n", b.published.Load(), publishedFor.Seconds())
		if err := startConsumers(); err != nil {
			return err
		}
	}

	missing := int64(0)
	if len(b.consumer) > 0 {
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

	sum := b.summary(publishedFor, missing)
	if b.rss != nil {
		sum.ServerPID = o.watchPID
		sum.ServerPeakRSS, sum.ServerHWM = b.rss.stop()
	}
	sum.Interrupted = ctx.Err() != nil
	if err := writeBenchSummary(stdout, stderr, o.json, sum.writeText, sum); err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case sum.PublishError != "":
		return fmt.Errorf("publishing failed: %s", sum.PublishError)
	case sum.Nacked > 0 || sum.Unconfirmed > 0:
		return fmt.Errorf("%d messages nacked, %d never confirmed", sum.Nacked, sum.Unconfirmed)
	case sum.ConsumeError != "":
		return fmt.Errorf("consuming failed: %s", sum.ConsumeError)
	case missing > 0:
		return fmt.Errorf("%d confirmed messages were not consumed", missing)
	}
	return nil
}

// declare declares the queue, and purges it with --purge-first.
func (b *amqpBench) declare(stderr io.Writer) error {
	o := b.opts
	var messages, purged int
	var err error
	if o.client == clientLean {
		messages, purged, err = b.declareLean()
	} else {
		messages, purged, err = b.declare091(stderr)
	}
	switch {
	case err != nil:
		return err
	case o.purgeFirst:
		fmt.Fprintf(stderr, "bench: purged %d messages from %s\n", purged, o.queue)
	case messages > 0:
		fmt.Fprintf(stderr, "bench: queue %s holds %d messages from before (--purge-first drops them)\n", o.queue, messages)
	}
	return nil
}

func (b *amqpBench) newPublisher(i int, stderr io.Writer) (*amqpPublisher, error) {
	p := &amqpPublisher{confirmed: make(chan struct{}), low: 1}
	if b.opts.confirm {
		w := b.opts.confirmWindow
		p.window = make(chan struct{}, w)
		p.slots = make([]confirmSlot, w)
	} else {
		close(p.confirmed)
	}
	name := fmt.Sprintf("sluice-bench-publisher-%d", i)
	var err error
	if b.opts.client == clientLean {
		err = b.newLeanPublisher(p, name, stderr)
	} else {
		err = b.new091Publisher(p, name, stderr)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (b *amqpBench) newConsumer(i int, stderr io.Writer) (*amqpConsumer, error) {
	c := &amqpConsumer{name: fmt.Sprintf("sluice-bench-consumer-%d", i)}
	var err error
	if b.opts.client == clientLean {
		c.cons, err = b.newLeanConsumer(c.name, stderr)
	} else {
		c.cons, err = b.new091Consumer(c.name, stderr)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (b *amqpBench) closeClients() {
	for _, p := range b.publisher {
		p.pub.close()
	}
	for _, c := range b.consumer {
		c.cons.close()
	}
}

// publish sends until deadline, until quota messages are sent (0: no
// quota) or until ctx ends, at rate messages/s (0: flat out), and then
// waits up to benchGrace for the outstanding confirms. A client that
// buffers (lean) is flushed when the window is full, when the next message
// is not due yet, and when benchFlushSize bytes are buffered.
func (b *amqpBench) publish(ctx context.Context, p *amqpPublisher, rate float64, deadline time.Time, quota int64) {
	o := b.opts
	body := make([]byte, len(b.template))
	copy(body, b.template)
	binary.BigEndian.PutUint64(body[8:16], b.runID)
	flush := func() bool {
		if err := p.pub.flush(); err != nil {
			b.setErr(&b.publishErr, err)
			return false
		}
		return true
	}
	var behind time.Duration
	defer func() { b.settle(p, behind) }()
	for i := int64(0); ctx.Err() == nil && (quota == 0 || i < quota); i++ {
		now := time.Now()
		if rate > 0 {
			due := b.start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
			if !due.Before(deadline) {
				return
			}
			if late := now.Sub(due); late < 0 {
				if !flush() || !pace(ctx, due) {
					return
				}
			} else {
				behind = max(behind, late)
			}
		} else if !now.Before(deadline) {
			return
		}
		if o.confirm {
			select {
			case p.window <- struct{}{}:
			default:
				// The window is full: write what is buffered, or the
				// confirms awaited would never come.
				if !flush() {
					return
				}
				select {
				case p.window <- struct{}{}:
				case <-p.confirmed: // the channel closed
					return
				case <-ctx.Done():
					return
				}
			}
		}
		now = time.Now()
		binary.BigEndian.PutUint64(body[0:8], uint64(now.UnixNano()))
		if o.confirm {
			tag := uint64(p.published) + 1
			s := &p.slots[tag%uint64(len(p.slots))]
			s.at.Store(now.UnixNano())
			s.tag.Store(tag)
		}
		if err := p.pub.publish(body); err != nil {
			b.setErr(&b.publishErr, err)
			if o.confirm {
				<-p.window
			}
			return
		}
		p.published++
		b.published.Add(1)
		if p.pub.buffered() >= benchFlushSize && !flush() {
			return
		}
	}
}

// settle writes what the publisher buffered, waits for its outstanding
// confirms by taking every window slot, and counts those that never came.
func (b *amqpBench) settle(p *amqpPublisher, behind time.Duration) {
	for {
		cur := b.maxBehind.Load()
		if int64(behind) <= cur || b.maxBehind.CompareAndSwap(cur, int64(behind)) {
			break
		}
	}
	if err := p.pub.flush(); err != nil {
		b.setErr(&b.publishErr, err)
	}
	if !b.opts.confirm {
		return
	}
	grace := time.NewTimer(benchGrace)
	defer grace.Stop()
fill:
	for range cap(p.window) {
		select {
		case p.window <- struct{}{}:
		case <-p.confirmed:
			break fill
		case <-grace.C:
			break fill
		}
	}
	if n := p.published - p.settled.Load(); n > 0 {
		b.unconfirmed.Add(n)
		if err := p.pub.abort(); err != nil {
			b.setErr(&b.publishErr, err)
		}
	}
}

// consume receives until ctx ends, acknowledging as --multi-ack-every
// says, and acknowledges what is pending before it returns. Messages of
// other runs are acknowledged unseen.
func (b *amqpBench) consume(ctx context.Context, c *amqpConsumer) {
	pol := &ackPolicy{every: uint64(b.opts.multiAckEvery)}
	err := c.cons.run(ctx, pol, func(redelivered bool, body []byte) {
		now := time.Now().UnixNano()
		if len(body) >= benchHeader && binary.BigEndian.Uint64(body[8:16]) == b.runID {
			c.lat.record(time.Duration(now - int64(binary.BigEndian.Uint64(body))))
			if redelivered {
				b.redelivered.Add(1)
			}
			b.consumed.Add(1)
			b.lastConsume.Store(now)
		} else {
			b.foreign.Add(1)
		}
	})
	if err != nil {
		b.setErr(&b.consumeErr, err)
	}
}

func (b *amqpBench) setErr(dst *error, err error) {
	b.errMu.Lock()
	if *dst == nil {
		*dst = err
	}
	b.errMu.Unlock()
}

// drain waits until the consumers have seen every message the broker
// confirmed (every message published, without confirms), or until they
// make no progress for idle, and returns how many they did not see.
func (b *amqpBench) drain(idle time.Duration) int64 {
	want := b.published.Load()
	if b.opts.confirm {
		want = b.confirmed.Load()
	}
	seen, progress := b.consumed.Load(), time.Now()
	for seen < want && time.Since(progress) < idle {
		time.Sleep(10 * time.Millisecond)
		if n := b.consumed.Load(); n > seen {
			seen, progress = n, time.Now()
		}
	}
	return max(want-b.consumed.Load(), 0)
}

// takeLatencies moves every client's interval histograms into the
// totals and returns the interval's confirm and end-to-end latencies.
func (b *amqpBench) takeLatencies(confirm, e2e *histogram) {
	var h histogram
	confirm.Reset()
	e2e.Reset()
	for _, p := range b.publisher {
		p.lat.takeInterval(&h)
		confirm.Merge(&h)
	}
	for _, c := range b.consumer {
		c.lat.takeInterval(&h)
		e2e.Merge(&h)
	}
}

// report prints a progress line every second until done is closed.
func (b *amqpBench) report(w io.Writer, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var (
		prevPub, prevConf, prevCons int64
		prevAt                      = b.start
		confirm, e2e                histogram
	)
	for {
		select {
		case <-done:
			b.takeLatencies(&confirm, &e2e) // the rest of the last interval
			return
		case now := <-t.C:
			secs := now.Sub(prevAt).Seconds()
			prevAt = now
			pub, conf, cons := b.published.Load(), b.confirmed.Load(), b.consumed.Load()
			b.takeLatencies(&confirm, &e2e)
			line := fmt.Sprintf("[%4.0fs] published %7.0f/s", now.Sub(b.start).Seconds(), float64(pub-prevPub)/secs)
			if b.opts.confirm {
				line += fmt.Sprintf("  confirmed %7.0f/s %7.2f MB/s", float64(conf-prevConf)/secs,
					float64(conf-prevConf)*float64(b.opts.size)/secs/1e6)
			}
			if len(b.consumer) > 0 {
				line += fmt.Sprintf("  consumed %7.0f/s", float64(cons-prevCons)/secs)
			}
			if b.opts.confirm {
				line += fmt.Sprintf("  confirm p50 %s p99 %s", fmtLatency(confirm.Quantile(0.5)), fmtLatency(confirm.Quantile(0.99)))
			}
			if len(b.consumer) > 0 {
				line += fmt.Sprintf("  e2e p50 %s p99 %s", fmtLatency(e2e.Quantile(0.5)), fmtLatency(e2e.Quantile(0.99)))
			}
			if n := b.nacked.Load(); n > 0 {
				line += fmt.Sprintf("  nacked %d", n)
			}
			if b.rss != nil {
				line += fmt.Sprintf("  server rss %s", fmtMiB(b.rss.last.Load()))
			}
			fmt.Fprintln(w, line)
			prevPub, prevConf, prevCons = pub, conf, cons
		}
	}
}

// benchAMQPSummary is the result of a run, as printed and as JSON.
type benchAMQPSummary struct {
	Broker          string         `json:"broker"`
	Client          string         `json:"client"`
	Queue           string         `json:"queue"`
	QueueType       string         `json:"queue_type"`
	Publishers      int            `json:"publishers"`
	Consumers       int            `json:"consumers"`
	Size            int            `json:"size"`
	Persistent      bool           `json:"persistent"`
	Confirm         bool           `json:"confirm"`
	ConfirmWindow   int            `json:"confirm_window,omitempty"`
	Prefetch        int            `json:"prefetch"`
	MultiAckEvery   int            `json:"multi_ack_every"`
	TargetRate      float64        `json:"target_rate"`
	PublishSecs     float64        `json:"publish_seconds"`
	MaxBehindMs     float64        `json:"max_behind_schedule_ms,omitempty"`
	Published       int64          `json:"published"`
	Confirmed       int64          `json:"confirmed"`
	Nacked          int64          `json:"nacked"`
	Unconfirmed     int64          `json:"unconfirmed"`
	Consumed        int64          `json:"consumed"`
	Missing         int64          `json:"missing"`
	Redelivered     int64          `json:"redelivered,omitempty"`
	Foreign         int64          `json:"foreign_messages_ignored,omitempty"`
	Interrupted     bool           `json:"interrupted,omitempty"`
	PublishRate     float64        `json:"publish_msgs_per_sec"`
	PublishMBps     float64        `json:"publish_mb_per_sec"`
	ConfirmRate     float64        `json:"confirm_msgs_per_sec"`
	ConfirmMBps     float64        `json:"confirm_mb_per_sec"`
	NackRate        float64        `json:"nack_msgs_per_sec"`
	ConsumeRate     float64        `json:"consume_msgs_per_sec"`
	ConsumeMBps     float64        `json:"consume_mb_per_sec"`
	ConfirmLatency  latencySummary `json:"confirm_latency"`
	E2ELatency      latencySummary `json:"e2e_latency"`
	ServerPID       int            `json:"server_pid,omitempty"`
	ServerPeakRSS   int64          `json:"server_peak_rss_bytes,omitempty"`
	ServerHWM       int64          `json:"server_rss_high_water_mark_bytes,omitempty"`
	PublishError    string         `json:"publish_error,omitempty"`
	ConsumeError    string         `json:"consume_error,omitempty"`
	setup           string
	confirmDuration float64
}

func (b *amqpBench) summary(publishedFor time.Duration, missing int64) benchAMQPSummary {
	o := b.opts
	var confirmTotal, e2eTotal histogram
	for _, p := range b.publisher {
		confirmTotal.Merge(&p.lat.total)
	}
	for _, c := range b.consumer {
		e2eTotal.Merge(&c.lat.total)
	}
	s := benchAMQPSummary{
		Broker: b.endpoint, Client: o.client, Queue: o.queue, QueueType: o.queueType,
		Publishers: o.publishers, Consumers: o.consumers, Size: o.size, Persistent: o.persistent,
		Confirm: o.confirm, Prefetch: o.prefetch, MultiAckEvery: o.multiAckEvery,
		TargetRate: o.rate, PublishSecs: publishedFor.Seconds(),
		Published: b.published.Load(), Confirmed: b.confirmed.Load(), Nacked: b.nacked.Load(),
		Unconfirmed: b.unconfirmed.Load(), Consumed: b.consumed.Load(), Missing: missing,
		Redelivered: b.redelivered.Load(), Foreign: b.foreign.Load(),
		ConfirmLatency: summarize(&confirmTotal), E2ELatency: summarize(&e2eTotal),
		setup: b.setupString(),
	}
	if o.confirm {
		s.ConfirmWindow = o.confirmWindow
	}
	if o.rate > 0 {
		s.MaxBehindMs = float64(b.maxBehind.Load()) / 1e6
	}
	mb := func(n int64, secs float64) float64 { return float64(n) * float64(o.size) / secs / 1e6 }
	s.PublishRate = float64(s.Published) / s.PublishSecs
	s.PublishMBps = mb(s.Published, s.PublishSecs)
	// Confirm and consume rates run from the start (consumers: from when
	// they started) to the last one seen, so that waiting for stragglers
	// does not dilute them.
	if last := b.lastConfirm.Load(); last > 0 {
		secs := time.Duration(last - b.start.UnixNano()).Seconds()
		s.ConfirmRate, s.ConfirmMBps = float64(s.Confirmed)/secs, mb(s.Confirmed, secs)
		s.NackRate = float64(s.Nacked) / secs
		s.confirmDuration = secs
	}
	if last := b.lastConsume.Load(); last > 0 {
		secs := time.Duration(last - b.consumeAt.UnixNano()).Seconds()
		s.ConsumeRate, s.ConsumeMBps = float64(s.Consumed)/secs, mb(s.Consumed, secs)
	}
	b.errMu.Lock()
	if b.publishErr != nil {
		s.PublishError = b.publishErr.Error()
	}
	if b.consumeErr != nil {
		s.ConsumeError = b.consumeErr.Error()
	}
	b.errMu.Unlock()
	return s
}

func (s *benchAMQPSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", s.setup)
	fmt.Fprintf(w, "messages:    published %d", s.Published)
	if s.Confirm {
		fmt.Fprintf(w, ", confirmed %d, nacked %d", s.Confirmed, s.Nacked)
		if s.Unconfirmed > 0 {
			fmt.Fprintf(w, ", NEVER CONFIRMED %d", s.Unconfirmed)
		}
	}
	if s.Consumers > 0 {
		fmt.Fprintf(w, ", consumed %d", s.Consumed)
		switch {
		case s.Missing > 0 && s.Interrupted:
			fmt.Fprintf(w, ", not consumed before the interrupt %d", s.Missing)
		case s.Missing > 0:
			fmt.Fprintf(w, ", MISSING %d", s.Missing)
		}
		if s.Redelivered > 0 {
			fmt.Fprintf(w, ", redelivered %d", s.Redelivered)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "publish:     %.0f msgs/s, %.2f MB/s over %.1fs", s.PublishRate, s.PublishMBps, s.PublishSecs)
	if s.TargetRate > 0 {
		fmt.Fprintf(w, " (target %s, at worst %s behind schedule)", rateString(s.TargetRate), fmtLatency(time.Duration(s.MaxBehindMs*1e6)))
	}
	fmt.Fprintln(w)
	if s.Confirm {
		fmt.Fprintf(w, "confirm:     %.0f msgs/s, %.2f MB/s acked, %.0f msgs/s nacked\n", s.ConfirmRate, s.ConfirmMBps, s.NackRate)
	}
	if s.Consumers > 0 {
		fmt.Fprintf(w, "consume:     %.0f msgs/s, %.2f MB/s\n", s.ConsumeRate, s.ConsumeMBps)
	}
	fmt.Fprintf(w, "latency      %9s %9s %9s %9s %9s\n", "p50", "p99", "p99.9", "max", "mean")
	row := func(name string, l latencySummary) {
		d := func(ms float64) string { return fmtLatency(time.Duration(ms * 1e6)) }
		fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s\n", name, d(l.P50Ms), d(l.P99Ms), d(l.P999Ms), d(l.MaxMs), d(l.MeanMs))
	}
	if s.Confirm {
		row("confirm", s.ConfirmLatency)
	}
	if s.Consumers > 0 {
		row("end-to-end", s.E2ELatency)
	}
	if s.ServerPID > 0 {
		fmt.Fprintf(w, "server pid %d: peak resident memory %s sampled during the run, %s high-water mark over its life\n",
			s.ServerPID, fmtMiB(s.ServerPeakRSS), fmtMiB(s.ServerHWM))
	}
	if s.PublishError != "" {
		fmt.Fprintf(w, "publish error: %s\n", s.PublishError)
	}
	if s.ConsumeError != "" {
		fmt.Fprintf(w, "consume error: %s\n", s.ConsumeError)
	}
	if s.Foreign > 0 {
		fmt.Fprintf(w, "ignored %d messages not published by this run\n", s.Foreign)
	}
}

// setupString describes what the run does, for its first and last lines.
func (b *amqpBench) setupString() string {
	o := b.opts
	confirm := "no confirms"
	if o.confirm {
		confirm = fmt.Sprintf("confirms (window %d)", o.confirmWindow)
	}
	mode := "persistent"
	if !o.persistent {
		mode = "transient"
	}
	ack := "ack each"
	if o.multiAckEvery > 1 {
		ack = fmt.Sprintf("multi-ack every %d", o.multiAckEvery)
	}
	return fmt.Sprintf("%s queue %s (%s), %s client, %s, %s, %d-byte %s messages, %s, prefetch %d, %s",
		b.endpoint, o.queue, o.queueType, o.client, plural(o.publishers, "publisher"), plural(o.consumers, "consumer"),
		o.size, mode, confirm, o.prefetch, ack)
}

// lengthString says what ends the publishing.
func (b *amqpBench) lengthString() string {
	s := fmt.Sprintf("for %v", b.opts.duration)
	if b.opts.messages > 0 {
		s = fmt.Sprintf("%d messages (at most %v)", b.opts.messages, b.opts.duration)
	}
	if b.opts.fillFirst {
		s += ", consumers start when publishing ends"
	}
	return s
}

// redactURL drops the password from an AMQP URI, for printing.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the broker"
	}
	return u.Redacted()
}
