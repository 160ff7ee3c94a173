package cli

// The at-rate phase of sluice plan's calibration: the workload itself, as
// far as this machine takes it, for --calibrate. The full-speed phases
// (plan_calibrate.go) find the most one partition or queue takes, with the
// biggest batches and so the cheapest records; at the planned rate
// batches are smaller and each record costs more CPU and more bytes of
// headers, so what the plan needs at that rate is measured at that rate,
// with its consumer groups reading along.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// planMaxCalPartitions bounds the partitions of the at-rate topic.
	planMaxCalPartitions = 64
	// planMaxGroups bounds --consumer-groups: the at-rate phase runs a
	// consumer per group.
	planMaxGroups = 16
)

// planAtRate is the at-rate phase of one protocol.
type planAtRate struct {
	Target       float64 `json:"target_per_sec"`
	Capped       bool    `json:"capped"`
	Achieved     float64 `json:"achieved_per_sec"` // see finish
	TooSlow      bool    `json:"fell_behind"`      // achieved under 90% of the target
	Partitions   int     `json:"partitions_or_queues"`
	Consumers    int     `json:"consumers"`
	Records      int64   `json:"records"`
	Consumed     int64   `json:"consumed"`
	Seconds      float64 `json:"seconds"`
	CPUSecs      float64 `json:"cpu_seconds"`
	CPUPerRecord float64 `json:"cpu_seconds_per_record"`
	DiskGrowth   int64   `json:"disk_growth_bytes"`
	DiskOverhead float64 `json:"disk_overhead"`
	AckP50Ms     float64 `json:"ack_p50_ms"`
	AckP99Ms     float64 `json:"ack_p99_ms"`

	ackSpan time.Duration // from the first send to the last ack
}

// atRateTarget is the rate to offer: the planned one, at most
// --target-utilization of what one partition (queue) took at full speed
// times the partitions (at full speed there is no rate to measure at).
func atRateTarget(planned, fullSpeed float64, parts int, util float64) (float64, bool) {
	limit := util * fullSpeed * float64(parts)
	if planned > limit {
		return limit, true
	}
	return planned, false
}

// paceFor calls send(n) every 10 ms with the records due by then at rate r,
// until d has passed; it returns how many it asked for.
func paceFor(ctx context.Context, r float64, d time.Duration, send func(n int) error) (int64, error) {
	start := time.Now()
	var sent int64
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		el := time.Since(start)
		if el >= d {
			return sent, nil
		}
		if due := int64(r * el.Seconds()); due > sent {
			if err := send(int(due - sent)); err != nil {
				return sent, err
			}
			sent = due
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
	}
}

func (p *planAtRate) finish(size, copies int, lat *histogram) error {
	if p.Records == 0 || p.CPUSecs <= 0 {
		return errors.New("at-rate phase: nothing measured (calibrate for longer)")
	}
	if p.DiskGrowth <= 0 {
		return errors.New("at-rate phase: the data directory did not grow: is --data-dir the broker's?")
	}
	p.CPUPerRecord = p.CPUSecs / float64(p.Records)
	p.DiskOverhead = float64(p.DiskGrowth) / (float64(p.Records) * float64(size) * float64(copies))
	p.AckP50Ms = float64(lat.Quantile(0.5)) / 1e6
	p.AckP99Ms = float64(lat.Quantile(0.99)) / 1e6
	// The rate taken: the records over the time from the first send to
	// the last ack, less the median ack latency, so that a machine that
	// keeps up shows the rate offered whatever its latency, and one that
	// falls behind, whose acks come later and later, shows less. Under
	// 90%: it fell behind (a run that keeps up loses at most a 10 ms tick
	// of pacing).
	span := p.ackSpan - lat.Quantile(0.5)
	if span <= 0 {
		span = p.ackSpan
	}
	p.Achieved = float64(p.Records) / span.Seconds()
	p.TooSlow = p.Achieved < 0.9*p.Target
	return nil
}

// kafkaAtRate produces at the planned Kafka rate to a topic of parts
// partitions with acks=all, while groups consumers each read all of it.
func kafkaAtRate(ctx context.Context, cf *clientFlags, o planOptions, full *planProtocolCal, parts int) (*planAtRate, error) {
	parts = min(max(parts, 1), planMaxCalPartitions)
	res := &planAtRate{Partitions: parts, Consumers: o.groups}
	res.Target, res.Capped = atRateTarget(o.rate*o.kafkaShare, full.ProduceRate, parts, o.utilization)
	topic := fmt.Sprintf("sluice-plan-rate-%08x", rand.Uint32())
	adm, err := cf.newAdmin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	actx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if r, err := adm.CreateTopic(actx, int32(parts), 1, nil, topic); err != nil || r.Err != nil {
		return nil, errors.Join(err, r.Err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		adm.DeleteTopics(dctx, topic)
	}()
	// No linger (franz-go's default is 10 ms): the latency measured is
	// the broker's; a client's own linger.ms adds to it.
	prod, err := cf.newClient(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	// Every partition's log exists before the measurement starts.
	var warm []*kgo.Record
	for range parts {
		warm = append(warm, &kgo.Record{Value: []byte("warm-up")})
	}
	if err := prod.ProduceSync(ctx, warm...).FirstErr(); err != nil {
		return nil, err
	}
	start := map[int32]kgo.Offset{}
	for p := range int32(parts) {
		start[p] = kgo.NewOffset().At(1)
	}
	consumers, err := cf.newClients(o.groups, func(int) []kgo.Opt {
		return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start})}
	})
	if err != nil {
		return nil, err
	}
	defer closeClients(consumers)
	value := make([]byte, o.size)
	for i := range value {
		value[i] = byte(rand.Uint32())
	}

	var (
		mu       sync.Mutex
		lat      histogram
		firstErr atomic.Pointer[error]
		consumed atomic.Int64
	)
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var wg sync.WaitGroup
	want := atomic.Int64{}
	want.Store(math.MaxInt64)
	for _, c := range consumers {
		wg.Go(func() {
			var n int64
			for n < want.Load() && cctx.Err() == nil {
				fs := c.PollFetches(cctx)
				n += int64(fs.NumRecords())
				consumed.Add(int64(fs.NumRecords()))
			}
		})
	}
	res.CPUSecs, res.DiskGrowth, err = measure(o, func() error {
		t0 := time.Now()
		n, err := paceFor(ctx, res.Target, o.calibrate, func(n int) error {
			for range n {
				at := time.Now()
				prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					mu.Lock()
					lat.Record(time.Since(at))
					mu.Unlock()
				})
			}
			if p := firstErr.Load(); p != nil {
				return *p
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := prod.Flush(ctx); err != nil {
			return err
		}
		if p := firstErr.Load(); p != nil {
			return *p
		}
		res.Records, res.ackSpan = n, time.Since(t0)
		// The consumers read what was produced to its end.
		want.Store(n)
		if err := awaitConsumed(ctx, &consumed, n*int64(o.groups), o.calibrate+30*time.Second, "read", "records"); err != nil {
			return err
		}
		res.Seconds = time.Since(t0).Seconds()
		return nil
	})
	stopConsumers()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.Consumed = consumed.Load()
	return res, res.finish(o.size, 1, &lat)
}

// amqpAtRate publishes at the planned AMQP rate, persistent with
// confirms, to a fanout exchange bound to a queue per consumer group,
// each with a consumer acking every message.
func amqpAtRate(ctx context.Context, o planOptions, full *planProtocolCal) (*planAtRate, error) {
	res := &planAtRate{Partitions: o.groups, Consumers: o.groups}
	// Each publish lands in every group's queue.
	res.Target, res.Capped = atRateTarget(o.rate*(1-o.kafkaShare), full.ProduceRate/float64(o.groups), 1, o.utilization)
	name := fmt.Sprintf("sluice-plan-rate-%08x", rand.Uint32())
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.ExchangeDeclare(name, "fanout", false, true, false, false, nil); err != nil {
		return nil, err
	}
	queues := make([]string, o.groups)
	for i := range queues {
		queues[i] = fmt.Sprintf("%s-%d", name, i)
		if _, err := ch.QueueDeclare(queues[i], true, false, false, false, nil); err != nil {
			return nil, err
		}
		if err := ch.QueueBind(queues[i], "", name, false, nil); err != nil {
			return nil, err
		}
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			for _, q := range queues {
				c.QueueDelete(q, false, false, false)
			}
			c.ExchangeDelete(name, false, false)
		}
	}()
	if err := ch.Confirm(false); err != nil {
		return nil, err
	}
	var consumed atomic.Int64
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var wg sync.WaitGroup
	for _, q := range queues {
		cch, err := conn.Channel()
		if err != nil {
			return nil, err
		}
		if err := cch.Qos(100, 0, false); err != nil {
			return nil, err
		}
		dels, err := cch.ConsumeWithContext(cctx, q, "", false, false, false, false, nil)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			for d := range dels {
				d.Ack(false)
				consumed.Add(1)
			}
		})
	}
	body := make([]byte, o.size)
	for i := range body {
		body[i] = byte(rand.Uint32())
	}
	type inFlight struct {
		at time.Time
		c  *amqp.DeferredConfirmation
	}
	var lat histogram
	pending := make(chan inFlight, 4096)
	confirmErr := make(chan error, 1)
	go func() {
		var err error
		for f := range pending {
			if err != nil {
				continue
			}
			ok, werr := f.c.WaitContext(ctx)
			switch {
			case werr != nil:
				err = werr
			case !ok:
				err = errors.New("the broker nacked a publish")
			default:
				lat.Record(time.Since(f.at))
			}
		}
		confirmErr <- err
	}()
	res.CPUSecs, res.DiskGrowth, err = measure(o, func() error {
		t0 := time.Now()
		n, err := paceFor(ctx, res.Target, o.calibrate, func(n int) error {
			for range n {
				at := time.Now()
				c, err := ch.PublishWithDeferredConfirmWithContext(ctx, name, "", false, false,
					amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
				if err != nil {
					return err
				}
				pending <- inFlight{at, c}
			}
			return nil
		})
		close(pending)
		if cerr := <-confirmErr; err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		res.Records, res.ackSpan = n, time.Since(t0)
		if err := awaitConsumed(ctx, &consumed, n*int64(o.groups), o.calibrate+30*time.Second, "acked", "messages"); err != nil {
			return err
		}
		res.Seconds = time.Since(t0).Seconds()
		return nil
	})
	stopConsumers() // cancels the consumers, closing their deliveries
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.Consumed = consumed.Load()
	return res, res.finish(o.size, o.groups, &lat)
}

// awaitConsumed polls until the consumers' count reaches want, within
// the time given: the at-rate phase ends when what was produced has been
// consumed by every group.
func awaitConsumed(ctx context.Context, consumed *atomic.Int64, want int64, within time.Duration, did, what string) error {
	deadline := time.Now().Add(within)
	for consumed.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("the consumers %s %d of %d %s", did, consumed.Load(), want, what)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
