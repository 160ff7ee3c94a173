package mgmt

import (
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestLiveRingRates(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveRing(clk.now)
	v := liveVals{isQueue: true}
	read := func() (liveVals, bool) { return v, true }

	s, ok := l.watch("q", read)
	if !ok || len(s.samples) != 1 {
		t.Fatalf("first watch: %v, %d samples; want one sample at once", ok, len(s.samples))
	}
	// Second 1: 500 in, 100 out; second 2: 0 in, 300 out.
	clk.t = clk.t.Add(time.Second)
	v.in, v.out, v.backlog, v.ready, v.unacked = 500, 100, 400, 390, 10
	l.tick()
	clk.t = clk.t.Add(time.Second)
	v.out, v.backlog, v.ready = 400, 100, 90
	l.tick()
	// A queue declared again restarts its totals: no negative rate.
	clk.t = clk.t.Add(2 * time.Second)
	v.in, v.out, v.backlog = 10, 0, 10
	l.tick()

	got := l.json(s)["samples"].([]map[string]any)
	if len(got) != 4 {
		t.Fatalf("%d samples, want 4", len(got))
	}
	if _, ok := got[0]["inflow"]; ok {
		t.Errorf("first sample has a rate: %v", got[0])
	}
	for i, want := range []struct{ in, out float64 }{{}, {500, 100}, {0, 300}, {0, 0}} {
		if i == 0 {
			continue
		}
		if got[i]["inflow"] != want.in || got[i]["outflow"] != want.out {
			t.Errorf("sample %d: inflow %v outflow %v, want %v %v", i, got[i]["inflow"], got[i]["outflow"], want.in, want.out)
		}
	}
	if got[1]["backlog"] != int64(400) || got[1]["ready"] != int64(390) || got[2]["backlog"] != int64(100) {
		t.Errorf("backlogs: %v, %v", got[1], got[2])
	}

	// A request right after a tick takes no second sample.
	l.watch("q", read)
	if n := len(s.samples); n != 4 {
		t.Errorf("%d samples after an immediate request, want 4", n)
	}
}

func TestLiveRingTopicGroups(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveRing(clk.now)
	v := liveVals{in: 100, groups: map[string]int64{"a": 50}}
	read := func() (liveVals, bool) {
		c := v
		c.groups = map[string]int64{}
		for k, x := range v.groups {
			c.groups[k] = x
		}
		return c, true
	}
	s, _ := l.watch("t", read)
	clk.t = clk.t.Add(time.Second)
	// Group a reads 20; group b appears with offsets at 1,000: it joined,
	// it did not consume 1,000 in a second.
	v.in, v.groups = 130, map[string]int64{"a": 70, "b": 1000}
	l.tick()
	got := l.json(s)["samples"].([]map[string]any)
	if got[1]["inflow"] != 30.0 || got[1]["outflow"] != 20.0 {
		t.Errorf("inflow %v outflow %v, want 30 and 20", got[1]["inflow"], got[1]["outflow"])
	}
	if gs := fmt.Sprint(got[1]["groups"]); gs != "[a b]" {
		t.Errorf("groups %s", gs)
	}
}

func TestLiveRingBounds(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveRing(clk.now)
	read := func() (liveVals, bool) { return liveVals{}, true }
	for i := range liveMaxWatched + 5 {
		clk.t = clk.t.Add(time.Millisecond)
		l.watch(fmt.Sprint(i), read)
	}
	if n := len(l.series); n != liveMaxWatched {
		t.Errorf("%d watched, want at most %d", n, liveMaxWatched)
	}
	if _, ok := l.series["0"]; ok {
		t.Error("the series asked for least recently was kept")
	}
	s := l.series[fmt.Sprint(liveMaxWatched+4)]
	for range liveKeep + 10 {
		clk.t = clk.t.Add(time.Second)
		l.watch(fmt.Sprint(liveMaxWatched+4), read)
	}
	if n := len(s.samples); n != liveKeep {
		t.Errorf("%d samples kept, want %d", n, liveKeep)
	}
	// Nobody asks for the others any more: they are forgotten.
	clk.t = clk.t.Add(liveWatchTTL - time.Duration(liveKeep+10)*time.Second + time.Second)
	l.tick()
	if n := len(l.series); n != 1 {
		t.Errorf("%d series after their watch ran out, want 1", n)
	}
	// An object gone is dropped.
	gone := func() (liveVals, bool) { return liveVals{}, false }
	clk.t = clk.t.Add(time.Second)
	l.series[fmt.Sprint(liveMaxWatched+4)].read = gone
	l.tick()
	if n := len(l.series); n != 0 {
		t.Errorf("%d series after the object went, want 0", n)
	}
}
