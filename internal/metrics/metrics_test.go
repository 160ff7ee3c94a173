package metrics

import (
	"compress/gzip"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestHooksFeedTheirMetrics(t *testing.T) {
	m := New()
	m.Kafka.ConnOpened()
	m.Kafka.ConnOpened()
	m.Kafka.ConnClosed()
	m.Kafka.BytesRead(100)
	m.Kafka.BytesWritten(7)
	m.Kafka.RequestDone("Produce", 3*time.Millisecond)
	m.Kafka.RequestDone("Produce", 30*time.Millisecond)
	m.AMQP.ChannelOpened()
	m.AMQP.MethodDone("basic.publish", time.Millisecond)
	m.AMQP.Confirmed(time.Millisecond)
	m.AMQP.FlowWaited(250 * time.Millisecond)
	m.AMQP.FlowWaited(250 * time.Millisecond)
	obs := m.StorageObserver("partition")
	obs.ObserveAppend(time.Millisecond, 2, 500)
	obs.ObserveFsync(time.Millisecond)

	want := `
# HELP sluice_connections Open client connections, by protocol.
# TYPE sluice_connections gauge
sluice_connections{protocol="amqp"} 0
sluice_connections{protocol="kafka"} 1
# HELP sluice_received_bytes_total Bytes read from client sockets, by protocol.
# TYPE sluice_received_bytes_total counter
sluice_received_bytes_total{protocol="amqp"} 0
sluice_received_bytes_total{protocol="kafka"} 100
# HELP sluice_amqp_channels Open AMQP channels.
# TYPE sluice_amqp_channels gauge
sluice_amqp_channels 1
# HELP sluice_amqp_flow_waits_total Times a publishing AMQP connection stopped reading to wait for a queue in credit flow (its consumers behind).
# TYPE sluice_amqp_flow_waits_total counter
sluice_amqp_flow_waits_total 2
# HELP sluice_amqp_flow_wait_seconds_total Time publishing AMQP connections spent waiting for queues in credit flow.
# TYPE sluice_amqp_flow_wait_seconds_total counter
sluice_amqp_flow_wait_seconds_total 0.5
# HELP sluice_storage_appended_bytes_total Bytes appended to logs, by kind of log.
# TYPE sluice_storage_appended_bytes_total counter
sluice_storage_appended_bytes_total{log="partition"} 500
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"sluice_connections", "sluice_received_bytes_total", "sluice_amqp_channels", "sluice_storage_appended_bytes_total",
		"sluice_amqp_flow_waits_total", "sluice_amqp_flow_wait_seconds_total"); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{
		"sluice_kafka_request_duration_seconds":  2,
		"sluice_amqp_method_duration_seconds":    1,
		"sluice_amqp_confirm_duration_seconds":   1,
		"sluice_storage_append_duration_seconds": 1,
		"sluice_storage_fsync_duration_seconds":  1,
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		want, ok := counts[f.GetName()]
		if !ok {
			continue
		}
		delete(counts, f.GetName())
		if got := f.Metric[0].GetHistogram().GetSampleCount(); int(got) != want {
			t.Errorf("%s: %d samples, want %d", f.GetName(), got, want)
		}
	}
	if len(counts) > 0 {
		t.Errorf("histograms missing: %v", counts)
	}
}

// Disk use is split by the top-level directory; segment files are counted.
func TestDiskAreas(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, n int) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("topics/t-0/00000000000000000000.log", 100)
	write("topics/t-0/00000000000000000000.index", 10)
	write("topics/t-1/00000000000000000042.log", 50)
	write("queues/abc/log/00000000000000000000.log", 30)
	write("queues/abc/acks", 20)
	write("meta/commands", 5)
	write("cluster.id", 3)
	m := New()
	m.Watch(Sources{DataDir: dir})
	want := `
# HELP sluice_storage_segments Segment data files in the data directory, by area.
# TYPE sluice_storage_segments gauge
sluice_storage_segments{area="delayed"} 0
sluice_storage_segments{area="queues"} 1
sluice_storage_segments{area="topics"} 2
# HELP sluice_storage_used_bytes Bytes of files in the data directory, by area (topics, queues, delayed, meta, other).
# TYPE sluice_storage_used_bytes gauge
sluice_storage_used_bytes{area="delayed"} 0
sluice_storage_used_bytes{area="meta"} 5
sluice_storage_used_bytes{area="other"} 3
sluice_storage_used_bytes{area="queues"} 50
sluice_storage_used_bytes{area="topics"} 160
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "sluice_storage_segments", "sluice_storage_used_bytes"); err != nil {
		t.Fatal(err)
	}
}

// No sluice_alarm series until a source is set; then one per alarm.
func TestAlarmsOnlyFromASource(t *testing.T) {
	m := New()
	if n := testutil.CollectAndCount(alarmCollector{m}); n != 0 {
		t.Fatalf("%d alarm series without a source", n)
	}
	m.SetAlarmSource(fixedAlarms{{"memory", false}, {"disk", true}})
	want := `
# HELP sluice_alarm 1 while a resource alarm is raised (publishers blocked), else 0.
# TYPE sluice_alarm gauge
sluice_alarm{resource="disk"} 1
sluice_alarm{resource="memory"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "sluice_alarm"); err != nil {
		t.Fatal(err)
	}
}

type fixedAlarms []Alarm

func (f fixedAlarms) Alarms() []Alarm { return f }

// The per-message and per-request hook paths, for their cost.
func BenchmarkHooks(b *testing.B) {
	m := New()
	b.Run("amqp-basic.publish", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			m.AMQP.MethodDone("basic.publish", time.Millisecond)
		}
	})
	b.Run("kafka-bytes", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			m.Kafka.BytesRead(4096)
		}
	})
	b.Run("kafka-request-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Kafka.RequestDone("Produce", time.Millisecond)
			}
		})
	})
}

// Declared families without series are served in every format: as HELP
// and TYPE lines in text (gzipped or not), as empty families in protobuf.
func TestDeclaredFamiliesWithoutSeries(t *testing.T) {
	m := New()
	m.Watch(Sources{})
	for _, tc := range []struct {
		name           string
		accept, encode string
	}{
		{"text", "", ""},
		{"text gzipped", "", "gzip"},
		{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.encode != "" {
				req.Header.Set("Accept-Encoding", tc.encode)
			}
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, req)
			var body io.Reader = rec.Body
			if rec.Header().Get("Content-Encoding") == "gzip" {
				gz, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = gz
			} else if tc.encode == "gzip" {
				t.Fatal("gzip accepted but not used")
			}
			dec := expfmt.NewDecoder(body, expfmt.ResponseFormat(rec.Header()))
			fams := map[string]*dto.MetricFamily{}
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				fams[mf.GetName()] = &mf
			}
			if tc.accept != "" {
				lag := fams["sluice_group_lag"]
				if lag == nil || lag.GetType() != dto.MetricType_GAUGE || len(lag.Metric) != 0 {
					t.Fatalf("protobuf sluice_group_lag: %v", lag)
				}
				return
			}
			// The text decoder drops families without series (the lines
			// themselves are checked below); the rest must parse.
			if fams["sluice_connections"] == nil {
				t.Fatalf("text: sluice_connections missing among %d families", len(fams))
			}
		})
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		"# HELP sluice_group_lag Records between the group's committed offset and the partition's end offset (never negative).\n# TYPE sluice_group_lag gauge\n",
		"# TYPE sluice_queue_acked_total counter\n",
		"# TYPE sluice_kafka_request_duration_seconds histogram\n",
		"# TYPE sluice_storage_appended_bytes_total counter\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text exposition lacks %q", want)
		}
	}
}
