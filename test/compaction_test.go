package test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// envInt reads a test knob from the environment.
func envInt(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive integer", name, s)
		}
		return n
	}
	return def
}

// compactedWant is what a compacted topic must hold: per key, the offset
// and value (nil: tombstone) of its latest record.
type compactedWant map[string]struct {
	offset int64
	value  *string
}

// produceKeyed produces n records over keys keys ("k<i%keys>", value
// "v<i>"), then one tombstone for every tenth key, then a record larger
// than a segment with a key of its own (so that all the rest is in closed
// segments), and returns the latest record per key.
func produceKeyed(t *testing.T, b *broker, topic string, n, keys int) compactedWant {
	t.Helper()
	prod := b.client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	want := compactedWant{}
	var mu sync.Mutex
	var firstErr error
	record := func(key string, value []byte) {
		prod.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(key), Value: value}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if w, ok := want[key]; ok && w.offset > r.Offset {
				return
			}
			var v *string
			if r.Value != nil {
				s := string(r.Value)
				v = &s
			}
			want[key] = struct {
				offset int64
				value  *string
			}{r.Offset, v}
		})
	}
	for i := range n {
		record(fmt.Sprintf("k%d", i%keys), []byte(fmt.Sprintf("v%d", i)))
	}
	for k := 0; k < keys; k += 10 {
		record(fmt.Sprintf("k%d", k), nil)
	}
	if err := prod.Flush(ctxT(t, 5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// One produce of its own, after everything else, rolls the segment.
	// Random bytes: the client compresses.
	big := make([]byte, 300<<10)
	rand.Read(big)
	produceSync(t, prod, &kgo.Record{Topic: topic, Key: []byte("roll"), Value: big})
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	s := string(big)
	want["roll"] = struct {
		offset int64
		value  *string
	}{int64(n + (keys+9)/10), &s}
	return want
}

// readTopic reads partition 0 of topic from the start to its end.
func readTopic(t *testing.T, b *broker, topic string) []*kgo.Record {
	t.Helper()
	return readTopicAt(t, b, topic, kgo.ReadUncommitted())
}

// readTopicAt reads partition 0 of topic from the start to its end (whose
// last record must be visible at iso) at isolation level iso.
func readTopicAt(t *testing.T, b *broker, topic string, iso kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	ends, err := b.admin(t).ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	c, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()},
	}), kgo.FetchMaxBytes(8<<20), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t, 2*time.Minute)
	var out []*kgo.Record
	for len(out) == 0 || out[len(out)-1].Offset < end.Offset-1 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %s before timeout", len(out), topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// checkCompacted checks recs against want: offsets increase, every key's
// latest record is there with its value, and (exact) nothing else is.
// Without exact, older records of a key may still be there (a clean not
// done yet), but only before its latest.
func checkCompacted(t *testing.T, recs []*kgo.Record, want compactedWant, exact bool) {
	t.Helper()
	last := int64(-1)
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Offset <= last {
			t.Fatalf("offset %d after %d", r.Offset, last)
		}
		last = r.Offset
		key := string(r.Key)
		w, ok := want[key]
		switch {
		case !ok:
			t.Fatalf("record of unknown key %q at %d", key, r.Offset)
		case r.Offset > w.offset:
			t.Fatalf("key %s: record at %d after its latest at %d", key, r.Offset, w.offset)
		case r.Offset < w.offset:
			if exact {
				t.Fatalf("key %s: old record at %d kept beside its latest at %d", key, r.Offset, w.offset)
			}
			continue
		}
		seen[key] = true
		if (w.value == nil) != (r.Value == nil) || w.value != nil && *w.value != string(r.Value) {
			t.Fatalf("key %s at %d: value %.20q, want %v", key, r.Offset, r.Value, w.value)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d keys' latest records read, want %d", len(seen), len(want))
	}
}

// TestCompactionKeepsLatestPerKey: a compacted topic of
// SLUICE_COMPACTION_RECORDS records (default 100,000) over a hundredth as
// many keys, a tenth of the keys ending in a tombstone, is cleaned down to
// exactly the latest record per key, tombstones included (delete.retention.ms
// has not passed), in offset order; kcat (librdkafka) reads the result.
func TestCompactionKeepsLatestPerKey(t *testing.T) {
	n := envInt(t, "SLUICE_COMPACTION_RECORDS", 100_000)
	keys := max(n/100, 1)
	b := startBroker(t, "--cleaner-interval=200ms", "--cleaner-bytes-per-second=-1")
	segBytes, ratio := "262144", "0.01"
	b.createTopic(t, "changelog", 1, map[string]*string{
		"cleanup.policy": strPtr("compact"), "segment.bytes": &segBytes, "min.cleanable.dirty.ratio": &ratio,
	})
	began := time.Now()
	want := produceKeyed(t, b, "changelog", n, keys)
	t.Logf("produced %d records over %d keys in %v", n, keys, time.Since(began))

	began = time.Now()
	var recs []*kgo.Record
	waitFor(t, 5*time.Minute, "the cleaner to leave one record per key", func() bool {
		recs = readTopic(t, b, "changelog")
		return len(recs) == len(want)
	})
	t.Logf("compacted to %d records in %v", len(recs), time.Since(began))
	checkCompacted(t, recs, want, true)

	// librdkafka reads the compacted topic across its gaps.
	needTool(t, kcatPath)
	r := b.kcat(t, "", "-C", "-t", "changelog", "-p", "0", "-o", "beginning", "-e", "-J").must(t, b, "kcat consume compacted")
	lines := splitLines(r.Stdout)
	if len(lines) != len(want) {
		t.Fatalf("kcat read %d records, want %d", len(lines), len(want))
	}
	for _, line := range lines {
		var rec kcatJSONRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("kcat -J line %.100q: %v", line, err)
		}
		if rec.Key == nil || want[*rec.Key].offset != rec.Offset {
			t.Fatalf("kcat read offset %d key %v, not a key's latest record", rec.Offset, rec.Key)
		}
	}
}

// TestCompactionKill9MidClean kills the broker (SIGKILL) while the
// (throttled) cleaner is rewriting segments, SLUICE_COMPACTION_KILLS times
// (default 3): after each restart no temporary file is left, the log reads
// in offset order with every key's latest record, and at the end the
// cleaner finishes the job exactly.
func TestCompactionKill9MidClean(t *testing.T) {
	kills := envInt(t, "SLUICE_COMPACTION_KILLS", 3)
	b := startBroker(t, "--cleaner-interval=100ms", "--cleaner-bytes-per-second=262144")
	segBytes, ratio := "65536", "0.01"
	b.createTopic(t, "kv", 1, map[string]*string{
		"cleanup.policy": strPtr("compact"), "segment.bytes": &segBytes, "min.cleanable.dirty.ratio": &ratio,
	})
	want := produceKeyed(t, b, "kv", 40_000, 4000)
	dir := filepath.Join(b.DataDir, "topics", "kv-0")
	tmpFiles := func() []string {
		names, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
		return names
	}
	base := b.extra
	for i := range kills {
		waitFor(t, time.Minute, "a cleaned segment being written", func() bool { return len(tmpFiles()) > 0 })
		b.Kill()
		t.Logf("kill %d: %d temporary files left by the dead broker", i, len(tmpFiles()))
		// Restart with the cleaner idle, to see what recovery left.
		b.extra = append(append([]string(nil), base...), "--cleaner-interval=1h")
		b.Restart()
		if left := tmpFiles(); len(left) > 0 {
			t.Fatalf("kill %d: temporary files after recovery: %v", i, left)
		}
		checkCompacted(t, readTopic(t, b, "kv"), want, false)
		b.Stop()
		b.extra = base
		b.Restart()
	}
	b.Stop()
	b.extra = append(b.extra, "--cleaner-bytes-per-second=-1")
	b.Restart()
	waitFor(t, 2*time.Minute, "the cleaner to finish after the kills", func() bool {
		return len(readTopic(t, b, "kv")) == len(want)
	})
	checkCompacted(t, readTopic(t, b, "kv"), want, true)
	// Stopped first: a running broker writes its segments' summaries
	// (.sidecar) through temporary files from time to time.
	b.Stop()
	if left := tmpFiles(); len(left) > 0 {
		t.Fatalf("temporary files left after a clean stop: %v", left)
	}
}

func strPtr(s string) *string { return &s }
