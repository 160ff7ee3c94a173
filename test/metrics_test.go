package test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.yaml.in/yaml/v2"
)

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

func (b *broker) scrape(t testing.TB) scrape {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTP + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// find returns the metric of family name whose labels include want
// ("k=v" pairs), or nil.
func (s scrape) find(name string, want ...string) *dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a gauge or counter value; ok is false if the series is absent.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	m := s.find(name, labels...)
	switch {
	case m == nil:
		return 0, false
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

// count is a histogram's sample count (0 if absent).
func (s scrape) count(name string, labels ...string) uint64 {
	if m := s.find(name, labels...); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleCount()
	}
	return 0
}

// expectation is one series and the value it must have.
type expectation struct {
	name   string
	labels []string
	want   float64
}

func (s scrape) mismatches(exp []expectation) []string {
	var bad []string
	for _, e := range exp {
		got, ok := s.value(e.name, e.labels...)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s%v missing (want %v)", e.name, e.labels, e.want))
		} else if got != e.want {
			bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", e.name, e.labels, got, e.want))
		}
	}
	return bad
}

// TestMetrics does real work through amqp091-go and franz-go and checks
// that /metrics reports it: queue depths and totals, partition offsets,
// group lag, latency histograms, storage timings, connections. Then it
// checks that every metric the shipped alert rules use is in the scrape.
func TestMetrics(t *testing.T) {
	b := startBroker(t)

	// AMQP: a work queue dead-lettering into work.dlq, and a queue nobody
	// consumes.
	conn := b.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	must := fatalIf(t)
	must(ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	_, err = ch.QueueDeclare("work.dlq", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("work.dlq", "", "dlx", false, nil))
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp.Table{"x-dead-letter-exchange": "dlx"})
	must(err)
	_, err = ch.QueueDeclare("idle", true, false, false, false, nil)
	must(err)
	must(ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 32))
	publish := func(queue string, n int) {
		for i := range n {
			must(ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("%s-%d", queue, i))}))
		}
		for range n {
			select {
			case c := <-confirms:
				if !c.Ack {
					t.Fatalf("publish to %s nacked", queue)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no confirm")
			}
		}
	}
	publish("work", 10)
	publish("idle", 4)

	cch, err := conn.Channel()
	must(err)
	must(cch.Qos(20, 0, false))
	deliveries, err := cch.Consume("work", "c1", false, false, false, false, nil)
	must(err)
	var ds []amqp.Delivery
	for range 10 {
		ds = append(ds, recv(t, deliveries, 5*time.Second))
	}
	for _, d := range ds[:5] {
		must(d.Ack(false))
	}
	must(ds[5].Nack(false, true)) // requeued: delivered again, redelivered
	must(ds[6].Reject(false))     // to the dead-letter exchange
	must(ds[7].Reject(false))
	if again := recv(t, deliveries, 5*time.Second); !again.Redelivered {
		t.Fatalf("requeued message came back without the redelivered flag")
	}
	// ds[8], ds[9] and the redelivery stay unacked.

	// Kafka: 10 records in partition 0 and 6 in partition 1, a group that
	// consumes them all and commits 4 and 6, then 3 more records in
	// partition 1.
	const topic, group = "mx", "mx-group"
	b.createTopic(t, topic, 2, nil)
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo := func(p int32, n int) {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}
		}
		produceSync(t, prod, recs...)
	}
	produceTo(0, 10)
	produceTo(1, 6)
	cons := b.client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeN(t, cons, 16, 30*time.Second)
	var commitErr error
	cons.CommitOffsetsSync(ctxT(t, 10*time.Second), map[string]map[int32]kgo.EpochOffset{
		topic: {0: {Epoch: -1, Offset: 4}, 1: {Epoch: -1, Offset: 6}},
	}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					commitErr = err
				}
			}
		}
	})
	must(commitErr)
	produceTo(1, 3)

	want := []expectation{
		{"sluice_queue_messages_ready", []string{"vhost=/", "queue=work"}, 0},
		{"sluice_queue_messages_unacked", []string{"vhost=/", "queue=work"}, 3},
		{"sluice_queue_consumers", []string{"vhost=/", "queue=work"}, 1},
		{"sluice_queue_published_total", []string{"queue=work"}, 10},
		{"sluice_queue_delivered_total", []string{"queue=work"}, 11},
		{"sluice_queue_acked_total", []string{"queue=work"}, 5},
		{"sluice_queue_redelivered_total", []string{"queue=work"}, 1},
		{"sluice_queue_dead_lettered_total", []string{"queue=work"}, 2},
		{"sluice_queue_dropped_total", []string{"queue=work"}, 0},
		{"sluice_queue_messages_ready", []string{"queue=work.dlq"}, 2},
		{"sluice_queue_published_total", []string{"queue=work.dlq"}, 2},
		{"sluice_queue_messages_ready", []string{"queue=idle"}, 4},
		{"sluice_queue_consumers", []string{"queue=idle"}, 0},
		{"sluice_partition_log_start_offset", []string{"topic=mx", "partition=0"}, 0},
		{"sluice_partition_log_end_offset", []string{"topic=mx", "partition=0"}, 10},
		{"sluice_partition_log_end_offset", []string{"topic=mx", "partition=1"}, 9},
		{"sluice_group_committed_offset", []string{"group=mx-group", "topic=mx", "partition=0"}, 4},
		{"sluice_group_committed_offset", []string{"group=mx-group", "topic=mx", "partition=1"}, 6},
		{"sluice_group_lag", []string{"group=mx-group", "topic=mx", "partition=0"}, 6},
		{"sluice_group_lag", []string{"group=mx-group", "topic=mx", "partition=1"}, 3},
	}
	// Acks and rejects are asynchronous: poll until the scrape agrees,
	// then report what still differs.
	s := b.scrape(t)
	for deadline := time.Now().Add(10 * time.Second); len(s.mismatches(want)) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		s = b.scrape(t)
	}
	if bad := s.mismatches(want); len(bad) > 0 {
		t.Fatalf("metrics do not match the work done:\n%s", strings.Join(bad, "\n"))
	}

	positive := []struct {
		what string
		got  float64
	}{
		{"Produce latency samples", float64(s.count("sluice_kafka_request_duration_seconds", "api=Produce"))},
		{"Fetch latency samples", float64(s.count("sluice_kafka_request_duration_seconds", "api=Fetch"))},
		{"basic.publish latency samples", float64(s.count("sluice_amqp_method_duration_seconds", "method=basic.publish"))},
		{"queue.declare latency samples", float64(s.count("sluice_amqp_method_duration_seconds", "method=queue.declare"))},
		{"confirm latency samples", float64(s.count("sluice_amqp_confirm_duration_seconds"))},
		{"partition fsyncs", float64(s.count("sluice_storage_fsync_duration_seconds", "log=partition"))},
		{"queue fsyncs", float64(s.count("sluice_storage_fsync_duration_seconds", "log=queue"))},
		{"partition group commits", float64(s.count("sluice_storage_append_duration_seconds", "log=partition"))},
	}
	for _, p := range positive {
		if p.got <= 0 {
			t.Errorf("%s: %v, want > 0", p.what, p.got)
		}
	}
	if n := s.count("sluice_amqp_method_duration_seconds", "method=basic.publish"); n < 14 {
		t.Errorf("basic.publish latency samples %d, want >= 14 (one per publish)", n)
	}
	if n := s.count("sluice_amqp_confirm_duration_seconds"); n != 14 {
		t.Errorf("confirm latency samples %d, want 14", n)
	}
	atLeast := []expectation{
		{"sluice_connections", []string{"protocol=amqp"}, 1},
		{"sluice_connections", []string{"protocol=kafka"}, 1},
		{"sluice_amqp_channels", nil, 2},
		{"sluice_received_bytes_total", []string{"protocol=amqp"}, 100},
		{"sluice_sent_bytes_total", []string{"protocol=amqp"}, 100},
		{"sluice_received_bytes_total", []string{"protocol=kafka"}, 100},
		{"sluice_sent_bytes_total", []string{"protocol=kafka"}, 100},
		{"sluice_partition_size_bytes", []string{"topic=mx", "partition=0"}, 1},
		{"sluice_partition_segments", []string{"topic=mx", "partition=0"}, 1},
		{"sluice_storage_segments", []string{"area=topics"}, 2},
		{"sluice_storage_segments", []string{"area=queues"}, 3},
		{"sluice_storage_used_bytes", []string{"area=topics"}, 1},
		{"sluice_storage_used_bytes", []string{"area=queues"}, 1},
		{"sluice_storage_disk_free_bytes", nil, 1},
		{"sluice_storage_disk_total_bytes", nil, 1},
	}
	for _, e := range atLeast {
		if got, ok := s.value(e.name, e.labels...); !ok || got < e.want {
			t.Errorf("%s%v = %v (present %v), want >= %v", e.name, e.labels, got, ok, e.want)
		}
	}

	// Both resources are watched with the defaults, and neither is low.
	for _, bad := range s.mismatches([]expectation{
		{"sluice_alarm", []string{"resource=memory"}, 0},
		{"sluice_alarm", []string{"resource=disk"}, 0},
	}) {
		t.Error(bad)
	}

	t.Run("alert rules use real metrics", func(t *testing.T) {
		checkAlertRules(t, s)
	})

	// Closing the AMQP connection takes its connection and channels off
	// the gauges.
	conn.Close()
	waitFor(t, 10*time.Second, "amqp connection and channel gauges back to 0", func() bool {
		s := b.scrape(t)
		c, _ := s.value("sluice_connections", "protocol=amqp")
		n, _ := s.value("sluice_amqp_channels")
		return c == 0 && n == 0
	})
}

// alertRulesFile is the rules file operators load (docs/monitoring.md).
const alertRulesFile = "../docs/prometheus/sluice-alerts.yml"

// notFromSluice are series a rule may use that no Sluice scrape has, with
// the reason.
var notFromSluice = map[string]string{
	"up": "made by Prometheus for every scrape target",
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promOperators = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, that are not functions or operators.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.") {
			continue // the tail of a number such as 1e3
		}
		rest := strings.TrimSpace(e[loc[1]:])
		if strings.HasPrefix(rest, "(") || promOperators[name] {
			continue
		}
		out = append(out, name)
	}
	return out
}

func checkAlertRules(t *testing.T, s scrape) {
	if rules := checkRuleFile(t, s, alertRulesFile); rules < 6 {
		t.Fatalf("%d rules in %s, want the six situations of docs/monitoring.md at least", rules, alertRulesFile)
	}
}

// checkRuleFile checks that every metric the rules of file use is in s,
// and returns the number of rules.
func checkRuleFile(t *testing.T, s scrape, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	rules := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			rules++
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("rule %s: no metric found in %q", r.Alert, r.Expr)
			}
			for _, n := range names {
				if why, ok := notFromSluice[n]; ok {
					t.Logf("rule %s uses %s: %s", r.Alert, n, why)
					continue
				}
				if !s.has(n) {
					t.Errorf("rule %s uses %s, which /metrics does not expose", r.Alert, n)
				}
			}
		}
	}
	return rules
}

// has reports whether name is a family in the scrape, or a histogram's
// _bucket/_sum/_count series.
func (s scrape) has(name string) bool {
	if _, ok := s[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f, ok := s[base]; ok && (f.GetType() == dto.MetricType_HISTOGRAM || (suf != "_bucket" && f.GetType() == dto.MetricType_SUMMARY)) {
				return true
			}
		}
	}
	return false
}

// The name extraction finds selected metrics and nothing else.
func TestAlertRuleMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (instance, group, topic) (sluice_group_lag) > 10000`:                                                    "sluice_group_lag",
		`sluice_queue_consumers == 0 and on (instance, vhost, queue) sluice_queue_messages_ready > 0`:                   "sluice_queue_consumers sluice_queue_messages_ready",
		`histogram_quantile(0.99, sum by (le) (rate(sluice_kafka_request_duration_seconds_bucket{api="Produce"}[5m])))`: "sluice_kafka_request_duration_seconds_bucket",
		`sluice_queue_messages_ready{queue=~".*dlq$"} > 1e3`:                                                            "sluice_queue_messages_ready",
		`a / b < 0.10`: "a b",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// promtool, when installed, validates the rules file's PromQL and
// templates. In CI it must be installed (Debian package prometheus).
func TestAlertRulesPromtool(t *testing.T) {
	const promtool = "/usr/bin/promtool"
	needTool(t, promtool)
	out, err := exec.Command(promtool, "check", "rules", alertRulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
