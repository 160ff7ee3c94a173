package cli

// The calibration of sluice plan: a probe of the data directory's disk and
// a short full-speed load per protocol through a real broker, with the
// broker's CPU time and the data directory's growth read around each.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// planCalibration is what was measured.
type planCalibration struct {
	Against string           `json:"against"`
	CPUs    int              `json:"cpus"`
	Fsync   planFsyncCal     `json:"fsync"`
	Kafka   *planProtocolCal `json:"kafka,omitempty"`
	AMQP    *planProtocolCal `json:"amqp,omitempty"`
}

// planFsyncCal is the disk probe.
type planFsyncCal struct {
	Dir                  string  `json:"dir"`
	SmallWriteBytes      int     `json:"small_write_bytes"`
	SmallSyncs           int     `json:"small_syncs"`
	SmallP50Ms           float64 `json:"small_p50_ms"`
	SmallP99Ms           float64 `json:"small_p99_ms"`
	LargeWriteBytes      int     `json:"large_write_bytes"`
	LargeSyncs           int     `json:"large_syncs"`
	BandwidthBytesPerSec float64 `json:"bandwidth_bytes_per_sec"`
}

// planProtocolCal is one protocol's load: one partition (one queue),
// produced to at full speed, then read to its end.
type planProtocolCal struct {
	Protocol        string  `json:"protocol"`
	Produced        int64   `json:"produced"`
	ProduceSecs     float64 `json:"produce_seconds"`
	ProduceRate     float64 `json:"produce_per_sec"`
	ProduceCPUSecs  float64 `json:"produce_cpu_seconds"`
	ProduceCPU      float64 `json:"produce_cpu_seconds_per_record"`
	DiskGrowthBytes int64   `json:"disk_growth_bytes"`
	DiskOverhead    float64 `json:"disk_overhead"`
	Consumed        int64   `json:"consumed"`
	ConsumeSecs     float64 `json:"consume_seconds"`
	ConsumeRate     float64 `json:"consume_per_sec"`
	ConsumeCPUSecs  float64 `json:"consume_cpu_seconds"`
	ConsumeCPU      float64 `json:"consume_cpu_seconds_per_record"`
	// AtRate is the workload's own rate with its consumer groups.
	AtRate *planAtRate `json:"at_rate"`
}

func (p *planProtocolCal) unit() string {
	if p.Protocol == "amqp" {
		return "queue"
	}
	return "partition"
}

func calibrate(ctx context.Context, cf *clientFlags, o planOptions, stderr io.Writer) (planCalibration, error) {
	cal := planCalibration{CPUs: runtime.NumCPU()}
	if o.startServer {
		srv, err := startPlanServer(ctx)
		if err != nil {
			return cal, err
		}
		defer srv.stop()
		cf.brokers, o.url, o.serverPID, o.dataDir = srv.kafka, "amqp://guest:guest@"+srv.amqp+"/", srv.pid, srv.dataDir
		cal.Against = "a sluice server started for the calibration in " + srv.dataDir
	} else {
		cal.Against = fmt.Sprintf("the sluice server pid %d, data directory %s", o.serverPID, o.dataDir)
	}
	fmt.Fprintf(stderr, "calibrating against %s\n", cal.Against)
	var err error
	if cal.Fsync, err = probeDisk(ctx, o.dataDir, o.calibrate); err != nil {
		return cal, err
	}
	fmt.Fprintf(stderr, "disk: fsync p50 %.2f ms, %s/s\n", cal.Fsync.SmallP50Ms, fmtMiB(int64(cal.Fsync.BandwidthBytesPerSec)))
	if o.kafkaShare > 0 {
		if cal.Kafka, err = calibrateKafka(ctx, cf, o); err != nil {
			return cal, fmt.Errorf("kafka calibration: %w", err)
		}
		fmt.Fprintf(stderr, "kafka: %.0f records/s produced, %.0f/s consumed\n", cal.Kafka.ProduceRate, cal.Kafka.ConsumeRate)
		parts := planPartitions(o.rate*o.kafkaShare, cal.Kafka, o.consumers, o.utilization)
		if cal.Kafka.AtRate, err = kafkaAtRate(ctx, cf, o, cal.Kafka, parts); err != nil {
			return cal, fmt.Errorf("kafka calibration at rate: %w", err)
		}
		fmt.Fprintf(stderr, "kafka at %.0f records/s: %.1f µs CPU per record, acks p50 %.2f ms\n", cal.Kafka.AtRate.Target, cal.Kafka.AtRate.CPUPerRecord*1e6, cal.Kafka.AtRate.AckP50Ms)
	}
	if o.kafkaShare < 1 {
		if cal.AMQP, err = calibrateAMQP(ctx, o); err != nil {
			return cal, fmt.Errorf("amqp calibration: %w", err)
		}
		fmt.Fprintf(stderr, "amqp: %.0f messages/s published, %.0f/s consumed\n", cal.AMQP.ProduceRate, cal.AMQP.ConsumeRate)
		if cal.AMQP.AtRate, err = amqpAtRate(ctx, o, cal.AMQP); err != nil {
			return cal, fmt.Errorf("amqp calibration at rate: %w", err)
		}
		fmt.Fprintf(stderr, "amqp at %.0f messages/s: %.1f µs CPU per message, confirms p50 %.2f ms\n", cal.AMQP.AtRate.Target, cal.AMQP.AtRate.CPUPerRecord*1e6, cal.AMQP.AtRate.AckP50Ms)
	}
	return cal, nil
}

// probeDisk writes and fsyncs a scratch file in dir: small writes (the
// size of a small batch) for half of d, for the latency a durable ack
// waits at least, then 1 MiB writes for the other half, for bandwidth.
func probeDisk(ctx context.Context, dir string, d time.Duration) (planFsyncCal, error) {
	res := planFsyncCal{Dir: dir, SmallWriteBytes: 4 << 10, LargeWriteBytes: 1 << 20}
	f, err := os.CreateTemp(dir, ".sluice-plan-probe-*")
	if err != nil {
		return res, fmt.Errorf("disk probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, res.LargeWriteBytes)
	for i := range buf {
		buf[i] = byte(rand.Uint32())
	}
	var lat []time.Duration
	end := time.Now().Add(d / 2)
	for len(lat) < 3 || time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t := time.Now()
		if _, err := f.Write(buf[:res.SmallWriteBytes]); err != nil {
			return res, fmt.Errorf("disk probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return res, fmt.Errorf("disk probe: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	res.SmallSyncs = len(lat)
	res.SmallP50Ms = float64(lat[len(lat)/2]) / 1e6
	res.SmallP99Ms = float64(lat[min(len(lat)-1, len(lat)*99/100)]) / 1e6

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	start := time.Now()
	end = start.Add(d / 2)
	for res.LargeSyncs < 3 || time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if _, err := f.Write(buf); err != nil {
			return res, fmt.Errorf("disk probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return res, fmt.Errorf("disk probe: %w", err)
		}
		res.LargeSyncs++
	}
	res.BandwidthBytesPerSec = float64(res.LargeSyncs*res.LargeWriteBytes) / time.Since(start).Seconds()
	return res, nil
}

// brokerCPU is the CPU seconds process pid has used: the sum of its
// threads' run time in /proc/<pid>/task/*/schedstat (nanoseconds), or, if
// that cannot be read, user + system time from /proc/<pid>/stat (10 ms
// ticks). A Go process keeps its threads, so the sum loses nothing.
func brokerCPU(pid int) (float64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err == nil {
		var ns int64
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // the thread ended
				}
				return processCPU(pid)
			}
			var run int64
			if _, err := fmt.Sscan(string(b), &run); err != nil {
				return processCPU(pid)
			}
			ns += run
		}
		if ns > 0 {
			return float64(ns) / 1e9, nil
		}
	}
	return processCPU(pid)
}

// dirSizes is the size of each file under dir.
func dirSizes(dir string) (map[string]int64, error) {
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				out[path] = info.Size()
			}
		}
		return nil
	})
	return out, err
}

// grown is the bytes files grew by from before to after: files that
// shrank or went (an earlier phase's topic or queue being deleted, a
// segment of acked messages removed) count nothing, so that the figure is
// what was written.
func grown(before, after map[string]int64) int64 {
	var n int64
	for f, size := range after {
		n += max(0, size-before[f])
	}
	return n
}

// measure runs load and returns the broker's CPU seconds it took and the
// bytes written to the data directory meanwhile.
func measure(o planOptions, load func() error) (cpu float64, wrote int64, err error) {
	cpu0, err := brokerCPU(o.serverPID)
	if err != nil {
		return 0, 0, err
	}
	sizes0, err := dirSizes(o.dataDir)
	if err != nil {
		return 0, 0, err
	}
	if err := load(); err != nil {
		return 0, 0, err
	}
	cpu1, err := brokerCPU(o.serverPID)
	if err != nil {
		return 0, 0, err
	}
	sizes1, err := dirSizes(o.dataDir)
	if err != nil {
		return 0, 0, err
	}
	return cpu1 - cpu0, grown(sizes0, sizes1), nil
}

func (p *planProtocolCal) finish(size int) error {
	if p.Produced == 0 || p.Consumed == 0 {
		return errors.New("no records went through")
	}
	p.ProduceRate = float64(p.Produced) / p.ProduceSecs
	p.ConsumeRate = float64(p.Consumed) / p.ConsumeSecs
	// A run too short to show any CPU time (in 10 ms ticks where the
	// kernel keeps no schedstat) would claim the broker works for free.
	if p.ProduceCPUSecs <= 0 || p.ConsumeCPUSecs <= 0 {
		return errors.New("the broker's CPU time did not move: calibrate for longer (--calibrate)")
	}
	p.ProduceCPU = p.ProduceCPUSecs / float64(p.Produced)
	p.ConsumeCPU = p.ConsumeCPUSecs / float64(p.Consumed)
	if p.DiskGrowthBytes <= 0 {
		return errors.New("the data directory did not grow: is --data-dir the broker's?")
	}
	p.DiskOverhead = float64(p.DiskGrowthBytes) / (float64(p.Produced) * float64(size))
	return nil
}

// calibrateKafka produces to a one-partition topic of its own with
// acks=all for --calibrate, then reads it all back (as many times as
// half of --calibrate takes), then deletes it.
func calibrateKafka(ctx context.Context, cf *clientFlags, o planOptions) (*planProtocolCal, error) {
	res := &planProtocolCal{Protocol: "kafka"}
	topic := fmt.Sprintf("sluice-plan-%08x", rand.Uint32())
	adm, err := cf.newAdmin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	actx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if r, err := adm.CreateTopic(actx, 1, 1, nil, topic); err != nil || r.Err != nil {
		return nil, cf.explainTimeout(errors.Join(err, r.Err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		adm.DeleteTopics(dctx, topic)
	}()
	prod, err := cf.newClient(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(1<<14),
		// Uncompressed: the overhead measured is the format's, per payload
		// byte as given; compression is the user's to apply on top.
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	// One record first, so that the partition's log exists before the
	// measurement starts.
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		return nil, err
	}
	value := make([]byte, o.size)
	for i := range value {
		value[i] = byte(rand.Uint32())
	}
	var acked atomic.Int64
	var firstErr atomic.Pointer[error]
	res.ProduceCPUSecs, res.DiskGrowthBytes, err = measure(o, func() error {
		start := time.Now()
		for time.Since(start) < o.calibrate && ctx.Err() == nil && firstErr.Load() == nil {
			prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				acked.Add(1)
			})
		}
		if err := prod.Flush(ctx); err != nil {
			return err
		}
		res.ProduceSecs = time.Since(start).Seconds()
		if p := firstErr.Load(); p != nil {
			return *p
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	res.Produced = acked.Load()

	cons, err := cf.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(1)}}),
		kgo.FetchMaxBytes(32<<20))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	res.ConsumeCPUSecs, _, err = measure(o, func() error {
		// Reading is faster than writing: read the partition again from
		// its start until half of --calibrate has passed too, so that the
		// broker's CPU time (in 10 ms ticks) is measured over enough work.
		start := time.Now()
		for pass := int64(1); ; pass++ {
			for res.Consumed < pass*res.Produced {
				fs := cons.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fs.Err0(); err != nil {
					return err
				}
				res.Consumed += int64(fs.NumRecords())
			}
			if time.Since(start) >= o.calibrate/2 {
				break
			}
			cons.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 1}}})
		}
		res.ConsumeSecs = time.Since(start).Seconds()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, res.finish(o.size)
}

// calibrateAMQP publishes persistent messages with confirms to a durable
// queue of its own for --calibrate, then consumes them all with manual
// acks, then deletes the queue.
func calibrateAMQP(ctx context.Context, o planOptions) (*planProtocolCal, error) {
	res := &planProtocolCal{Protocol: "amqp"}
	queue := fmt.Sprintf("sluice-plan-%08x", rand.Uint32())
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return nil, err
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			c.QueueDelete(queue, false, false, false)
		}
	}()
	if err := ch.Confirm(false); err != nil {
		return nil, err
	}
	body := make([]byte, o.size)
	for i := range body {
		body[i] = byte(rand.Uint32())
	}
	// A window of confirms in flight, as a fast publisher keeps.
	const window = 512
	res.ProduceCPUSecs, res.DiskGrowthBytes, err = measure(o, func() error {
		var pending []*amqp.DeferredConfirmation
		wait := func(c *amqp.DeferredConfirmation) error {
			ok, err := c.WaitContext(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("the broker nacked a publish")
			}
			res.Produced++
			return nil
		}
		start := time.Now()
		for time.Since(start) < o.calibrate && ctx.Err() == nil {
			c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
			if err != nil {
				return err
			}
			pending = append(pending, c)
			if len(pending) >= window {
				if err := wait(pending[0]); err != nil {
					return err
				}
				pending = pending[1:]
			}
		}
		for _, c := range pending {
			if err := wait(c); err != nil {
				return err
			}
		}
		res.ProduceSecs = time.Since(start).Seconds()
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}

	cch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := cch.Qos(window, 0, false); err != nil {
		return nil, err
	}
	res.ConsumeCPUSecs, _, err = measure(o, func() error {
		start := time.Now()
		dels, err := cch.ConsumeWithContext(ctx, queue, "sluice-plan", false, false, false, false, nil)
		if err != nil {
			return err
		}
		for res.Consumed < res.Produced {
			select {
			case d, ok := <-dels:
				if !ok {
					return errors.New("the consumer was cancelled")
				}
				res.Consumed++
				// Ack every 64th (and the last) with multiple, as a fast
				// consumer does.
				if res.Consumed%64 == 0 || res.Consumed == res.Produced {
					if err := d.Ack(true); err != nil {
						return err
					}
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		res.ConsumeSecs = time.Since(start).Seconds()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, res.finish(o.size)
}

// planServer is a broker of this binary started for the calibration.
type planServer struct {
	cmd               *exec.Cmd
	exited            chan struct{}
	dir, dataDir      string
	kafka, amqp, http string
	pid               int
	logPath           string
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startPlanServer(ctx context.Context) (*planServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-plan-")
	if err != nil {
		return nil, err
	}
	s := &planServer{dir: dir, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log")}
	for _, a := range []*string{&s.kafka, &s.amqp, &s.http} {
		if *a, err = freeAddr(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(exe, "server", "--data-dir", s.dataDir,
		"--kafka-addr", s.kafka, "--amqp-addr", s.amqp, "--http-addr", s.http, "--log-level", "warn")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.pid = s.cmd.Process.Pid
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		up := true
		for _, a := range []string{s.kafka, s.amqp, s.http} {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err != nil {
				up = false
				break
			}
			c.Close()
		}
		if up {
			return s, nil
		}
		select {
		case <-s.exited:
			logs, _ := os.ReadFile(s.logPath)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the calibration server exited at start:\n%s", logs)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("the calibration server did not open its ports within 30s")
		}
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 20 s) and removes its
// directory.
func (s *planServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}
