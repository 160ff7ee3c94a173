package test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompactionBenchmark measures, for docs/benchmarks.md, only when
// SLUICE_COMPACTION_BENCH=1: the disk's fsync'd sequential write bandwidth
// (fio, 1 MiB writes with an fsync after each; dd oflag=dsync without
// fio), the cleaner's throughput (bytes read per second of a pass)
// unthrottled and at the default 32 MiB/s budget, and the produce ack p99
// of `sluice bench kafka --rate 5000` without the cleaner, while it runs
// (the bytes it read meanwhile, from /metrics, show that it did) and
// after it, with the ratio the bar (at most 2x) is about.
// SLUICE_COMPACTION_BENCH_MB sizes the compacted topic (default 512).
func TestCompactionBenchmark(t *testing.T) {
	if os.Getenv("SLUICE_COMPACTION_BENCH") == "" {
		t.Skip("set SLUICE_COMPACTION_BENCH=1 to run")
	}
	mb := envInt(t, "SLUICE_COMPACTION_BENCH_MB", 512)

	t.Logf("disk: %s", diskBandwidth(t))

	b := startBroker(t, "--cleaner-interval=1h", "--log-level=info")
	base := b.extra
	fill := func(topic string) {
		seg := "67108864"
		b.createTopic(t, topic, 1, map[string]*string{"cleanup.policy": strPtr("compact"), "segment.bytes": &seg})
		prod := b.client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
		value := make([]byte, 1024)
		n := mb << 10
		began := time.Now()
		for i := range n {
			rand.Read(value[:16])
			prod.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%10000)), Value: append([]byte(nil), value...)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := prod.Flush(ctxT(t, 10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 900<<10)
		rand.Read(big)
		produceSync(t, prod, &kgo.Record{Topic: topic, Key: []byte("roll"), Value: big})
		t.Logf("filled %s: %d records of 1 KiB over 10,000 keys in %v", topic, n, time.Since(began))
	}
	passRe := regexp.MustCompile(`"msg":"log cleaner pass","topic":"([^"]+)".*"read_bytes":(\d+).*"took_ms":(\d+)`)
	waitPass := func(topic string) string {
		var line string
		waitFor(t, 15*time.Minute, "a cleaner pass over "+topic, func() bool {
			for _, m := range passRe.FindAllStringSubmatch(b.Logs(), -1) {
				if m[1] == topic {
					var read, took float64
					fmt.Sscan(m[2], &read)
					fmt.Sscan(m[3], &took)
					line = fmt.Sprintf("%s: read %.0f MB in %.1f s: %.1f MB/s", topic, read/1e6, took/1e3, read/1e6/(took/1e3))
					return true
				}
			}
			return false
		})
		return line
	}
	benchP99 := func(topic string) (float64, string) {
		// Write back what the fills left in the page cache first, so that
		// it does not land in the fsyncs being measured.
		if err := exec.Command("sync").Run(); err != nil {
			t.Fatal(err)
		}
		out := mustCLIArgs(t, b, 3*time.Minute, "bench", "kafka", "--rate", "5000", "--duration", "20s",
			"--topic", topic, "--partitions", "1", "--consumers", "0", "--json")
		var r struct {
			Acked int64 `json:"acked"`
			Ack   struct {
				P50 float64 `json:"p50_ms"`
				P99 float64 `json:"p99_ms"`
			} `json:"ack_latency"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench output %q: %v", out, err)
		}
		return r.Ack.P99, fmt.Sprintf("acked %d, ack p50 %.2f ms, p99 %.2f ms", r.Acked, r.Ack.P50, r.Ack.P99)
	}

	cleanerRead := func() float64 {
		v, _ := b.scrape(t).value("sluice_log_cleaner_bytes_read_total")
		return v
	}

	fill("cb1")
	fill("cb2")
	without, withoutLine := benchP99("plain1")
	t.Logf("produce without the cleaner: %s", withoutLine)

	// The default budget, with the bench running beside it.
	b.Stop()
	b.extra = append(append([]string(nil), base...), "--cleaner-interval=500ms", "--cleaner-bytes-per-second=33554432")
	b.Restart()
	waitFor(t, time.Minute, "the cleaner to start reading", func() bool { return cleanerRead() > 0 })
	readBefore, began := cleanerRead(), time.Now()
	with, withLine := benchP99("plain2")
	readDuring, took := cleanerRead()-readBefore, time.Since(began)
	stillCleaning := !strings.Contains(b.Logs(), `"topic":"cb2"`) || !strings.Contains(b.Logs(), `"topic":"cb1"`)
	t.Logf("produce while the cleaner runs (32 MiB/s budget; it read %.0f MB during the run, %.1f MB/s; still cleaning at the end: %v): %s",
		readDuring/1e6, readDuring/1e6/took.Seconds(), stillCleaning, withLine)
	t.Logf("throttled pass %s", waitPass("cb1"))
	t.Logf("throttled pass %s", waitPass("cb2"))
	again, againLine := benchP99("plain3")
	t.Logf("produce without the cleaner (again, after it): %s", againLine)
	t.Logf("produce ack p99 with the cleaner / without: %.2f ms / %.2f ms (and %.2f ms after) = %.2fx (bar: at most 2x)",
		with, without, again, with/without)

	// Unthrottled, on data to clean again.
	b.Stop()
	b.extra = append(append([]string(nil), base...), "--cleaner-interval=1h")
	b.Restart()
	fill("cb3")
	b.Stop()
	b.extra = append(append([]string(nil), base...), "--cleaner-interval=500ms", "--cleaner-bytes-per-second=-1")
	b.Restart()
	t.Logf("unthrottled pass %s", waitPass("cb3"))
}

// diskBandwidth measures the fsync'd sequential write bandwidth of the
// test's temporary directory: fio (1 MiB writes, an fsync after each) if
// installed, else dd oflag=dsync.
func diskBandwidth(t *testing.T) string {
	dir := t.TempDir()
	if fio, err := exec.LookPath("fio"); err == nil {
		out, err := exec.Command(fio, "--name=seqsync", "--directory="+dir, "--rw=write", "--bs=1M", "--size=256M",
			"--fsync=1", "--ioengine=psync", "--output-format=json").Output()
		if err != nil {
			t.Fatalf("fio: %v\n%s", err, out)
		}
		var r struct {
			Jobs []struct {
				Write struct {
					BW float64 `json:"bw"` // KiB/s
				} `json:"write"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal(out, &r); err != nil || len(r.Jobs) == 0 {
			t.Fatalf("fio output: %v\n%s", err, out)
		}
		return fmt.Sprintf("fio sequential 1 MiB writes, fsync after each: %.1f MB/s", r.Jobs[0].Write.BW*1024/1e6)
	}
	out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(dir, "dd.bin"), "bs=1M", "count=256", "oflag=dsync").CombinedOutput()
	if err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	return "dd oflag=dsync bs=1M: " + strings.TrimSpace(lastLine(string(out)))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// mustCLIArgs runs the sluice CLI against b with a timeout.
func mustCLIArgs(t *testing.T, b *broker, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, append(args, "--brokers", b.Kafka)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
