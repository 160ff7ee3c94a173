package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// sluice bench churn against a real server, with churners and without:
// queues are declared and deleted, every message is confirmed and
// consumed, latencies are reported, and nothing the bench made is left.
func TestCLIBenchChurn(t *testing.T) {
	b := startBroker(t)
	for _, churners := range []string{"2", "0"} {
		t.Run("churners="+churners, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, sluiceBin, "bench", "churn", "--url", b.amqpURL(),
				"--churners", churners, "--rate", "200", "--duration", "2s", "--json")
			var outBuf, errBuf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
			if err := cmd.Run(); err != nil {
				t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, outBuf.String(), errBuf.String())
			}
			type latency struct {
				Count uint64
				P50   float64 `json:"p50_ms"`
				P99   float64 `json:"p99_ms"`
				Max   float64 `json:"max_ms"`
			}
			var sum struct {
				Churners                                                     int
				Declarations                                                 int64
				DeclareRate                                                  float64 `json:"declarations_per_sec"`
				DeclareLatency                                               latency `json:"declare_latency"`
				DeleteLatency                                                latency `json:"delete_latency"`
				Published, Confirmed, Nacked, Unconfirmed, Consumed, Missing int64
				ConfirmLatency                                               latency `json:"confirm_latency"`
				ChurnError                                                   string  `json:"churn_error"`
				CleanupError                                                 string  `json:"cleanup_error"`
			}
			if err := json.Unmarshal(outBuf.Bytes(), &sum); err != nil {
				t.Fatalf("bench --json printed no JSON: %v\n%s", err, outBuf.String())
			}
			// 200/s for 2s: 400 messages, each confirmed and consumed.
			if sum.Published != 400 || sum.Confirmed != 400 || sum.Consumed != 400 ||
				sum.Nacked != 0 || sum.Unconfirmed != 0 || sum.Missing != 0 {
				t.Errorf("published %d confirmed %d consumed %d nacked %d unconfirmed %d missing %d, want 400 of each",
					sum.Published, sum.Confirmed, sum.Consumed, sum.Nacked, sum.Unconfirmed, sum.Missing)
			}
			checkLatency := func(what string, l latency, n uint64) {
				if l.Count != n || !(l.P50 > 0) || l.P50 > l.P99 || l.P99 > l.Max {
					t.Errorf("%s latency %+v, want %d values with 0 < p50 <= p99 <= max", what, l, n)
				}
			}
			checkLatency("confirm", sum.ConfirmLatency, 400)
			if churners == "0" {
				if sum.Declarations != 0 || sum.DeclareLatency.Count != 0 {
					t.Errorf("%d declarations without churners", sum.Declarations)
				}
			} else {
				if sum.Churners != 2 || sum.Declarations < 1 || !(sum.DeclareRate > 0) {
					t.Errorf("%d churners, %d declarations, %.1f/s", sum.Churners, sum.Declarations, sum.DeclareRate)
				}
				checkLatency("declare", sum.DeclareLatency, uint64(sum.Declarations))
				checkLatency("delete", sum.DeleteLatency, uint64(sum.Declarations))
			}
			if sum.ChurnError != "" || sum.CleanupError != "" {
				t.Errorf("churn error %q, cleanup error %q", sum.ChurnError, sum.CleanupError)
			}
			if !strings.Contains(errBuf.String(), "confirm p50") {
				t.Errorf("no progress line on stderr:\n%s", errBuf.String())
			}

			// The publish queue and every churned queue are gone.
			queues := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/queues", nil, 200))
			for _, q := range queues {
				if name, _ := q["name"].(string); strings.HasPrefix(name, "sluice-churn") {
					t.Errorf("queue %s left after the bench", name)
				}
			}
		})
	}
}
