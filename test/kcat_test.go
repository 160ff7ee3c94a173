package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const kcatPath = "/usr/bin/kcat"

// toolRun is the outcome of one run of a non-Go client.
type toolRun struct {
	Stdout, Stderr string
	Err            error // non-nil on a non-zero exit or a timeout
}

// runTool runs a client process to completion within timeout, feeding it
// stdin. It never hangs: the process is killed at the deadline and its
// pipes are abandoned shortly after.
func runTool(t testing.TB, timeout time.Duration, stdin string, name string, args ...string) toolRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v timeout: %w", timeout, err)
	}
	return toolRun{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// must fails the test with everything needed to diagnose a failed run:
// the command, its output and the server log.
func (r toolRun) must(t testing.TB, b *broker, what string) toolRun {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("%s: %v\n--- stdout:\n%s\n--- stderr:\n%s\n--- server log:\n%s", what, r.Err, clip(r.Stdout), clip(r.Stderr), clip(b.Logs()))
	}
	return r
}

// clip keeps the head and the tail of a long output, where the cause and
// the last state of a failure usually are.
func clip(s string) string {
	const head, tail = 3000, 5000
	if len(s) <= head+tail {
		return s
	}
	return s[:head] + fmt.Sprintf("\n[... %d bytes clipped ...]\n", len(s)-head-tail) + s[len(s)-tail:]
}

// kcat runs kcat against the broker with bounded client-side timeouts, so
// that a broker that never answers makes kcat fail rather than hang.
func (b *broker) kcat(t testing.TB, stdin string, args ...string) toolRun {
	t.Helper()
	base := []string{"-b", b.Kafka, "-m", "10",
		"-X", "socket.timeout.ms=10000", "-X", "message.timeout.ms=15000"}
	return runTool(t, 30*time.Second, stdin, kcatPath, append(base, args...)...)
}

// kcatJSONRecord is one record as `kcat -C -J` prints it. Headers are a
// flat name, value, name, value... list; a null key or value is JSON null.
type kcatJSONRecord struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp int64     `json:"ts"`
	Broker    int32     `json:"broker"`
	Headers   []*string `json:"headers"`
	Key       *string   `json:"key"`
	Payload   *string   `json:"payload"`
}

func TestKcatKeysValuesHeadersRoundTrip(t *testing.T) {
	needTool(t, kcatPath)
	b := startBroker(t)
	const topic = "kcat-kv"
	b.createTopic(t, topic, 2, nil)

	// Partition 0: keyed lines, two headers on every record. The key is
	// everything before the first ':', so values may hold more colons.
	p0 := []string{"alpha:one", "beta:two:with:colons", "gamma:héllo wörld ✓", "alpha:four"}
	b.kcat(t, strings.Join(p0, "\n")+"\n",
		"-P", "-t", topic, "-p", "0", "-K:", "-H", "trace=abc-123", "-H", "app=sluice").must(t, b, "kcat produce partition 0")
	// Partition 1: another header set (one empty value), then a tombstone:
	// with -Z an empty value is sent as null.
	p1 := []string{"k1:v1", "k2:v2"}
	b.kcat(t, strings.Join(p1, "\n")+"\n",
		"-P", "-t", topic, "-p", "1", "-K:", "-H", "only=one", "-H", "empty=").must(t, b, "kcat produce partition 1")
	b.kcat(t, "gone:\n", "-P", "-Z", "-t", topic, "-p", "1", "-K:").must(t, b, "kcat produce tombstone")

	// Formatted output, one partition at a time so the order is the log's.
	format := `%p|%o|%k|%s|%h\n`
	for _, tc := range []struct {
		partition string
		want      []string
	}{
		{"0", []string{
			"0|0|alpha|one|trace=abc-123,app=sluice",
			"0|1|beta|two:with:colons|trace=abc-123,app=sluice",
			"0|2|gamma|héllo wörld ✓|trace=abc-123,app=sluice",
			"0|3|alpha|four|trace=abc-123,app=sluice",
		}},
		{"1", []string{
			"1|0|k1|v1|only=one,empty=",
			"1|1|k2|v2|only=one,empty=",
			"1|2|gone||",
		}},
	} {
		r := b.kcat(t, "", "-C", "-t", topic, "-p", tc.partition, "-o", "beginning", "-e", "-f", format).must(t, b, "kcat consume partition "+tc.partition)
		if got := splitLines(r.Stdout); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Fatalf("partition %s consumed by kcat:\n%s\nwant:\n%s\n--- stderr:\n%s", tc.partition, clip(r.Stdout), strings.Join(tc.want, "\n"), clip(r.Stderr))
		}
	}

	// JSON output over the whole topic tells null apart from empty.
	r := b.kcat(t, "", "-C", "-t", topic, "-o", "beginning", "-e", "-J").must(t, b, "kcat consume -J")
	var recs []kcatJSONRecord
	for _, line := range splitLines(r.Stdout) {
		var rec kcatJSONRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("kcat -J line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	str := func(s string) *string { return &s }
	type want struct {
		partition      int32
		offset         int64
		key, value     *string
		headerNameVals []string
	}
	h0 := []string{"trace", "abc-123", "app", "sluice"}
	h1 := []string{"only", "one", "empty", ""}
	wants := []want{
		{0, 0, str("alpha"), str("one"), h0},
		{0, 1, str("beta"), str("two:with:colons"), h0},
		{0, 2, str("gamma"), str("héllo wörld ✓"), h0},
		{0, 3, str("alpha"), str("four"), h0},
		{1, 0, str("k1"), str("v1"), h1},
		{1, 1, str("k2"), str("v2"), h1},
		{1, 2, str("gone"), nil, nil},
	}
	if len(recs) != len(wants) {
		t.Fatalf("kcat -J printed %d records, want %d:\n%s\n--- stderr:\n%s", len(recs), len(wants), clip(r.Stdout), clip(r.Stderr))
	}
	show := func(s *string) string {
		if s == nil {
			return "null"
		}
		return fmt.Sprintf("%q", *s)
	}
	for i, w := range wants {
		g := recs[i]
		var headers []string
		for _, h := range g.Headers {
			if h == nil {
				t.Fatalf("record %d/%d: null header value, want none", g.Partition, g.Offset)
			}
			headers = append(headers, *h)
		}
		switch {
		case g.Topic != topic || g.Partition != w.partition || g.Offset != w.offset:
			t.Fatalf("record %d is %s/%d@%d, want %s/%d@%d", i, g.Topic, g.Partition, g.Offset, topic, w.partition, w.offset)
		case show(g.Key) != show(w.key) || show(g.Payload) != show(w.value):
			t.Fatalf("record %d/%d: key %s value %s, want key %s value %s", g.Partition, g.Offset, show(g.Key), show(g.Payload), show(w.key), show(w.value))
		case strings.Join(headers, "\x00") != strings.Join(w.headerNameVals, "\x00"):
			t.Fatalf("record %d/%d: headers %q, want %q", g.Partition, g.Offset, headers, w.headerNameVals)
		case g.Broker != 1:
			t.Fatalf("record %d/%d: fetched from broker %d, want 1", g.Partition, g.Offset, g.Broker)
		case g.Timestamp <= 0 || time.Since(time.UnixMilli(g.Timestamp)).Abs() > time.Hour:
			t.Fatalf("record %d/%d: timestamp %d is not about now", g.Partition, g.Offset, g.Timestamp)
		}
	}
}

// kcatMetadata is `kcat -L -J`.
type kcatMetadata struct {
	OriginatingBroker struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"originating_broker"`
	Brokers []struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"brokers"`
	Topics []struct {
		Topic      string `json:"topic"`
		Error      string `json:"error"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			Leader    int32  `json:"leader"`
			Error     string `json:"error"`
			Replicas  []struct {
				ID int32 `json:"id"`
			} `json:"replicas"`
			ISRs []struct {
				ID int32 `json:"id"`
			} `json:"isrs"`
		} `json:"partitions"`
	} `json:"topics"`
}

func TestKcatMetadataListsTopicsAndAdvertisedBroker(t *testing.T) {
	needTool(t, kcatPath)
	b := startBroker(t)
	b.createTopic(t, "kcat-meta-a", 3, nil)
	b.createTopic(t, "kcat-meta-b", 1, nil)

	r := b.kcat(t, "", "-L", "-J").must(t, b, "kcat -L -J")
	var md kcatMetadata
	if err := json.Unmarshal([]byte(r.Stdout), &md); err != nil {
		t.Fatalf("kcat -L -J output: %v\n%s", err, clip(r.Stdout))
	}
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("%s\n--- kcat -L -J:\n%s\n--- stderr:\n%s", fmt.Sprintf(format, a...), clip(r.Stdout), clip(r.Stderr))
	}
	// The broker list carries the advertised address, which the harness
	// leaves at its default: the listener's own 127.0.0.1:port.
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != b.Kafka {
		fail("brokers %+v, want exactly [{1 %s}]", md.Brokers, b.Kafka)
	}
	if md.OriginatingBroker.ID != 1 {
		fail("originating broker %+v, want id 1", md.OriginatingBroker)
	}
	parts := map[string]int{}
	for _, tp := range md.Topics {
		if tp.Error != "" {
			fail("topic %s: error %s", tp.Topic, tp.Error)
		}
		for i, p := range tp.Partitions {
			if p.Partition != int32(i) || p.Leader != 1 || p.Error != "" ||
				len(p.Replicas) != 1 || p.Replicas[0].ID != 1 || len(p.ISRs) != 1 || p.ISRs[0].ID != 1 {
				fail("topic %s partition %d: %+v, want partition %d led by 1 with replicas and ISR [1]", tp.Topic, i, p, i)
			}
		}
		parts[tp.Topic] = len(tp.Partitions)
	}
	if parts["kcat-meta-a"] != 3 || parts["kcat-meta-b"] != 1 {
		fail("partitions per topic %v, want kcat-meta-a:3 kcat-meta-b:1", parts)
	}

	// The human-readable form for one topic names the same broker.
	r = b.kcat(t, "", "-L", "-t", "kcat-meta-a").must(t, b, "kcat -L -t")
	for _, want := range []string{
		"broker 1 at " + b.Kafka,
		`topic "kcat-meta-a" with 3 partitions:`,
		"partition 2, leader 1, replicas: 1, isrs: 1",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("kcat -L -t kcat-meta-a lacks %q:\n%s\n--- stderr:\n%s", want, clip(r.Stdout), clip(r.Stderr))
		}
	}
}

func TestKcatCompressionCodecsReadByFranzGo(t *testing.T) {
	needTool(t, kcatPath)
	b := startBroker(t)
	// Codec ids in a record batch's attributes.
	codecs := map[string]uint8{"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-z-" + codec
			b.createTopic(t, topic, 1, nil)
			// Repetitive values so that every codec really compresses; a
			// linger lets librdkafka put many records in one batch.
			const n = 500
			var in strings.Builder
			var want []string
			for i := range n {
				v := fmt.Sprintf("%s-record-%04d-%s", codec, i, strings.Repeat("x", i%50))
				want = append(want, v)
				fmt.Fprintf(&in, "k%d:%s\n", i%10, v)
			}
			b.kcat(t, in.String(), "-P", "-t", topic, "-p", "0", "-K:", "-z", codec,
				"-X", "linger.ms=50", "-X", "batch.num.messages=200").must(t, b, "kcat produce -z "+codec)

			cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := consumeN(t, cons, n, 20*time.Second)
			if len(got) != n {
				t.Fatalf("franz-go read %d records, want %d", len(got), n)
			}
			for i, r := range got {
				if c := r.Attrs.CompressionType(); c != codecs[codec] {
					t.Fatalf("record %d came in a batch with compression %d, want %d (%s)", i, c, codecs[codec], codec)
				}
				if r.Offset != int64(i) || string(r.Value) != want[i] || string(r.Key) != fmt.Sprintf("k%d", i%10) {
					t.Fatalf("record %d: offset %d key %q value %q, want offset %d key k%d value %q",
						i, r.Offset, r.Key, r.Value, i, i%10, want[i])
				}
			}
			// And kcat reads its own compressed batches back.
			r := b.kcat(t, "", "-C", "-t", topic, "-o", "beginning", "-e", "-f", `%s\n`).must(t, b, "kcat consume "+codec)
			if gotLines := splitLines(r.Stdout); strings.Join(gotLines, "\n") != strings.Join(want, "\n") {
				t.Fatalf("kcat read back %d lines that differ from the %d produced\n--- stderr:\n%s", len(gotLines), n, clip(r.Stderr))
			}
		})
	}
}
