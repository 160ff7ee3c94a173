package test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// sluice bench shape against a real server, through each protocol: a short
// burst four times the consumer's capacity is taken by the broker and
// worked off; everything confirmed is received exactly once, the backlog
// returns to zero, and the CSV and the chart are written.
func TestCLIBenchShape(t *testing.T) {
	b := startBroker(t)
	for _, c := range []struct{ protocol, chart string }{{"amqp", "shape.svg"}, {"kafka", "shape.png"}} {
		t.Run(c.protocol, func(t *testing.T) {
			dir := t.TempDir()
			csvPath, chartPath := filepath.Join(dir, "shape.csv"), filepath.Join(dir, c.chart)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sluiceBin, "bench", "shape", "--protocol", c.protocol,
				"--url", b.amqpURL(), "--brokers", b.Kafka, "--queue", "shape-test", "--topic", "shape-test",
				"--base-rate", "10", "--burst-factor", "40", "--quiet-duration", "500ms", "--burst-duration", "1s",
				"--duration", "2s", "--capacity", "100", "--size", "100", "--drain-timeout", "60s",
				"--csv", csvPath, "--chart", chartPath, "--json")
			var outBuf, errBuf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
			if err := cmd.Run(); err != nil {
				t.Fatalf("bench shape: %v\nstdout:\n%s\nstderr:\n%s", err, outBuf.String(), errBuf.String())
			}
			var sum struct {
				Protocol                          string
				Seconds                           int
				Sent, Confirmed, Nacked, Received int64
				Duplicates, Missing, Errors       int64
				MaxBacklog                        int64 `json:"max_backlog"`
				BacklogEnd                        int64 `json:"backlog_end"`
			}
			if err := json.Unmarshal(outBuf.Bytes(), &sum); err != nil {
				t.Fatalf("no JSON on stdout: %v\n%s", err, outBuf.String())
			}
			// About 10×0.5 + 400×1 + 10×0.5 messages offered.
			if sum.Protocol != c.protocol || sum.Sent < 300 || sum.Confirmed != sum.Sent || sum.Nacked != 0 ||
				sum.Received != sum.Confirmed || sum.Duplicates != 0 || sum.Missing != 0 || sum.Errors != 0 {
				t.Errorf("accounting: %+v\nstderr:\n%s", sum, errBuf.String())
			}
			// The consumer takes 100/s of a 400/s burst: the broker held a
			// backlog, and it was worked off by the end.
			if sum.MaxBacklog <= 0 || sum.BacklogEnd != 0 {
				t.Errorf("backlog max %d, at end %d", sum.MaxBacklog, sum.BacklogEnd)
			}

			f, err := os.Open(csvPath)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(f).ReadAll()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != sum.Seconds+1 || len(rows[0]) != 8 || rows[0][0] != "second" || rows[0][4] != "backlog" {
				t.Fatalf("CSV: %d rows for %d seconds, header %v", len(rows), sum.Seconds, rows[0])
			}
			// The per-second rows add up to the totals, and the last
			// second's backlog is the one reported at the end.
			var offered, outflow int64
			for _, row := range rows[1:] {
				o, _ := strconv.ParseInt(row[1], 10, 64)
				out, _ := strconv.ParseInt(row[3], 10, 64)
				offered, outflow = offered+o, outflow+out
			}
			if offered != sum.Sent || outflow != sum.Received || rows[len(rows)-1][4] != "0" {
				t.Errorf("CSV sums offered %d outflow %d, last row %v; summary %+v", offered, outflow, rows[len(rows)-1], sum)
			}

			chart, err := os.ReadFile(chartPath)
			if err != nil {
				t.Fatal(err)
			}
			switch filepath.Ext(chartPath) {
			case ".svg":
				if !bytes.HasPrefix(chart, []byte("<?xml")) || !bytes.Contains(chart, []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(chart), []byte("</svg>")) {
					t.Errorf("chart is not an SVG document: %.200q", chart)
				}
			case ".png":
				if !bytes.HasPrefix(chart, []byte("\x89PNG\r\n\x1a\n")) {
					t.Errorf("chart is not a PNG: %.20q", chart)
				}
			}
		})
	}
	// The AMQP run left its queue empty.
	q, err := b.channel(t).QueueDeclarePassive("shape-test", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Errorf("queue holds %d messages after the run", q.Messages)
	}
}
