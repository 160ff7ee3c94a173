package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// planJSON is the part of sluice plan --json the tests check.
type planJSON struct {
	Inputs struct {
		Rate        float64 `json:"rate_per_sec"`
		Size        float64 `json:"size_bytes"`
		Retention   float64 `json:"retention_seconds"`
		Backlog     float64 `json:"amqp_backlog_seconds"`
		Replication float64 `json:"replication"`
		Groups      float64 `json:"consumer_groups"`
		KafkaShare  float64 `json:"kafka_share"`
		Utilization float64 `json:"target_utilization"`
		CPUs        float64 `json:"cpus"`
	} `json:"inputs"`
	Calibration struct {
		Fsync struct {
			P50       float64 `json:"small_p50_ms"`
			Bandwidth float64 `json:"bandwidth_bytes_per_sec"`
		} `json:"fsync"`
		Kafka *planProtoJSON `json:"kafka"`
		AMQP  *planProtoJSON `json:"amqp"`
	} `json:"calibration"`
	Answer struct {
		KafkaDisk       float64 `json:"kafka_disk_bytes"`
		AMQPDisk        float64 `json:"amqp_disk_bytes"`
		Disk            float64 `json:"disk_bytes"`
		Writes          float64 `json:"write_bytes_per_sec"`
		WriteHeadroom   float64 `json:"disk_write_headroom"`
		Partitions      int     `json:"partitions"`
		QueuesPerGroup  int     `json:"queues_per_group"`
		CPUPerRecord    float64 `json:"cpu_seconds_per_record_full_speed"`
		Cores           float64 `json:"cpu_cores_needed"`
		CPUHeadroom     float64 `json:"cpu_headroom"`
		Capacity        float64 `json:"capacity_per_sec"`
		CapacityLow     float64 `json:"capacity_low_per_sec"`
		Headroom        float64 `json:"headroom"`
		AckFloor        float64 `json:"ack_latency_floor_ms"`
		KafkaAckP50     float64 `json:"kafka_ack_p50_ms"`
		AMQPConfirmP50  float64 `json:"amqp_confirm_p50_ms"`
		ReplicationNote string  `json:"replication_note"`
	} `json:"answer"`
	Derivation map[string]string `json:"derivation"`
}

type planProtoJSON struct {
	Produced     float64         `json:"produced"`
	ProduceRate  float64         `json:"produce_per_sec"`
	ProduceCPU   float64         `json:"produce_cpu_seconds_per_record"`
	DiskGrowth   float64         `json:"disk_growth_bytes"`
	DiskOverhead float64         `json:"disk_overhead"`
	Consumed     float64         `json:"consumed"`
	ConsumeRate  float64         `json:"consume_per_sec"`
	ConsumeCPU   float64         `json:"consume_cpu_seconds_per_record"`
	AtRate       *planAtRateJSON `json:"at_rate"`
}

type planAtRateJSON struct {
	Target       float64 `json:"target_per_sec"`
	Capped       bool    `json:"capped"`
	FellBehind   bool    `json:"fell_behind"`
	Partitions   int     `json:"partitions_or_queues"`
	Consumers    int     `json:"consumers"`
	Records      float64 `json:"records"`
	Consumed     float64 `json:"consumed"`
	CPUPerRecord float64 `json:"cpu_seconds_per_record"`
	DiskGrowth   float64 `json:"disk_growth_bytes"`
	DiskOverhead float64 `json:"disk_overhead"`
	AckP50       float64 `json:"ack_p50_ms"`
	Achieved     float64 `json:"achieved_per_sec"`
}

func runPlan(t *testing.T, args ...string) planJSON {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, append([]string{"plan", "--calibrate", "1s", "--json"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("sluice plan %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	var p planJSON
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("sluice plan printed no JSON: %v\n%s", err, out.String())
	}
	return p
}

// near is a == b up to floating-point rounding.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// checkMeasured: every measurement the answer rests on is there and
// positive, and the storage overhead is the data directory's growth per
// payload byte (uncompressed payloads cannot take less than themselves);
// the at-rate phase offered the planned rate (or, capped, less), and each
// of its groups' consumers read every record.
func checkMeasured(t *testing.T, name string, c *planProtoJSON, size, planned float64, groups int) {
	t.Helper()
	if c == nil {
		t.Fatalf("%s: no calibration", name)
	}
	for what, v := range map[string]float64{
		"produced": c.Produced, "produce rate": c.ProduceRate, "produce CPU": c.ProduceCPU,
		"consumed": c.Consumed, "consume rate": c.ConsumeRate, "consume CPU": c.ConsumeCPU,
	} {
		if !(v > 0) {
			t.Errorf("%s: %s is %v, want > 0", name, what, v)
		}
	}
	if c.Consumed < c.Produced {
		t.Errorf("%s: consumed %v of %v produced", name, c.Consumed, c.Produced)
	}
	if !near(c.DiskOverhead, c.DiskGrowth/(c.Produced*size)) || c.DiskOverhead < 1 {
		t.Errorf("%s: disk overhead %v, growth %v for %v records of %v bytes", name, c.DiskOverhead, c.DiskGrowth, c.Produced, size)
	}
	r := c.AtRate
	if r == nil {
		t.Fatalf("%s: no at-rate phase", name)
	}
	if r.Capped != (r.Target < planned) || r.Target > planned || r.Consumers != groups {
		t.Errorf("%s at rate: target %v (capped %v) for %v planned, %d consumers for %d groups", name, r.Target, r.Capped, planned, r.Consumers, groups)
	}
	copies := 1.0
	if name == "amqp" {
		copies = float64(groups) // a queue per group
	}
	if !(r.Records > 0 && r.CPUPerRecord > 0 && r.AckP50 > 0) || r.Consumed != r.Records*float64(groups) ||
		!near(r.DiskOverhead, r.DiskGrowth/(r.Records*size*copies)) || r.DiskOverhead < 1 {
		t.Errorf("%s at rate: %+v", name, *r)
	}
}

// sluice plan against a running broker (its addresses, pid and data
// directory), half Kafka and half AMQP: the answer's accounting follows
// from the inputs and the measurements, and a modest rate has headroom.
func TestCLIPlanAccounting(t *testing.T) {
	b := startBroker(t)
	const rate, size, groups, consumers = 2000.0, 512.0, 2, 3
	p := runPlan(t, "--rate", fmt.Sprint(rate), "--size", fmt.Sprint(size), "--retention", "2d", "--amqp-backlog", "1h",
		"--consumer-groups", fmt.Sprint(groups), "--consumers", fmt.Sprint(consumers), "--kafka-share", "0.5",
		"--brokers", b.Kafka, "--url", b.amqpURL(), "--server-pid", fmt.Sprint(b.cmd.Process.Pid), "--data-dir", b.DataDir)
	c, a := p.Calibration, p.Answer
	if !(c.Fsync.P50 > 0 && c.Fsync.Bandwidth > 0 && p.Inputs.CPUs > 0) {
		t.Fatalf("disk probe or CPUs missing: %+v, cpus %v", c.Fsync, p.Inputs.CPUs)
	}
	checkMeasured(t, "kafka", c.Kafka, size, rate*0.5, groups)
	checkMeasured(t, "amqp", c.AMQP, size, rate*0.5, groups)
	if p.Inputs.Retention != 2*86400 || p.Inputs.Backlog != 3600 {
		t.Errorf("retention %v s, backlog %v s: want 172800 and 3600", p.Inputs.Retention, p.Inputs.Backlog)
	}

	// Disk: the topic keeps everything for the retention once; each
	// group's queue keeps its own copy for the backlog; bytes per payload
	// byte as measured at the planned rate.
	k, q := c.Kafka, c.AMQP
	kr, qr := k.AtRate, q.AtRate
	wantK := rate * 0.5 * size * 2 * 86400 * kr.DiskOverhead
	wantQ := rate * 0.5 * size * 3600 * qr.DiskOverhead * groups
	if !near(a.KafkaDisk, wantK) || !near(a.AMQPDisk, wantQ) || !near(a.Disk, wantK+wantQ) {
		t.Errorf("disk: kafka %v (want %v), amqp %v (want %v), total %v", a.KafkaDisk, wantK, a.AMQPDisk, wantQ, a.Disk)
	}
	wantW := rate * (0.5*size*kr.DiskOverhead + 0.5*size*qr.DiskOverhead*groups)
	if !near(a.Writes, wantW) || !near(a.WriteHeadroom, 1-wantW/c.Fsync.Bandwidth) {
		t.Errorf("writes %v/s (want %v), headroom %v", a.Writes, wantW, a.WriteHeadroom)
	}
	// CPU at the rate: what each protocol's records cost at its rate,
	// with its groups reading.
	wantCores := rate*0.5*kr.CPUPerRecord + rate*0.5*qr.CPUPerRecord
	if !near(a.Cores, wantCores) || !near(a.CPUHeadroom, 1-wantCores/p.Inputs.CPUs) {
		t.Errorf("cpu: %v cores (want %v), cpu headroom %v", a.Cores, wantCores, a.CPUHeadroom)
	}
	// Headroom: the lower of the two, and no more than what an at-rate
	// phase that fell behind took. A modest rate on a machine that is
	// not starved leaves some; a CI machine busy enough to starve the
	// broker for a second shows it in the accounting instead.
	wantHead := math.Min(a.CPUHeadroom, a.WriteHeadroom)
	for _, x := range []struct {
		r       *planAtRateJSON
		planned float64
	}{{kr, rate * 0.5}, {qr, rate * 0.5}} {
		if x.r.FellBehind || x.r.Capped {
			wantHead = math.Min(wantHead, 1-x.planned/x.r.Achieved)
		}
	}
	if !near(a.Headroom, wantHead) {
		t.Errorf("headroom %v, want %v", a.Headroom, wantHead)
	}
	if !kr.FellBehind && !qr.FellBehind && !(a.Headroom > 0) {
		t.Errorf("headroom %v at a modest rate the machine kept up with", a.Headroom)
	}
	// Capacity: at the full-speed cost, produce once and consume once per
	// group (AMQP: a copy per group's queue).
	wantCPU := 0.5*(k.ProduceCPU+groups*k.ConsumeCPU) + 0.5*groups*(q.ProduceCPU+q.ConsumeCPU)
	wantCap := math.Min(p.Inputs.CPUs/wantCPU, c.Fsync.Bandwidth/(wantW/rate))
	if !near(a.CPUPerRecord, wantCPU) || !near(a.Capacity, wantCap) || !(a.Capacity > rate) {
		t.Errorf("full speed: %v s/record (want %v), capacity %v (want %v)", a.CPUPerRecord, wantCPU, a.Capacity, wantCap)
	}
	if want := math.Min(p.Inputs.CPUs/(wantCores/rate), c.Fsync.Bandwidth/(wantW/rate)); !near(a.CapacityLow, want) {
		t.Errorf("capacity at the at-rate cost %v, want %v", a.CapacityLow, want)
	}
	if a.KafkaAckP50 != kr.AckP50 || a.AMQPConfirmP50 != qr.AckP50 {
		t.Errorf("ack latencies %v, %v: want the at-rate ones %v, %v", a.KafkaAckP50, a.AMQPConfirmP50, kr.AckP50, qr.AckP50)
	}
	// A modest rate: the partitions are set by the consumers of a group.
	if a.Partitions != consumers || a.QueuesPerGroup != 1 {
		t.Errorf("partitions %d (want %d), queues per group %d (want 1)", a.Partitions, consumers, a.QueuesPerGroup)
	}
	if a.AckFloor != c.Fsync.P50 || a.ReplicationNote != "" {
		t.Errorf("ack floor %v (fsync p50 %v), replication note %q", a.AckFloor, c.Fsync.P50, a.ReplicationNote)
	}
	for _, f := range []string{"disk_bytes", "kafka_disk_bytes", "amqp_disk_bytes", "partitions", "queues_per_group", "cpu_cores_needed", "capacity_per_sec", "headroom", "kafka_ack_p50_ms", "amqp_confirm_p50_ms"} {
		if p.Derivation[f] == "" {
			t.Errorf("no derivation for %s", f)
		}
	}
}

// sluice plan with a broker of its own: a rate far above what the machine
// measured reports negative headroom, replication multiplies the disk,
// and retention.bytes caps it per partition.
func TestCLIPlanOverCapacity(t *testing.T) {
	const rate, size, retBytes = 1e9, 1000.0, 1 << 30
	p := runPlan(t, "--start-server", "--rate", fmt.Sprint(rate), "--size", fmt.Sprint(size), "--retention", "1h",
		"--replication", "3", "--retention-bytes", fmt.Sprint(retBytes))
	a, k := p.Answer, p.Calibration.Kafka
	checkMeasured(t, "kafka", k, size, rate, 1)
	if !k.AtRate.Capped {
		t.Errorf("1e9 msg/s offered in full: %+v", *k.AtRate)
	}
	if p.Calibration.AMQP != nil || a.AMQPDisk != 0 {
		t.Errorf("an all-Kafka plan calibrated AMQP or gave it disk: %+v, %v", p.Calibration.AMQP, a.AMQPDisk)
	}
	if !(a.Headroom < 0) || !(a.Capacity < rate) || !(a.CPUHeadroom < 0) {
		t.Errorf("1e9 msg/s: capacity %v, headroom %v (cpu %v, disk writes %v): want negative", a.Capacity, a.Headroom, a.CPUHeadroom, a.WriteHeadroom)
	}
	perPart := math.Min(k.ProduceRate, k.ConsumeRate)
	if want := int(math.Ceil(rate / (p.Inputs.Utilization * perPart))); p.Inputs.Utilization != 0.9 || a.Partitions != want {
		t.Errorf("partitions %d, want ⌈%v / (%v × %v)⌉ = %d", a.Partitions, rate, p.Inputs.Utilization, perPart, want)
	}
	// An hour at 1e9 × 1000 B is far above 1 GiB per partition.
	if want := float64(retBytes) * float64(a.Partitions) * 3; !near(a.KafkaDisk, want) || !near(a.Disk, want) {
		t.Errorf("disk %v, want retention.bytes × partitions × replication = %v", a.Disk, want)
	}
	if want := rate * size * k.AtRate.DiskOverhead * 3; !near(a.Writes, want) {
		t.Errorf("writes %v/s, want %v (three copies)", a.Writes, want)
	}
	if !strings.Contains(a.ReplicationNote, "3 replicas") {
		t.Errorf("replication 3 without its note: %q", a.ReplicationNote)
	}
}
