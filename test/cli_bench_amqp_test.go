package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// sluice bench amqp against a real server: a fixed number of messages,
// published with confirms while the consumers wait, then drained, with the
// server's memory sampled.
func TestCLIBenchAMQPFillThenDrain(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "bench", "amqp", "--url", b.amqpURL(),
		"--queue", "bench-fill", "--messages", "3001", "--publishers", "2", "--consumers", "2",
		"--size", "200", "--fill-first", "--watch-pid", fmt.Sprint(b.cmd.Process.Pid), "--json")
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err := cmd.Run()
	out, stderr := outBuf.String(), errBuf.String()
	if err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var sum struct {
		Published, Confirmed, Nacked, Unconfirmed, Consumed, Missing int64
		ConfirmRate                                                  float64 `json:"confirm_msgs_per_sec"`
		ConsumeRate                                                  float64 `json:"consume_msgs_per_sec"`
		PeakRSS                                                      int64   `json:"server_peak_rss_bytes"`
		HWM                                                          int64   `json:"server_rss_high_water_mark_bytes"`
		E2E                                                          struct {
			P50 float64 `json:"p50_ms"`
			Max float64 `json:"max_ms"`
		} `json:"e2e_latency"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json printed no JSON: %v\n%s", err, out)
	}
	// Exactly --messages, split 1501 + 1500, every one confirmed and consumed.
	if sum.Published != 3001 || sum.Confirmed != 3001 || sum.Nacked != 0 || sum.Unconfirmed != 0 ||
		sum.Consumed != 3001 || sum.Missing != 0 {
		t.Errorf("published %d confirmed %d nacked %d unconfirmed %d consumed %d missing %d, want 3001 of each",
			sum.Published, sum.Confirmed, sum.Nacked, sum.Unconfirmed, sum.Consumed, sum.Missing)
	}
	if !(sum.ConfirmRate > 0) || !(sum.ConsumeRate > 0) || !(sum.E2E.P50 > 0) || sum.E2E.P50 > sum.E2E.Max {
		t.Errorf("rates %.0f/%.0f, e2e p50 %v max %v", sum.ConfirmRate, sum.ConsumeRate, sum.E2E.P50, sum.E2E.Max)
	}
	// A Go server process is resident in megabytes, and its lifetime
	// high-water mark is at least any sample taken of it.
	if sum.PeakRSS < 1<<20 || sum.HWM < sum.PeakRSS {
		t.Errorf("server peak RSS %d, high-water mark %d", sum.PeakRSS, sum.HWM)
	}
	if !strings.Contains(stderr, "draining") || !strings.Contains(stderr, "peak resident memory") {
		t.Errorf("no drain notice or memory line on stderr:\n%s", stderr)
	}

	// The queue was drained: a passive declare finds it empty.
	ch := b.channel(t)
	q, err := ch.QueueDeclarePassive("bench-fill", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Errorf("queue holds %d messages after the bench drained it", q.Messages)
	}
}

// Both clients the bench can load a broker with, on a short flat-out run
// with 2 + 2 connections and multi-acks, report every message published,
// confirmed and consumed.
func TestCLIBenchAMQPClients(t *testing.T) {
	b := startBroker(t)
	for _, client := range []string{"lean", "amqp091-go"} {
		t.Run(client, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			queue := "bench-" + client
			cmd := exec.CommandContext(ctx, sluiceBin, "bench", "amqp", "--url", b.amqpURL(), "--client", client,
				"--queue", queue, "--messages", "2000", "--publishers", "2", "--consumers", "2",
				"--size", "100", "--confirm-window", "64", "--multi-ack-every", "7", "--json")
			var outBuf, errBuf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
			if err := cmd.Run(); err != nil {
				t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, outBuf.String(), errBuf.String())
			}
			var sum struct {
				Client                                                       string
				Published, Confirmed, Nacked, Unconfirmed, Consumed, Missing int64
				PublishError                                                 string `json:"publish_error"`
				ConsumeError                                                 string `json:"consume_error"`
			}
			if err := json.Unmarshal(outBuf.Bytes(), &sum); err != nil {
				t.Fatalf("bench --json printed no JSON: %v\n%s", err, outBuf.String())
			}
			if sum.Client != client || sum.Published != 2000 || sum.Confirmed != 2000 || sum.Consumed != 2000 ||
				sum.Nacked != 0 || sum.Unconfirmed != 0 || sum.Missing != 0 || sum.PublishError != "" || sum.ConsumeError != "" {
				t.Errorf("summary %+v, want 2000 published, confirmed and consumed by %s", sum, client)
			}
			if !strings.Contains(errBuf.String(), client+" client") {
				t.Errorf("setup line does not name the client:\n%s", errBuf.String())
			}
			// Every consumed message was acknowledged, the last ones
			// (2000 is no multiple of 7 per consumer) when the run ended.
			q, err := b.channel(t).QueueDeclarePassive(queue, true, false, false, false, nil)
			if err != nil || q.Messages != 0 {
				t.Errorf("queue holds %d messages after the run (%v)", q.Messages, err)
			}
		})
	}
}
