package test

import (
	"encoding/json"
	"testing"
)

// sluice bench kafka-commits against a real server: two groups commit for
// a second, every commit answered, and the offsets they left are there.
func TestCLIBenchKafkaCommits(t *testing.T) {
	b := startBroker(t)
	out := mustCLI(t, b, "", "bench", "kafka-commits", "--committers", "2", "--duration", "1s",
		"--partitions", "2", "--group-prefix", "bc", "--json")
	var sum struct {
		Committers    int
		Commits       int64
		Errors        int64
		CommitsPerSec float64 `json:"commits_per_sec"`
		Latency       struct {
			P50 float64 `json:"p50_ms"`
		} `json:"commit_latency"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json printed no JSON: %v\n%s", err, out)
	}
	if sum.Committers != 2 || sum.Commits < 10 || sum.Errors != 0 || !(sum.CommitsPerSec > 0) || !(sum.Latency.P50 > 0) {
		t.Fatalf("summary %+v", sum)
	}
	c := b.client(t)
	if got := fetchOffset(t, c, "bc-1", "sluice-bench-commits", 1); got < 1 {
		t.Errorf("bc-1 committed %d", got)
	}
}
