package cli

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// A calibration with round numbers: the plan's arithmetic by hand.
func testCalibration() planCalibration {
	return planCalibration{
		Against: "test", CPUs: 4,
		Fsync: planFsyncCal{SmallP50Ms: 0.5, BandwidthBytesPerSec: 100e6},
		Kafka: &planProtocolCal{Protocol: "kafka", ProduceRate: 50000, ConsumeRate: 80000, ProduceCPU: 10e-6, ConsumeCPU: 5e-6, DiskOverhead: 1.05,
			AtRate: &planAtRate{Target: 50000, Achieved: 49900, CPUPerRecord: 30e-6, DiskOverhead: 1.1}},
		AMQP: &planProtocolCal{Protocol: "amqp", ProduceRate: 20000, ConsumeRate: 25000, ProduceCPU: 20e-6, ConsumeCPU: 10e-6, DiskOverhead: 1.15,
			AtRate: &planAtRate{Target: 45000, Capped: true, Achieved: 45000, CPUPerRecord: 50e-6, DiskOverhead: 1.2}},
	}
}

func TestPlanArithmetic(t *testing.T) {
	o := planOptions{rate: 100000, size: 1000, retention: time.Hour, amqpBacklog: 10 * time.Second,
		replication: 1, groups: 2, consumers: 1, kafkaShare: 0.5, utilization: 1, calibrate: time.Second}
	a := planFrom(o, testCalibration()).Answer
	eq := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// 50,000/s over Kafka, one partition carries 50,000/s.
	if a.Partitions != 1 {
		t.Errorf("partitions %d, want 1", a.Partitions)
	}
	// 50,000/s over AMQP, a queue carries 20,000/s: 3 per group.
	if a.QueuesPerGroup != 3 {
		t.Errorf("queues per group %d, want 3", a.QueuesPerGroup)
	}
	eq("kafka disk", a.KafkaDiskBytes, 50000*1000*3600*1.1)
	eq("amqp disk", a.AMQPDiskBytes, 50000*1000*10*1.2*2)
	eq("writes", a.WriteBytesPerSec, 50000*1000*1.1+50000*1000*1.2*2)
	// At the planned rates: 50,000 × 30 µs + 50,000 × 50 µs = 4 cores.
	eq("cores", a.CPUCoresNeeded, 4)
	eq("cpu headroom", a.CPUHeadroom, 0)
	// 175 MB/s to write against 100 MB/s.
	eq("disk write headroom", a.DiskWriteHeadroom, 1-175e6/100e6)
	eq("headroom", a.Headroom, 1-175e6/100e6)
	// Full speed, per record: 0.5 × (10 + 2×5) µs + 0.5 × 2 × (20 + 10) µs
	// = 40 µs; 4 cores / 40 µs = 100,000/s. Disk: 1,750 bytes written per
	// record against 100 MB/s: 57,142/s. The disk runs out first.
	eq("cpu per record", a.CPUSecsPerRecord, 40e-6)
	eq("capacity", a.CapacityPerSec, 100e6/1750)
	// At the planned rate's cost, 40 µs per record too (4 cores for
	// 100,000/s): 100,000/s, the disk still first.
	eq("capacity, low", a.CapacityLowPerSec, 100e6/1750)

	// A machine that took only half the planned Kafka rate has no
	// headroom left, whatever the arithmetic: 1 − 50,000 / 25,000.
	cal := testCalibration()
	cal.Kafka.AtRate.Achieved, cal.Kafka.AtRate.TooSlow = 25000, true
	if r := planFrom(o, cal); r.Answer.Headroom != -1 || !strings.Contains(r.Derivation["headroom"], "25000/s it took") {
		t.Errorf("headroom %v (%s), want -1 from the rate the machine took", r.Answer.Headroom, r.Derivation["headroom"])
	}

	// At half of what was measured, 50,000/s needs two partitions and
	// five queues per group.
	o.utilization = 0.5
	if a := planFrom(o, testCalibration()).Answer; a.Partitions != 2 || a.QueuesPerGroup != 5 {
		t.Errorf("at 50%%: %d partitions, %d queues per group; want 2 and 5", a.Partitions, a.QueuesPerGroup)
	}
	o.utilization = 1

	var out bytes.Buffer
	printPlan(&out, planFrom(o, testCalibration()))
	for _, want := range []string{"partitions", "queues per group", "disk writes limit first", "above what this machine takes", "capped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPlanReplicationAndRetentionBytes(t *testing.T) {
	o := planOptions{rate: 1000, size: 1000, retention: 24 * time.Hour, retentionBytes: 1 << 20,
		replication: 3, groups: 1, consumers: 4, kafkaShare: 1, utilization: 0.9, calibrate: time.Second}
	r := planFrom(o, testCalibration())
	a := r.Answer
	if a.Partitions != 4 {
		t.Errorf("partitions %d, want 4 (one per consumer)", a.Partitions)
	}
	if want := float64(1<<20) * 4 * 3; a.DiskBytes != want {
		t.Errorf("disk %v, want retention.bytes × 4 partitions × 3 copies = %v", a.DiskBytes, want)
	}
	if a.ReplicationExplanation == "" || !strings.Contains(r.Derivation["kafka_disk_bytes"], "retention_bytes") {
		t.Errorf("replication note %q, derivation %q", a.ReplicationExplanation, r.Derivation["kafka_disk_bytes"])
	}
}

func TestDaysDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute} {
		var d daysDuration
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("%q: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	var d daysDuration
	if d.Set("xd") == nil || d.Set("7") == nil {
		t.Error("bad durations accepted")
	}
}
