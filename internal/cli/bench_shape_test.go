package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShapeRateAt(t *testing.T) {
	o := benchShapeOptions{baseRate: 10, burstFactor: 20, quietDuration: time.Second, burstDuration: 2 * time.Second}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 10}, {999 * time.Millisecond, 10}, {time.Second, 200}, {2999 * time.Millisecond, 200}, {3 * time.Second, 10}} {
		if got := o.rateAt(c.at); got != c.want {
			t.Errorf("rateAt(%v) = %v, want %v", c.at, got, c.want)
		}
	}
}

// The pacer spaces turns by its interval, banks no credit while idle, and
// tryReserve takes no turn it would have to wait too long for.
func TestShapePacer(t *testing.T) {
	p := pacer{interval: 10 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if got := p.reserve(t0); !got.Equal(t0.Add(time.Duration(i) * 10 * time.Millisecond)) {
			t.Fatalf("turn %d at %v", i, got.Sub(t0))
		}
	}
	later := t0.Add(time.Second)
	if got := p.reserve(later); !got.Equal(later) {
		t.Fatalf("after idling the next turn is at %v, want now", got.Sub(later))
	}
	// The next turn is 10ms away: a caller waiting at most 5ms gets none,
	// and its refusal leaves the turn for the next caller.
	if _, ok := p.tryReserve(later, 5*time.Millisecond); ok {
		t.Fatal("tryReserve took a turn beyond its limit")
	}
	if at, ok := p.tryReserve(later, 10*time.Millisecond); !ok || !at.Equal(later.Add(10*time.Millisecond)) {
		t.Fatalf("tryReserve = %v, %v", at.Sub(later), ok)
	}
}

// The direct-call baseline needs no broker: a burst ten times the
// service's capacity turns into errors, and every call is accounted for.
func TestShapeDirectBaseline(t *testing.T) {
	dir := t.TempDir()
	o := benchShapeOptions{
		protocol: "amqp", baseline: "direct", baseRate: 20, burstFactor: 20,
		quietDuration: 300 * time.Millisecond, burstDuration: time.Second, duration: 1500 * time.Millisecond,
		capacity: 40, size: 64, prefetch: 10, drainTimeout: time.Minute, callTimeout: 50 * time.Millisecond,
		concurrency: 4, csvPath: filepath.Join(dir, "d.csv"), chartPath: filepath.Join(dir, "d.png"), json: true,
	}
	var out, errs bytes.Buffer
	if err := runBenchShape(context.Background(), &clientFlags{}, o, &out, &errs); err != nil {
		t.Fatal(err)
	}
	var s shapeSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s.Sent == 0 || s.Confirmed+s.Errors != s.Sent || s.Received != s.Confirmed || s.Missing != 0 || s.Duplicates != 0 || s.BacklogEnd != 0 {
		t.Errorf("accounting does not add up: %+v", s)
	}
	// 400 calls/s for a second against 40/s, waiting at most 50ms.
	if s.Errors == 0 {
		t.Errorf("no errors from a burst ten times the service's capacity: %+v", s)
	}
	csv, err := os.ReadFile(o.csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) != s.Seconds+1 || !strings.HasPrefix(lines[0], "second,offered,inflow,outflow,backlog,errors,") {
		t.Errorf("CSV has %d lines for %d seconds:\n%s", len(lines), s.Seconds, csv)
	}
	png, err := os.ReadFile(o.chartPath)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("chart is not a PNG (%v)", err)
	}
}

func TestShapeValidate(t *testing.T) {
	good := benchShapeOptions{protocol: "kafka", baseRate: 1, burstFactor: 1, duration: time.Second, capacity: 1,
		size: shapeHeader, prefetch: 1, drainTimeout: time.Second, callTimeout: time.Second, concurrency: 1, chartPath: "x.svg"}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]func(o *benchShapeOptions){
		"protocol": func(o *benchShapeOptions) { o.protocol = "mqtt" },
		"baseline": func(o *benchShapeOptions) { o.baseline = "indirect" },
		"size":     func(o *benchShapeOptions) { o.size = shapeHeader - 1 },
		"capacity": func(o *benchShapeOptions) { o.capacity = 0 },
		"chart":    func(o *benchShapeOptions) { o.chartPath = "x.pdf" },
		"factor":   func(o *benchShapeOptions) { o.burstFactor = 0.5 },
	} {
		o := good
		bad(&o)
		if o.validate() == nil {
			t.Errorf("%s: validate accepted %+v", name, o)
		}
	}
}
