package mgmt

import (
	"encoding/json"
	"testing"
)

// TestAddStats: another node's message_stats add to this node's: totals
// and rates summed, samples summed where their timestamps meet and kept
// where only one node has them, avg and avg_rate computed again.
func TestAddStats(t *testing.T) {
	mine := map[string]any{
		"publish": int64(10),
		"publish_details": map[string]any{"rate": 1.0, "samples": []map[string]any{
			{"sample": int64(10), "timestamp": int64(20000)},
			{"sample": int64(4), "timestamp": int64(15000)},
		}},
	}
	var theirs map[string]any
	if err := json.Unmarshal([]byte(`{"publish": 30, "deliver": 2, "publish_details": {"rate": 2.5, "samples": [
		{"sample": 30, "timestamp": 20000}, {"sample": 20, "timestamp": 15000}, {"sample": 5, "timestamp": 10000}]},
		"deliver_details": {"rate": 0.5}}`), &theirs); err != nil {
		t.Fatal(err)
	}
	addStats(mine, theirs)
	if mine["publish"] != int64(40) || mine["deliver"] != int64(2) {
		t.Fatalf("totals: publish %v deliver %v, want 40 and 2", mine["publish"], mine["deliver"])
	}
	d := mine["publish_details"].(map[string]any)
	if d["rate"] != 3.5 {
		t.Fatalf("rate %v, want 3.5", d["rate"])
	}
	got := d["samples"].([]map[string]any)
	want := [][2]int64{{40, 20000}, {24, 15000}, {5, 10000}}
	if len(got) != len(want) {
		t.Fatalf("samples %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i]["sample"] != w[0] || got[i]["timestamp"] != w[1] {
			t.Fatalf("sample %d: %v, want %v", i, got[i], w)
		}
	}
	if d["avg"] != 23.0 || d["avg_rate"] != 3.5 {
		t.Fatalf("avg %v avg_rate %v, want 23 and 3.5", d["avg"], d["avg_rate"])
	}
	if dd := mine["deliver_details"].(map[string]any); dd["rate"] != 0.5 {
		t.Fatalf("deliver rate %v, want 0.5", dd["rate"])
	}
}
