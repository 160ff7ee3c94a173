package test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// python3 is Debian's interpreter, which is where python3-kafka and
// python3-confluent-kafka are installed (not whatever python3 is first on
// PATH).
const python3Path = "/usr/bin/python3"

// runPythonScript runs test/python/<script> against the broker and fails
// with the script's output and the server log unless it exits 0. The
// scripts bound their own run time; timeout is the backstop.
func runPythonScript(t *testing.T, b *broker, script string, timeout time.Duration) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("python", script))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runTool(t, timeout, "", python3Path, path, b.Kafka).must(t, b, script)
	t.Logf("%s passed in %v:\n%s", script, time.Since(start).Round(time.Millisecond), r.Stdout)
}

// needPythonModule skips (fails in CI) when the interpreter lacks module.
func needPythonModule(t *testing.T, module string) {
	t.Helper()
	needTool(t, python3Path)
	if r := runTool(t, 20*time.Second, "", python3Path, "-c", "import "+module); r.Err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python module %s missing in CI (.ci/run installs it): %v\n%s", module, r.Err, r.Stderr)
		}
		t.Skipf("python module %s not installed: %s", module, r.Stderr)
	}
}

func TestPythonKafkaPythonAdminAndGroup(t *testing.T) {
	needPythonModule(t, "kafka")
	b := startBroker(t)
	runPythonScript(t, b, "kafka_python_admin_group.py", 90*time.Second)
}

func TestPythonConfluentIdempotentEachCompression(t *testing.T) {
	needPythonModule(t, "confluent_kafka")
	b := startBroker(t)
	runPythonScript(t, b, "confluent_idempotent.py", 100*time.Second)

	// What librdkafka put on the wire, seen from the log: every batch in
	// the codec asked for (librdkafka silently falls back to none when it
	// thinks the broker lacks a codec) and stamped with a producer id.
	codecs := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for name, codec := range codecs {
		topic := "cf-idem-" + name
		cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		const n = 500 // N in confluent_idempotent.py
		for _, r := range consumeN(t, cons, n, 20*time.Second) {
			if c := r.Attrs.CompressionType(); c != codec {
				t.Fatalf("%s %d@%d: batch compression %d, want %d (%s)", topic, r.Partition, r.Offset, c, codec, name)
			}
			if r.ProducerID < 0 || r.ProducerEpoch < 0 {
				t.Fatalf("%s %d@%d: producer id %d epoch %d, want an idempotent producer's", topic, r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch)
			}
		}
	}
}

// A tutorial-style monitor (pika for the load, HTTP for the rates) reads
// message rates matching the load it drives (test/python/pika_rates_monitor.py).
func TestPythonPikaRatesMonitor(t *testing.T) {
	needPythonModule(t, "pika")
	b := startBroker(t)
	path, err := filepath.Abs(filepath.Join("python", "pika_rates_monitor.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 90*time.Second, "", python3Path, path, b.AMQP, b.HTTP).must(t, b, "pika_rates_monitor.py")
	t.Logf("pika_rates_monitor.py:\n%s", r.Stdout)
}

func TestPythonConfluentTransactions(t *testing.T) {
	needPythonModule(t, "confluent_kafka")
	b := startBroker(t)
	runPythonScript(t, b, "confluent_transactions.py", 120*time.Second)
}
