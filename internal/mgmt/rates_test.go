package mgmt

import (
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/queue"
)

func TestRateSamplerRatesAndForgetting(t *testing.T) {
	now := time.Unix(1000, 0)
	rs := newRateSampler(func() time.Time { return now })
	rate := func(m map[string]any, name string) float64 {
		return m[name+"_details"].(map[string]any)["rate"].(float64)
	}

	m := rs.queueStats("/", "a", "id-a", &queue.Totals{Published: 100})
	if m["publish"].(int64) != 100 || rate(m, "publish") != 0 {
		t.Fatalf("first sample: %v", m)
	}
	now = now.Add(2 * time.Second) // too soon for a new sample
	m = rs.queueStats("/", "a", "id-a", &queue.Totals{Published: 110})
	if m["publish"].(int64) != 110 || rate(m, "publish") != 0 {
		t.Fatalf("within the interval: %v", m)
	}
	now = now.Add(8 * time.Second) // 10 s after the first sample
	m = rs.queueStats("/", "a", "id-a", &queue.Totals{Published: 150, Acked: 20})
	if rate(m, "publish") != 5 || rate(m, "ack") != 2 {
		t.Fatalf("after 10 s: publish rate %v ack rate %v, want 5 and 2", rate(m, "publish"), rate(m, "ack"))
	}

	rs.queueStats("/", "gone", "id-gone", &queue.Totals{})
	now = now.Add(rateForget + time.Second)
	rs.queueStats("/", "a", "id-a", &queue.Totals{Published: 150})
	if _, ok := rs.samples["id-gone"]; ok {
		t.Fatal("a queue no request looked at for rateForget is still sampled")
	}
	if len(rs.samples) != 1 {
		t.Fatalf("samples: %v", rs.samples)
	}
}
