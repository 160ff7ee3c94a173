package mgmt

import (
	"net/http/httptest"
	"testing"
	"time"
)

// fakeTotals are the objects a test sampler collects: key -> values.
type fakeTotals map[string][]int64

func testSampler(now *time.Time, objs fakeTotals) *sampler {
	return newSampler(func() time.Time { return *now }, 5*time.Second, func(add func(string, int, []int64)) {
		for k, v := range objs {
			keep := keepFor(historyShort, 5*time.Second)
			if k == "long" {
				keep = keepFor(historyLong, 5*time.Second)
			}
			add(k, keep, append([]int64(nil), v...))
		}
	})
}

func rateOf(d map[string]any) float64 { return d["rate"].(float64) }

// The rate is the change between the last two samples over the time
// between them; a sample is taken at most once an interval.
func TestSamplerRate(t *testing.T) {
	now := time.Unix(1000, 0)
	objs := fakeTotals{"q": {100, 0}}
	sp := testSampler(&now, objs)

	sp.maybeSample()
	if r := rateOf(sp.details([]string{"q"}, 0, window{})); r != 0 {
		t.Fatalf("one sample: rate %v", r)
	}
	now = now.Add(2 * time.Second)
	objs["q"] = []int64{110, 0}
	sp.maybeSample() // too soon: no sample
	if r := rateOf(sp.details([]string{"q"}, 0, window{})); r != 0 {
		t.Fatalf("within the interval: rate %v", r)
	}
	now = now.Add(8 * time.Second)
	objs["q"] = []int64{150, 20}
	sp.maybeSample()
	if r0, r1 := rateOf(sp.details([]string{"q"}, 0, window{})), rateOf(sp.details([]string{"q"}, 1, window{})); r0 != 5 || r1 != 2 {
		t.Fatalf("after 10 s: rates %v %v, want 5 and 2", r0, r1)
	}
	// Keys sum: two objects' rates add up.
	objs["r"] = []int64{0, 0}
	now = now.Add(5 * time.Second)
	sp.maybeSample()
	objs["r"] = []int64{50, 0}
	objs["q"] = []int64{200, 20}
	now = now.Add(5 * time.Second)
	sp.maybeSample()
	if r := rateOf(sp.details([]string{"q", "r"}, 0, window{})); r != 20 {
		t.Fatalf("q and r: rate %v, want 10+10", r)
	}
	// An object gone from a sample (deleted) is forgotten.
	delete(objs, "r")
	now = now.Add(5 * time.Second)
	sp.maybeSample()
	if _, ok := sp.series["r"]; ok {
		t.Fatal("a deleted object is still sampled")
	}
}

// History is bounded per object; a window gets samples at every incr,
// newest first, with their average and the average rate.
func TestSamplerWindows(t *testing.T) {
	now := time.Unix(1000, 0)
	objs := fakeTotals{"q": {0}, "long": {0}}
	sp := testSampler(&now, objs)
	for i := 0; i <= 200; i++ { // 1000 s, 10 per second
		objs["q"] = []int64{int64(i) * 50}
		objs["long"] = []int64{int64(i) * 50}
		sp.maybeSample()
		now = now.Add(5 * time.Second)
	}
	now = now.Add(-5 * time.Second) // the time of the last sample
	if n, max := len(sp.series["q"]), keepFor(historyShort, 5*time.Second); n != max {
		t.Fatalf("short history holds %d samples, want %d", n, max)
	}
	if n, max := len(sp.series["long"]), keepFor(historyLong, 5*time.Second); n != max {
		t.Fatalf("long history holds %d samples, want %d", n, max)
	}

	d := sp.details([]string{"long"}, 0, window{age: 60 * time.Second, incr: 10 * time.Second})
	samples := d["samples"].([]map[string]any)
	if len(samples) != 7 {
		t.Fatalf("60 s at 10 s: %d samples, want 7: %v", len(samples), samples)
	}
	first, last := samples[0], samples[len(samples)-1]
	if first["timestamp"].(int64)-last["timestamp"].(int64) != 60_000 || first["sample"].(int64) != 10_000 || last["sample"].(int64) != 9_400 {
		t.Fatalf("samples %v", samples)
	}
	if d["avg_rate"] != 10.0 || d["avg"] != 9_700.0 || d["rate"] != 10.0 {
		t.Fatalf("avg_rate %v avg %v rate %v", d["avg_rate"], d["avg"], d["rate"])
	}
	// A window longer than the short history gets what there is.
	d = sp.details([]string{"q"}, 0, window{age: 600 * time.Second, incr: 5 * time.Second})
	if n := len(d["samples"].([]map[string]any)); n != keepFor(historyShort, 5*time.Second) {
		t.Fatalf("600 s of a short history: %d samples", n)
	}
}

func TestParseWindows(t *testing.T) {
	for _, tc := range []struct {
		query string
		ok    bool
		want  rateWindows
	}{
		{"", true, rateWindows{}},
		{"msg_rates_age=60&msg_rates_incr=5", true, rateWindows{msg: window{60 * time.Second, 5 * time.Second}}},
		{"lengths_age=600&lengths_incr=60&msg_rates_age=0&msg_rates_incr=1", true, rateWindows{lengths: window{600 * time.Second, 60 * time.Second}, msg: window{0, time.Second}}},
		{"msg_rates_age=60", false, rateWindows{}},
		{"msg_rates_age=60&msg_rates_incr=0", false, rateWindows{}},
		{"msg_rates_age=x&msg_rates_incr=5", false, rateWindows{}},
		{"lengths_age=100000&lengths_incr=1", false, rateWindows{}},
	} {
		w, err := parseWindows(httptest.NewRequest("GET", "/api/overview?"+tc.query, nil))
		if (err == nil) != tc.ok || (tc.ok && w != tc.want) {
			t.Errorf("%q: %+v, %v", tc.query, w, err)
		}
	}
}
