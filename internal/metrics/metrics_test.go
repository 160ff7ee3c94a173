package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
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
# HELP sluice_storage_appended_bytes_total Bytes appended to logs, by kind of log.
# TYPE sluice_storage_appended_bytes_total counter
sluice_storage_appended_bytes_total{log="partition"} 500
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"sluice_connections", "sluice_received_bytes_total", "sluice_amqp_channels", "sluice_storage_appended_bytes_total"); err != nil {
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
