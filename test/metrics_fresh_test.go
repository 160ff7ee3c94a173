package test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v2"
)

// exposition is one raw text-format /metrics answer: the type each
// family declares and the series lines under each.
type exposition struct {
	raw    string
	types  map[string]string // family -> counter, gauge, histogram...
	series map[string]int    // family -> sample lines
	helps  map[string]int    // family -> HELP lines
}

func (b *broker) rawMetrics(t *testing.T) exposition {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	e := exposition{raw: string(data), types: map[string]string{}, series: map[string]int{}, helps: map[string]int{}}
	sc := bufio.NewScanner(strings.NewReader(e.raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[0] == "#" && f[1] == "TYPE":
			e.types[f[2]] = f[3]
		case len(f) >= 3 && f[0] == "#" && f[1] == "HELP":
			e.helps[f[2]]++
		case len(f) >= 2 && f[0] != "#":
			name, _, _ := strings.Cut(f[0], "{")
			e.series[e.family(name)]++
		}
	}
	return e
}

// family is the family a series or selector name belongs to: a
// histogram's _bucket, _sum and _count series belong to the histogram.
func (e exposition) family(name string) string {
	if _, ok := e.types[name]; ok {
		return name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && (e.types[base] == "histogram" || e.types[base] == "summary") {
			return base
		}
	}
	return name
}

// A fresh broker, with no group, topic or queue and no request served yet,
// lists every family its alert rules and dashboards use, the consumer-lag
// family among them (HELP and TYPE, no series), so rules can be installed
// and checked before the first consumer; and once a group commits, its
// series appear under the one family.
func TestMetricFamiliesOnFreshBroker(t *testing.T) {
	b := startBroker(t)
	e := b.rawMetrics(t)

	perThing := map[string]string{
		"sluice_group_lag":                      "gauge",
		"sluice_group_committed_offset":         "gauge",
		"sluice_partition_log_end_offset":       "gauge",
		"sluice_partition_log_start_offset":     "gauge",
		"sluice_queue_messages_ready":           "gauge",
		"sluice_queue_consumers":                "gauge",
		"sluice_queue_dead_lettered_total":      "counter",
		"sluice_kafka_request_duration_seconds": "histogram",
	}
	for name, typ := range perThing {
		if got := e.types[name]; got != typ {
			t.Errorf("fresh broker: family %s has TYPE %q, want %q", name, got, typ)
		}
		if e.helps[name] != 1 {
			t.Errorf("fresh broker: family %s has %d HELP lines, want 1", name, e.helps[name])
		}
	}
	if n := e.series["sluice_group_lag"]; n != 0 {
		t.Errorf("fresh broker: %d sluice_group_lag series without any group", n)
	}

	// Every metric an alert rule selects is a family of the fresh scrape.
	data, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatal(err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(r.Expr) {
				if _, ok := notFromSluice[n]; ok {
					continue
				}
				if _, ok := e.types[e.family(n)]; !ok {
					t.Errorf("rule %s uses %s, absent from a fresh broker's /metrics", r.Alert, n)
				}
			}
		}
	}

	// Prometheus' own linter accepts the exposition, families without
	// series included.
	promtoolCheckMetrics(t, e.raw)

	// A group commits: its lag series appear, under one HELP and TYPE.
	const topic = "fresh-lag"
	b.createTopic(t, topic, 1, nil)
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	for range 3 {
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := b.client(t, kgo.ConsumerGroup("fresh-group"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	fs := cons.PollRecords(ctxT(t, 20*time.Second), 1)
	if errs := fs.Errors(); len(errs) > 0 || fs.NumRecords() == 0 {
		t.Fatalf("consume: %v, %d records", errs, fs.NumRecords())
	}
	if err := cons.CommitRecords(ctxT(t, 10*time.Second), fs.Records()[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a sluice_group_lag series for the group", func() bool {
		e = b.rawMetrics(t)
		return e.series["sluice_group_lag"] > 0
	})
	if !strings.Contains(e.raw, `sluice_group_lag{group="fresh-group",partition="0",topic="fresh-lag"} 2`) {
		t.Errorf("want lag 2 for fresh-group after committing offset 1 of 3:\n%s", grepLines(e.raw, "sluice_group_lag"))
	}
	if e.helps["sluice_group_lag"] != 1 || e.types["sluice_group_lag"] != "gauge" {
		t.Errorf("sluice_group_lag with series: %d HELP lines, TYPE %q", e.helps["sluice_group_lag"], e.types["sluice_group_lag"])
	}
	promtoolCheckMetrics(t, e.raw)
}

// promtoolCheckMetrics lints an exposition with promtool when installed.
func promtoolCheckMetrics(t *testing.T, exposition string) {
	t.Helper()
	const promtool = "/usr/bin/promtool"
	needTool(t, promtool)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
