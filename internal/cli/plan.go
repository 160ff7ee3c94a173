package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newPlanCmd) }

// planOptions are the workload to plan for (inputs) and how to calibrate.
type planOptions struct {
	rate           float64
	size           int
	retention      time.Duration
	retentionBytes int64
	amqpBacklog    time.Duration
	replication    int
	groups         int
	consumers      int
	kafkaShare     float64
	utilization    float64

	startServer bool
	url         string
	serverPID   int
	dataDir     string
	calibrate   time.Duration
	json        bool
}

func newPlanCmd() *cobra.Command {
	var (
		o  planOptions
		cf clientFlags
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Capacity planning: disk, partitions and headroom for a workload, from a calibration run on this machine",
		Long: `Answer how much disk a workload needs, how many partitions (or queues) to
give it and how much headroom this machine has for it, from a short
calibration run against a real broker, not from rules of thumb.

The workload is the inputs: --rate messages per second of --size bytes,
kept for --retention (and at most --retention-bytes per partition, as
Kafka's retention.bytes), with --replication copies, read by
--consumer-groups groups of --consumers members each, --kafka-share of it
produced and consumed over Kafka and the rest over AMQP.

The calibration measures, on this machine:
  - the data directory's disk: write + fsync latency of small writes and
    the bandwidth of 1 MiB writes with fsync;
  - per protocol in the mix, a short load at full speed with --size
    messages through the broker with its default durability (acks=all,
    publisher confirms on persistent messages): records per second of one
    partition (one queue) produced and consumed, and the broker's CPU time
    per record produced and per record consumed (its threads' run time
    from /proc/<pid>/task/*/schedstat);
  - per protocol, the workload at its planned rate over the planned
    partitions (a queue per consumer group), with a consumer per group
    reading along: the broker's CPU time per record at that rate, the bytes
    written to the data directory per payload byte (batch and record
    headers, indexes, acks), the ack latency and the rate it took.

Every figure in the answer says whether it is an input, a measurement or
derived from them, and how (docs/plan.md). --start-server runs a broker of
this binary in a temporary directory for the calibration (the default when
no --brokers or --url is given); otherwise give the broker's --brokers /
--url, its --server-pid and its --data-dir, all on this machine. The
calibration creates, loads and deletes topics, queues and an exchange named
sluice-plan-*: do not point it at a broker in production use.`,
		Example: `  sluice plan --rate 20000 --size 1024 --retention 168h --consumer-groups 3
  sluice plan --rate 5000 --size 512 --kafka-share 0.5 --amqp-backlog 1h --json
  sluice plan --rate 20000 --brokers 127.0.0.1:9092 --url amqp://guest:guest@127.0.0.1:5672/ \
      --server-pid "$(pidof sluice)" --data-dir /var/lib/sluice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("start-server") {
				o.startServer = !cmd.Flags().Changed("brokers") && !cmd.Flags().Changed("url")
			}
			ctx, stop := signalContext()
			defer stop()
			return runPlan(ctx, &cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.Float64Var(&o.rate, "rate", 0, "messages per second to plan for (required)")
	f.IntVar(&o.size, "size", 1024, "bytes per message (payload)")
	f.Var((*daysDuration)(&o.retention), "retention", `how long data is kept (Go duration, or days: "7d"); a topic's retention.ms`)
	f.Int64Var(&o.retentionBytes, "retention-bytes", 0, "Kafka retention.bytes: at most this many bytes per partition (0: no limit)")
	f.Var((*daysDuration)(&o.amqpBacklog), "amqp-backlog", "AMQP: the longest backlog the queues are to absorb (queues keep a message until it is acked); default --retention")
	f.IntVar(&o.replication, "replication", 1, "copies of the data: Sluice keeps 1 today; more plans for a cluster (docs/plan.md, Replication)")
	f.IntVar(&o.groups, "consumer-groups", 1, "consumer groups reading everything (AMQP: queues bound to receive a copy each)")
	f.IntVar(&o.consumers, "consumers", 1, "consumers per group (a partition feeds one member of a group)")
	f.Float64Var(&o.kafkaShare, "kafka-share", 1, "fraction of the messages produced and consumed over Kafka; the rest over AMQP")
	f.Float64Var(&o.utilization, "target-utilization", 0.9, "the share of what one partition (queue) was measured to take at full speed that the plan loads it with at most")
	f.BoolVar(&o.startServer, "start-server", false, "calibrate against a broker of this binary started in a temporary directory (default when no --brokers or --url is given)")
	f.StringVar(&o.url, "url", envOr(amqpURLEnv, defaultAMQPURL), "AMQP URI of the broker to calibrate (env "+amqpURLEnv+")")
	f.IntVar(&o.serverPID, "server-pid", 0, "process id of the broker to calibrate, on this machine (for its CPU time)")
	f.StringVar(&o.dataDir, "data-dir", "", "the broker's data directory, on this machine (its disk is probed and its growth measured)")
	f.DurationVar(&o.calibrate, "calibrate", 5*time.Second, "how long each calibration phase runs")
	f.BoolVar(&o.json, "json", false, "print the plan as JSON")
	o.retention = 7 * 24 * time.Hour
	return cmd
}

// daysDuration is a time.Duration flag that also takes whole days ("7d").
type daysDuration time.Duration

func (d *daysDuration) String() string { return time.Duration(*d).String() }
func (d *daysDuration) Type() string   { return "duration" }
func (d *daysDuration) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return err
		}
		*d = daysDuration(days * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	*d = daysDuration(v)
	return err
}

func (o *planOptions) validate() error {
	switch {
	case o.rate <= 0 || math.IsInf(o.rate, 0) || math.IsNaN(o.rate):
		return errors.New("--rate must be positive")
	case o.size < 1:
		return errors.New("--size must be at least 1")
	case o.retention <= 0:
		return errors.New("--retention must be positive")
	case o.retentionBytes < 0:
		return errors.New("--retention-bytes must not be negative")
	case o.amqpBacklog < 0:
		return errors.New("--amqp-backlog must not be negative")
	case o.replication < 1:
		return errors.New("--replication must be at least 1")
	case o.groups < 1 || o.consumers < 1:
		return errors.New("--consumer-groups and --consumers must be at least 1")
	case o.groups > planMaxGroups:
		return fmt.Errorf("--consumer-groups: at most %d (the calibration runs a consumer per group)", planMaxGroups)
	case !(o.kafkaShare >= 0 && o.kafkaShare <= 1):
		return errors.New("--kafka-share must be between 0 and 1")
	case !(o.utilization > 0 && o.utilization <= 1):
		return errors.New("--target-utilization must be above 0 and at most 1")
	case o.calibrate <= 0:
		return errors.New("--calibrate must be positive")
	case !o.startServer && (o.serverPID <= 0 || o.dataDir == ""):
		return errors.New("calibrating against a running broker needs its --server-pid and --data-dir (on this machine), or use --start-server")
	}
	return nil
}

// planInputs echoes the workload, in the JSON's units.
type planInputs struct {
	Rate             float64 `json:"rate_per_sec"`
	Size             int     `json:"size_bytes"`
	RetentionSecs    float64 `json:"retention_seconds"`
	RetentionBytes   int64   `json:"retention_bytes_per_partition"`
	AMQPBacklogSecs  float64 `json:"amqp_backlog_seconds"`
	Replication      int     `json:"replication"`
	Groups           int     `json:"consumer_groups"`
	Consumers        int     `json:"consumers_per_group"`
	KafkaShare       float64 `json:"kafka_share"`
	Utilization      float64 `json:"target_utilization"`
	CalibrationSecs  float64 `json:"calibration_seconds_per_phase"`
	CPUs             int     `json:"cpus"`
	CalibrationNotes string  `json:"calibrated_against"`
}

// planAnswer is the plan. Derivation says, per field, how it was found.
type planAnswer struct {
	KafkaRate         float64 `json:"kafka_rate_per_sec"`
	AMQPRate          float64 `json:"amqp_rate_per_sec"`
	KafkaDiskBytes    float64 `json:"kafka_disk_bytes"`
	AMQPDiskBytes     float64 `json:"amqp_disk_bytes"`
	DiskBytes         float64 `json:"disk_bytes"`
	WriteBytesPerSec  float64 `json:"write_bytes_per_sec"`
	DiskWriteHeadroom float64 `json:"disk_write_headroom"`
	Partitions        int     `json:"partitions"`
	QueuesPerGroup    int     `json:"queues_per_group"`
	CPUCoresNeeded    float64 `json:"cpu_cores_needed"`
	CPUHeadroom       float64 `json:"cpu_headroom"`
	Headroom          float64 `json:"headroom"`
	// CPUSecsPerRecord is the full-speed cost of a record of the mix,
	// behind CapacityPerSec.
	CPUSecsPerRecord       float64 `json:"cpu_seconds_per_record_full_speed"`
	CapacityPerSec         float64 `json:"capacity_per_sec"`
	CapacityLowPerSec      float64 `json:"capacity_low_per_sec"`
	AckLatencyFloorMs      float64 `json:"ack_latency_floor_ms"`
	KafkaAckP50Ms          float64 `json:"kafka_ack_p50_ms,omitempty"`
	KafkaAckP99Ms          float64 `json:"kafka_ack_p99_ms,omitempty"`
	AMQPConfirmP50Ms       float64 `json:"amqp_confirm_p50_ms,omitempty"`
	AMQPConfirmP99Ms       float64 `json:"amqp_confirm_p99_ms,omitempty"`
	ReplicationExplanation string  `json:"replication_note,omitempty"`
}

type planResult struct {
	Inputs      planInputs        `json:"inputs"`
	Calibration planCalibration   `json:"calibration"`
	Answer      planAnswer        `json:"answer"`
	Derivation  map[string]string `json:"derivation"`
}

func runPlan(ctx context.Context, cf *clientFlags, o planOptions, stdout, stderr io.Writer) error {
	if o.amqpBacklog == 0 {
		o.amqpBacklog = o.retention
	}
	if err := o.validate(); err != nil {
		return err
	}
	cal, err := calibrate(ctx, cf, o, stderr)
	if err != nil {
		return err
	}
	res := planFrom(o, cal)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printPlan(stdout, res)
	return nil
}

// planPartitions is enough partitions that each runs at most at
// util of what one partition was measured to take at full speed
// (the lower of produce and consume), and one per consumer of a group.
func planPartitions(rate float64, k *planProtocolCal, consumers int, util float64) int {
	return max(int(math.Ceil(rate/(util*math.Min(k.ProduceRate, k.ConsumeRate)))), consumers)
}

// atRateNote says at what rate a figure was measured.
func atRateNote(p *planAtRate, util float64) string {
	if p.Capped {
		return fmt.Sprintf("measured at %.0f/s, the most this machine was offered (target_utilization %.0f%% of its full speed)", p.Target, util*100)
	}
	if p.TooSlow {
		return fmt.Sprintf("measured offering the planned %.0f/s, of which this machine took %.0f/s", p.Target, p.Achieved)
	}
	return fmt.Sprintf("measured at the planned %.0f/s", p.Target)
}

// planFrom derives the answer from the inputs and the measurements; it
// does no I/O, so that its arithmetic is tested on its own.
func planFrom(o planOptions, cal planCalibration) planResult {
	in := planInputs{
		Rate: o.rate, Size: o.size, RetentionSecs: o.retention.Seconds(), RetentionBytes: o.retentionBytes,
		AMQPBacklogSecs: o.amqpBacklog.Seconds(), Replication: o.replication, Groups: o.groups,
		Consumers: o.consumers, KafkaShare: o.kafkaShare, Utilization: o.utilization, CalibrationSecs: o.calibrate.Seconds(),
		CPUs: cal.CPUs, CalibrationNotes: cal.Against,
	}
	d := map[string]string{}
	var a planAnswer
	size, R, G := float64(o.size), float64(o.replication), float64(o.groups)
	a.KafkaRate, a.AMQPRate = o.rate*o.kafkaShare, o.rate*(1-o.kafkaShare)
	d["kafka_rate_per_sec"] = "input: rate × kafka_share"
	d["amqp_rate_per_sec"] = "input: rate × (1 − kafka_share)"
	k, q := cal.Kafka, cal.AMQP
	if a.KafkaRate == 0 {
		k = nil
	}
	if a.AMQPRate == 0 {
		q = nil
	}

	if k != nil {
		a.Partitions = planPartitions(a.KafkaRate, k, o.consumers, o.utilization)
		d["partitions"] = fmt.Sprintf("max(⌈kafka_rate / (target_utilization × min(measured full-speed produce, consume records/s of one partition) = %.0f)⌉, consumers per group)", math.Min(k.ProduceRate, k.ConsumeRate))
	}
	if q != nil {
		perQueue := math.Min(q.ProduceRate, q.ConsumeRate)
		a.QueuesPerGroup = max(1, int(math.Ceil(a.AMQPRate/(o.utilization*perQueue))))
		d["queues_per_group"] = fmt.Sprintf("⌈amqp_rate / (target_utilization × min(measured full-speed publish, consume messages/s of one queue) = %.0f)⌉", perQueue)
	}

	// Disk: a topic keeps its data for the retention, once for all its
	// groups; every AMQP queue (one per group) keeps its own copy until
	// it is acked, for at most the backlog to absorb. The bytes per
	// payload byte are those measured at the planned rate, whose batches
	// are the ones the disk will see.
	var perRecBytes, fullCPU, cores float64
	if k != nil {
		a.KafkaDiskBytes = a.KafkaRate * size * o.retention.Seconds() * k.AtRate.DiskOverhead * R
		d["kafka_disk_bytes"] = "kafka_rate × size × retention × disk_overhead (" + atRateNote(k.AtRate, o.utilization) + ") × replication"
		if o.retentionBytes > 0 {
			if cap := float64(o.retentionBytes) * float64(a.Partitions) * R; cap < a.KafkaDiskBytes {
				a.KafkaDiskBytes = cap
				d["kafka_disk_bytes"] = "retention_bytes × partitions × replication (less than kafka_rate × size × retention × measured disk_overhead × replication)"
			}
		}
		perRecBytes += o.kafkaShare * size * k.AtRate.DiskOverhead
		fullCPU += o.kafkaShare * (k.ProduceCPU + G*k.ConsumeCPU)
		cores += a.KafkaRate * k.AtRate.CPUPerRecord
		a.KafkaAckP50Ms, a.KafkaAckP99Ms = k.AtRate.AckP50Ms, k.AtRate.AckP99Ms
		d["kafka_ack_p50_ms"] = "acks=all produce latency, " + atRateNote(k.AtRate, o.utilization)
	}
	if q != nil {
		a.AMQPDiskBytes = a.AMQPRate * size * o.amqpBacklog.Seconds() * q.AtRate.DiskOverhead * G * R
		d["amqp_disk_bytes"] = "amqp_rate × size × amqp_backlog × disk_overhead per queue copy (" + atRateNote(q.AtRate, o.utilization) + ") × consumer_groups (a queue each) × replication"
		perRecBytes += (1 - o.kafkaShare) * size * q.AtRate.DiskOverhead * G
		fullCPU += (1 - o.kafkaShare) * G * (q.ProduceCPU + q.ConsumeCPU)
		cores += a.AMQPRate * q.AtRate.CPUPerRecord
		a.AMQPConfirmP50Ms, a.AMQPConfirmP99Ms = q.AtRate.AckP50Ms, q.AtRate.AckP99Ms
		d["amqp_confirm_p50_ms"] = "publisher-confirm latency of persistent messages, " + atRateNote(q.AtRate, o.utilization)
	}
	a.DiskBytes = a.KafkaDiskBytes + a.AMQPDiskBytes
	d["disk_bytes"] = "kafka_disk_bytes + amqp_disk_bytes"

	// Writes: every byte is written once per copy, and the probe measured
	// what this disk takes with an fsync after each 1 MiB.
	a.WriteBytesPerSec = o.rate * perRecBytes * R
	d["write_bytes_per_sec"] = "rate × (kafka_share × size × kafka disk_overhead + (1 − kafka_share) × size × amqp disk_overhead × consumer_groups) × replication"
	a.DiskWriteHeadroom = 1 - a.WriteBytesPerSec/cal.Fsync.BandwidthBytesPerSec
	d["disk_write_headroom"] = fmt.Sprintf("1 − write_bytes_per_sec / measured fsync bandwidth (%.0f bytes/s)", cal.Fsync.BandwidthBytesPerSec)

	// CPU at the planned rate: the broker's CPU per record measured while
	// the workload ran at that rate with its consumer groups reading.
	a.CPUCoresNeeded = cores
	d["cpu_cores_needed"] = "kafka_rate × kafka CPU per record + amqp_rate × amqp CPU per message, each measured at its rate with a consumer per group (per-protocol notes: calibration.*.at_rate)"
	a.CPUHeadroom = 1 - a.CPUCoresNeeded/float64(cal.CPUs)
	d["cpu_headroom"] = fmt.Sprintf("1 − cpu_cores_needed / cores of this machine (%d, measured)", cal.CPUs)
	a.Headroom = math.Min(a.CPUHeadroom, a.DiskWriteHeadroom)
	d["headroom"] = "min(cpu_headroom, disk_write_headroom): what is left of this machine at the planned rate (negative: the rate is above what it takes)"
	// A calibration that could not run the workload at its rate showed
	// the machine short of it, whatever the arithmetic says.
	for _, x := range []struct {
		p       *planProtocolCal
		planned float64
	}{{k, a.KafkaRate}, {q, a.AMQPRate}} {
		if x.p != nil && (x.p.AtRate.TooSlow || x.p.AtRate.Capped) {
			short := 1 - x.planned/x.p.AtRate.Achieved
			if short < a.Headroom {
				a.Headroom = short
				d["headroom"] = fmt.Sprintf("1 − planned %s rate / the %.0f/s it took in the at-rate phase (the lower of that and min(cpu_headroom, disk_write_headroom))", x.p.Protocol, x.p.AtRate.Achieved)
			}
		}
	}

	// Capacity: the rate of this mix at which the first of CPU (at the
	// full-speed cost per record, the cheapest) and disk writes runs out.
	a.CPUSecsPerRecord = fullCPU
	d["cpu_seconds_per_record_full_speed"] = "kafka_share × (full-speed produce CPU + consumer_groups × full-speed consume CPU) + (1 − kafka_share) × consumer_groups × (full-speed publish CPU + full-speed consume CPU)"
	cpuCap, diskCap := math.Inf(1), math.Inf(1)
	if fullCPU > 0 {
		cpuCap = float64(cal.CPUs) / fullCPU
	}
	if perRecBytes > 0 {
		diskCap = cal.Fsync.BandwidthBytesPerSec / (perRecBytes * R)
	}
	a.CapacityPerSec = math.Min(cpuCap, diskCap)
	limit := "CPU"
	if diskCap < cpuCap {
		limit = "disk writes"
	}
	d["capacity_per_sec"] = fmt.Sprintf("min(cores / cpu_seconds_per_record_full_speed = %.0f, fsync bandwidth / (bytes written per record × replication) = %.0f): %s limit first", cpuCap, diskCap, limit)
	// The same at the cost per record measured at the planned rate: a
	// lower bound, since a record gets cheaper as batches grow with the
	// rate.
	a.CapacityLowPerSec = diskCap
	if cores > 0 {
		a.CapacityLowPerSec = math.Min(float64(cal.CPUs)/(cores/o.rate), diskCap)
	}
	d["capacity_low_per_sec"] = "min(cores / (cpu_cores_needed / rate), the same disk limit): capacity at the CPU cost per record measured at the planned rate, a lower bound"
	a.AckLatencyFloorMs = cal.Fsync.SmallP50Ms
	d["ack_latency_floor_ms"] = "measured p50 of a small write + fsync in the data directory: no acks=all answer or publisher confirm comes sooner"
	if o.replication > 1 {
		a.ReplicationExplanation = fmt.Sprintf("Sluice runs on one node today and keeps one copy. With a cluster, each of the %d replicas of a partition or quorum queue is on its own node: disk_bytes and write_bytes_per_sec are cluster totals, a node holding a replica of everything needs this machine's share of them, and the headrooms here are for one node carrying every copy (a lower bound). The calibration measured one copy: replication's network and follower CPU are not in it.", o.replication)
	}
	return planResult{Inputs: in, Calibration: cal, Answer: a, Derivation: d}
}

func printPlan(w io.Writer, r planResult) {
	in, c, a, d := r.Inputs, r.Calibration, r.Answer, r.Derivation
	fmt.Fprintf(w, "Workload (inputs): %.0f msg/s of %d B, retention %v, %d consumer group(s) of %d, replication %d, %.0f%% Kafka / %.0f%% AMQP\n",
		in.Rate, in.Size, time.Duration(in.RetentionSecs*float64(time.Second)), in.Groups, in.Consumers, in.Replication, in.KafkaShare*100, (1-in.KafkaShare)*100)
	fmt.Fprintf(w, "Calibrated against %s, %v per phase, %d CPUs\n\n", c.Against, time.Duration(in.CalibrationSecs*float64(time.Second)), c.CPUs)
	fmt.Fprintln(w, "Measured:")
	fmt.Fprintf(w, "  disk (%s): small write + fsync p50 %.2f ms, p99 %.2f ms; %s/s with an fsync per MiB\n",
		c.Fsync.Dir, c.Fsync.SmallP50Ms, c.Fsync.SmallP99Ms, fmtMiB(int64(c.Fsync.BandwidthBytesPerSec)))
	for _, p := range []*planProtocolCal{c.Kafka, c.AMQP} {
		if p == nil {
			continue
		}
		fmt.Fprintf(w, "  %s at full speed: one %s takes %.0f/s produced, %.0f/s consumed; broker CPU %.1f µs per record produced, %.1f µs consumed\n",
			p.Protocol, p.unit(), p.ProduceRate, p.ConsumeRate, p.ProduceCPU*1e6, p.ConsumeCPU*1e6)
		if r := p.AtRate; r != nil {
			capped := ""
			switch {
			case r.Capped:
				capped = " (capped: the planned rate is above this machine's)"
			case r.TooSlow:
				capped = fmt.Sprintf(" (offered; it took %.0f/s)", r.Achieved)
			}
			fmt.Fprintf(w, "  %s at %.0f/s%s, %d %s(s), %d consumer(s): broker CPU %.1f µs per record, disk %.3f bytes per payload byte, acks p50 %.2f ms p99 %.2f ms\n",
				p.Protocol, r.Target, capped, r.Partitions, p.unit(), r.Consumers, r.CPUPerRecord*1e6, r.DiskOverhead, r.AckP50Ms, r.AckP99Ms)
		}
	}
	fmt.Fprintln(w, "\nAnswer:")
	line := func(name, val string) { fmt.Fprintf(w, "  %-22s %-14s %s\n", name, val, d[jsonName(name)]) }
	if a.KafkaRate > 0 {
		line("partitions", strconv.Itoa(a.Partitions))
	}
	if a.AMQPRate > 0 {
		line("queues per group", strconv.Itoa(a.QueuesPerGroup))
	}
	line("disk", fmtBytes(a.DiskBytes))
	line("writes", fmtBytes(a.WriteBytesPerSec)+"/s")
	line("disk write headroom", pct(a.DiskWriteHeadroom))
	line("cpu cores needed", fmt.Sprintf("%.2f", a.CPUCoresNeeded))
	line("cpu headroom", pct(a.CPUHeadroom))
	line("headroom", pct(a.Headroom))
	line("capacity", fmt.Sprintf("%.0f msg/s", a.CapacityPerSec))
	line("capacity, low", fmt.Sprintf("%.0f msg/s", a.CapacityLowPerSec))
	if a.KafkaRate > 0 {
		line("kafka ack p50", fmt.Sprintf("%.2f ms", a.KafkaAckP50Ms))
	}
	if a.AMQPRate > 0 {
		line("amqp confirm p50", fmt.Sprintf("%.2f ms", a.AMQPConfirmP50Ms))
	}
	line("ack latency floor", fmt.Sprintf("%.2f ms", a.AckLatencyFloorMs))
	if a.Headroom < 0 {
		fmt.Fprintf(w, "\nThe rate is above what this machine takes: headroom %s; at full speed it takes %.0f msg/s of this mix (%s).\n", pct(a.Headroom), a.CapacityPerSec, d["capacity_per_sec"])
	}
	if a.ReplicationExplanation != "" {
		fmt.Fprintf(w, "\nReplication: %s\n", a.ReplicationExplanation)
	}
}

// jsonName maps a text row's name to its JSON field for the derivation.
func jsonName(row string) string {
	switch row {
	case "disk":
		return "disk_bytes"
	case "writes":
		return "write_bytes_per_sec"
	case "capacity":
		return "capacity_per_sec"
	case "capacity, low":
		return "capacity_low_per_sec"
	case "ack latency floor":
		return "ack_latency_floor_ms"
	case "kafka ack p50":
		return "kafka_ack_p50_ms"
	case "amqp confirm p50":
		return "amqp_confirm_p50_ms"
	}
	return strings.ReplaceAll(row, " ", "_")
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func fmtBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
