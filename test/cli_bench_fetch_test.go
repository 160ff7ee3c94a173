package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sluice bench kafka-fetch reads a filled topic to its end and reports the
// bytes, and with --server-pid the broker's CPU time; an empty topic is an
// error.
func TestCLIBenchKafkaFetch(t *testing.T) {
	b := startBroker(t)
	const topic = "bench-fetch"
	b.createTopic(t, topic, 3, nil)
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := range 300 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%10), Value: []byte(strings.Repeat("v", 100))})
	}
	if err := prod.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, b, "", "bench", "kafka-fetch", "--topic", topic, "--server-pid", fmt.Sprint(b.cmd.Process.Pid), "--json")
	var sum struct {
		Partitions int
		Records    int64
		Bytes      int64
		MBPerSec   float64 `json:"mb_per_sec"`
		CPU        float64 `json:"server_cpu_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json printed no JSON: %v\n%s", err, out)
	}
	if sum.Partitions != 3 || sum.Records != 300 || sum.Bytes != 300*(2+100) || !(sum.MBPerSec > 0) || sum.CPU < 0 {
		t.Fatalf("summary %+v, want 300 records of %d bytes over 3 partitions", sum, 2+100)
	}

	// Small fetches (--partition-max-bytes) read the same records.
	out = mustCLI(t, b, "", "bench", "kafka-fetch", "--topic", topic, "--partition-max-bytes", "1", "--json")
	sum.Records, sum.Bytes = 0, 0
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Records != 300 || sum.Bytes != 300*(2+100) {
		t.Fatalf("with --partition-max-bytes 1: summary %+v (%v), want the same 300 records", sum, err)
	}

	b.createTopic(t, "bench-fetch-empty", 1, nil)
	if _, _, err := runCLI(t, b, "", "bench", "kafka-fetch", "--topic", "bench-fetch-empty"); err == nil {
		t.Error("an empty topic was benchmarked")
	}
}
