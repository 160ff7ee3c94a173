package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// sluice bench kafka-topics against a real server: every topic created
// with its partitions, then deleted unless --keep.
func TestCLIBenchKafkaTopics(t *testing.T) {
	b := startBroker(t)
	var sum struct {
		Topics       int
		Partitions   int32   `json:"partitions_per_topic"`
		PerRequest   int     `json:"topics_per_request"`
		Seconds      float64 `json:"seconds"`
		TopicsPerSec float64 `json:"topics_per_sec"`
	}
	out := mustCLI(t, b, "", "bench", "kafka-topics", "--topics", "25", "--partitions", "3",
		"--per-request", "10", "--prefix", "bt", "--keep", "--json")
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json printed no JSON: %v\n%s", err, out)
	}
	if sum.Topics != 25 || sum.Partitions != 3 || sum.PerRequest != 10 || !(sum.Seconds > 0) || !(sum.TopicsPerSec > 0) {
		t.Fatalf("summary %+v", sum)
	}
	details, err := b.admin(t).ListTopics(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, d := range details {
		if strings.HasPrefix(name, "bt-") {
			n++
			if len(d.Partitions) != 3 {
				t.Errorf("%s has %d partitions", name, len(d.Partitions))
			}
		}
	}
	if n != 25 {
		t.Fatalf("%d bench topics after --keep, want 25", n)
	}

	// Without --keep the topics go; a name taken fails the run.
	mustCLI(t, b, "", "bench", "kafka-topics", "--topics", "5", "--partitions", "1", "--prefix", "gone")
	if _, _, err := runCLI(t, b, "", "bench", "kafka-topics", "--topics", "5", "--prefix", "bt"); err == nil {
		t.Fatal("creating topics that exist did not fail the bench")
	}
	details, err = b.admin(t).ListTopics(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for name := range details {
		if strings.HasPrefix(name, "gone-") {
			t.Fatalf("%s left behind without --keep", name)
		}
	}
}
