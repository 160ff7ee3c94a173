package test

// Black-box tests of the sluice client commands (topic, produce, consume,
// group, bench kafka): the real binary against a real server.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// runCLI runs `sluice ARGS --brokers b.Kafka` with stdin, bounded by a
// minute, and returns its standard output and error.
func runCLI(t *testing.T, b *broker, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, append(args, "--brokers", b.Kafka)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustCLI is runCLI failing the test on a non-zero exit.
func mustCLI(t *testing.T, b *broker, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, b, stdin, args...)
	if err != nil {
		t.Fatalf("sluice %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func TestCLITopicCreateListDescribeDelete(t *testing.T) {
	b := startBroker(t)
	out := mustCLI(t, b, "", "topic", "create", "cli-orders", "--partitions", "3", "--config", "retention.ms=3600000")
	if !strings.Contains(out, "created topic cli-orders") {
		t.Fatalf("create said %q", out)
	}
	if _, _, err := runCLI(t, b, "", "topic", "create", "cli-orders"); err == nil {
		t.Fatalf("creating an existing topic succeeded")
	}
	mustCLI(t, b, "", "topic", "create", "cli-orders", "--if-not-exists")

	out = mustCLI(t, b, "", "topic", "list")
	if !hasLineFields(out, "cli-orders", "3") {
		t.Fatalf("topic list lacks cli-orders with 3 partitions:\n%s", out)
	}

	mustCLI(t, b, "cli-1\ncli-2\n", "produce", "cli-orders", "--partition", "1")
	out = mustCLI(t, b, "", "topic", "describe", "cli-orders")
	if !strings.Contains(out, "Partitions:  3") {
		t.Fatalf("describe lacks the partition count:\n%s", out)
	}
	// PARTITION LEADER REPLICAS START END OFFSETS
	for _, want := range [][]string{{"0", "0", "0", "0"}, {"1", "0", "2", "2"}, {"2", "0", "0", "0"}} {
		if !hasPartitionRow(out, want[0], want[1:]) {
			t.Errorf("describe lacks partition %s with start/end/offsets %v:\n%s", want[0], want[1:], out)
		}
	}
	if !hasLineFields(out, "retention.ms", "3600000", "TOPIC") {
		t.Errorf("describe lacks the retention.ms config set at creation:\n%s", out)
	}

	out = mustCLI(t, b, "", "topic", "delete", "cli-orders")
	if !strings.Contains(out, "deleted topic cli-orders") {
		t.Fatalf("delete said %q", out)
	}
	out = mustCLI(t, b, "", "topic", "list")
	if strings.Contains(out, "cli-orders") {
		t.Fatalf("deleted topic still listed:\n%s", out)
	}
	if _, _, err := runCLI(t, b, "", "topic", "describe", "cli-orders"); err == nil {
		t.Fatalf("describing a deleted topic succeeded")
	}
}

func TestCLIProduceKeysHeadersThenConsumeFromBeginning(t *testing.T) {
	b := startBroker(t)
	mustCLI(t, b, "", "topic", "create", "cli-events", "--partitions", "2")
	var in strings.Builder
	var want []string
	for i := range 50 {
		key := fmt.Sprintf("user-%d", i%5)
		fmt.Fprintf(&in, "%s:event %d: with a colon\n", key, i)
		want = append(want, fmt.Sprintf("src=cli,n=1\t%s\tevent %d: with a colon", key, i))
	}
	in.WriteString("no separator on this line\n")
	want = append(want, "src=cli,n=1\t\tno separator on this line")

	_, stderr, err := runCLI(t, b, in.String(), "produce", "cli-events",
		"--key-separator", ":", "--header", "src=cli", "--header", "n=1")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "produced 51 records") {
		t.Fatalf("produce summary: %q", stderr)
	}

	out := mustCLI(t, b, "", "consume", "cli-events", "--from", "beginning", "--count", "51",
		"--timeout", "20s", "--print-headers", "--print-key")
	got := splitLines(out)
	if len(got) != len(want) {
		t.Fatalf("consumed %d lines, want %d:\n%s", len(got), len(want), out)
	}
	// Order holds per key (one partition each); compare per-key sequences.
	byKey := func(lines []string) map[string][]string {
		m := map[string][]string{}
		for _, l := range lines {
			k := strings.Split(l, "\t")[1]
			m[k] = append(m[k], l)
		}
		return m
	}
	gk, wk := byKey(got), byKey(want)
	for k, w := range wk {
		if !slices.Equal(gk[k], w) {
			t.Errorf("key %q: got\n%s\nwant\n%s", k, strings.Join(gk[k], "\n"), strings.Join(w, "\n"))
		}
	}

	// --count stops exactly; --print-offset shows partition:offset.
	out = mustCLI(t, b, "", "consume", "cli-events", "--from", "beginning", "--count", "3", "--timeout", "20s", "--print-offset")
	if lines := splitLines(out); len(lines) != 3 || !strings.Contains(lines[0], ":0\t") {
		t.Fatalf("consume --count 3 --print-offset printed:\n%s", out)
	}
	// Nothing new after the end: --timeout ends an empty wait cleanly.
	out = mustCLI(t, b, "", "consume", "cli-events", "--from", "latest", "--timeout", "1s")
	if out != "" {
		t.Fatalf("consume --from latest printed %q", out)
	}
	// A --count not reached within --timeout is an error.
	if _, _, err := runCLI(t, b, "", "consume", "cli-events", "--from", "beginning", "--count", "60", "--timeout", "2s"); err == nil {
		t.Fatalf("consume --count 60 of 51 records succeeded")
	}
}

func TestCLIGroupDescribeShowsLag(t *testing.T) {
	b := startBroker(t)
	mustCLI(t, b, "", "topic", "create", "cli-work", "--partitions", "1")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "job-%d\n", i)
	}
	mustCLI(t, b, in.String(), "produce", "cli-work")

	out := mustCLI(t, b, "", "consume", "cli-work", "--group", "cli-workers", "--from", "beginning", "--count", "4", "--timeout", "30s")
	if got := splitLines(out); !slices.Equal(got, []string{"job-0", "job-1", "job-2", "job-3"}) {
		t.Fatalf("group consumer printed %q", got)
	}

	out = mustCLI(t, b, "", "group", "list")
	if !strings.Contains(out, "cli-workers") {
		t.Fatalf("group list lacks cli-workers:\n%s", out)
	}
	out = mustCLI(t, b, "", "group", "describe", "cli-workers")
	// TOPIC PARTITION COMMITTED END LAG MEMBER
	if !hasLineFields(out, "cli-work", "0", "4", "10", "6") {
		t.Fatalf("describe lacks committed 4, end 10, lag 6:\n%s", out)
	}
	if !strings.Contains(out, "Total lag:    6") {
		t.Fatalf("describe lacks the total lag:\n%s", out)
	}

	// The group resumes from its commit.
	out = mustCLI(t, b, "", "consume", "cli-work", "--group", "cli-workers", "--count", "6", "--timeout", "30s")
	if got := splitLines(out); len(got) != 6 || got[0] != "job-4" {
		t.Fatalf("resumed group consumer printed %q", got)
	}
	out = mustCLI(t, b, "", "group", "describe", "cli-workers")
	if !strings.Contains(out, "Total lag:    0") {
		t.Fatalf("lag after consuming everything:\n%s", out)
	}

	mustCLI(t, b, "", "group", "delete", "cli-workers")
	if _, _, err := runCLI(t, b, "", "group", "describe", "cli-workers"); err == nil {
		t.Fatalf("describing a deleted group succeeded")
	}
}

func TestCLIBenchKafkaReportsThroughputAndLatency(t *testing.T) {
	b := startBroker(t)
	start := time.Now()
	out, stderr, err := runCLI(t, b, "", "bench", "kafka", "--rate", "2000", "--duration", "3s",
		"--partitions", "4", "--record-size", "256", "--json")
	if err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("a 3s bench took %v", took)
	}
	var sum struct {
		Sent, Acked, Failed, Consumed, Missing int64
		ProduceRate                            float64 `json:"produce_records_per_sec"`
		ProduceMBps                            float64 `json:"produce_mb_per_sec"`
	}
	var raw map[string]any // for the latency objects
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("bench --json printed no JSON: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 || sum.Missing != 0 || sum.Acked != sum.Sent || sum.Consumed != sum.Acked {
		t.Errorf("sent %d acked %d failed %d consumed %d missing %d", sum.Sent, sum.Acked, sum.Failed, sum.Consumed, sum.Missing)
	}
	// 2000/s for 3s, paced by due time: the count is exact.
	if sum.Sent != 6000 {
		t.Errorf("sent %d records at 2000/s for 3s, want 6000", sum.Sent)
	}
	if sum.ProduceRate < 1800 || sum.ProduceRate > 2200 || sum.ProduceMBps <= 0 {
		t.Errorf("throughput %.0f records/s %.2f MB/s, want about 2000/s", sum.ProduceRate, sum.ProduceMBps)
	}
	for _, name := range []string{"ack_latency", "e2e_latency"} {
		l, _ := raw[name].(map[string]any)
		for _, q := range []string{"p50_ms", "p99_ms", "p99_9_ms", "max_ms"} {
			if v, _ := l[q].(float64); !(v > 0) {
				t.Errorf("%s.%s = %v, want > 0", name, q, l[q])
			}
		}
		if p50, p99 := l["p50_ms"].(float64), l["p99_ms"].(float64); p50 > p99 {
			t.Errorf("%s: p50 %v > p99 %v", name, p50, p99)
		}
	}
	if !strings.Contains(stderr, "[   1s] sent") || !strings.Contains(stderr, "end-to-end") {
		t.Errorf("no progress lines or text summary on stderr:\n%s", stderr)
	}
}

// hasLineFields reports whether a line of out starts with the given
// whitespace-separated fields.
func hasLineFields(out string, fields ...string) bool {
	for _, l := range splitLines(out) {
		f := strings.Fields(l)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

// hasPartitionRow reports whether the topic describe table has a row for
// partition p ending in the given START END OFFSETS fields.
func hasPartitionRow(out, p string, tail []string) bool {
	for _, l := range splitLines(out) {
		f := strings.Fields(l)
		if len(f) >= 1+len(tail) && f[0] == p && slices.Equal(f[len(f)-len(tail):], tail) {
			return true
		}
	}
	return false
}

// The transactional bench commits every --txn-records records and reads
// them back with read_committed: every record counts once, and the
// broker saw the bench's transactions (one transactional id a producer,
// each ended with a commit).
func TestCLIBenchKafkaTransactional(t *testing.T) {
	b := startBroker(t)
	out, stderr, err := runCLI(t, b, "", "bench", "kafka", "--records", "5000", "--txn-records", "1000",
		"--producers", "2", "--partitions", "4", "--record-size", "256", "--topic", "bench-txn", "--json")
	if err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var sum struct {
		Sent, Acked, Failed, Consumed, Missing int64
		TxnRecords                             int `json:"txn_records"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json printed no JSON: %v\n%s", err, out)
	}
	if sum.Sent != 5000 || sum.Acked != 5000 || sum.Failed != 0 || sum.Consumed != 5000 || sum.Missing != 0 || sum.TxnRecords != 1000 {
		t.Errorf("summary %+v, want 5000 records sent, committed and consumed in transactions of 1000", sum)
	}
	if !strings.Contains(stderr, "transactions of 1000 records, read_committed") {
		t.Errorf("the setup line does not name the transactions:\n%s", stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lt, err := b.admin(t).ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := 0
	for id, tx := range lt {
		if strings.HasPrefix(id, "sluice-bench-") {
			ids++
			if tx.State != "CompleteCommit" {
				t.Errorf("transaction %s is %s, want CompleteCommit", id, tx.State)
			}
		}
	}
	if ids != 2 {
		t.Errorf("the broker lists %d bench transactional ids (%v), want one per producer", ids, lt)
	}
}
