package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

func TestParseMaxAge(t *testing.T) {
	good := map[string]time.Duration{
		"1s": time.Second, "30m": 30 * time.Minute, "1h": time.Hour, "7D": 7 * 24 * time.Hour,
		"2M": 60 * 24 * time.Hour, "1Y": 365 * 24 * time.Hour, "0010s": 10 * time.Second,
	}
	for in, want := range good {
		if got, err := ParseMaxAge(in); err != nil || got != want {
			t.Errorf("ParseMaxAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "h", "0h", "10", "10d", "10H", "1.5h", "-1h", " 1h", "1h ", "1hh", "99999999999999999999s", "300Y"} {
		if got, err := ParseMaxAge(in); err == nil {
			t.Errorf("ParseMaxAge(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseStreamOffset(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name    string
		v       any
		present bool
		want    queue.StreamStart
	}{
		{"absent", nil, false, queue.StreamStart{Kind: queue.StartNext}},
		{"first", "first", true, queue.StreamStart{Kind: queue.StartFirst}},
		{"last", "last", true, queue.StreamStart{Kind: queue.StartLast}},
		{"next", "next", true, queue.StreamStart{Kind: queue.StartNext}},
		{"first as bytes", []byte("first"), true, queue.StreamStart{Kind: queue.StartFirst}},
		{"long", int64(42), true, queue.StreamStart{Kind: queue.StartOffset, Offset: 42}},
		{"short", int16(7), true, queue.StreamStart{Kind: queue.StartOffset, Offset: 7}},
		{"zero", int32(0), true, queue.StreamStart{Kind: queue.StartOffset, Offset: 0}},
		{"timestamp", time.Unix(1_600_000_000, 0), true, queue.StreamStart{Kind: queue.StartTimestamp, Time: time.Unix(1_600_000_000, 0)}},
		{"interval", "30m", true, queue.StreamStart{Kind: queue.StartTimestamp, Time: now.Add(-30 * time.Minute)}},
		{"interval days", "2D", true, queue.StreamStart{Kind: queue.StartTimestamp, Time: now.Add(-48 * time.Hour)}},
	}
	for _, tc := range cases {
		got, err := ParseStreamOffset(tc.v, tc.present, now)
		if err != nil || got.Kind != tc.want.Kind || got.Offset != tc.want.Offset || !got.Time.Equal(tc.want.Time) {
			t.Errorf("%s: ParseStreamOffset(%#v) = %+v, %v; want %+v", tc.name, tc.v, got, err, tc.want)
		}
	}
	for _, v := range []any{"FIRST", "begin", "", "0h", int64(-1), 1.5, true, nil, fieldtable.Table{}, []byte("30m"), []any{"first"}} {
		if got, err := ParseStreamOffset(v, true, now); !errors.Is(err, ErrPreconditionFailed) {
			t.Errorf("ParseStreamOffset(%#v) = %+v, %v; want PRECONDITION_FAILED", v, got, err)
		}
	}
}

func TestParseStreamArgs(t *testing.T) {
	stream := func(kv ...any) fieldtable.Table {
		t := fieldtable.Table{"x-queue-type": "stream"}
		for i := 0; i < len(kv); i += 2 {
			t[kv[i].(string)] = kv[i+1]
		}
		return t
	}
	qa, err := parseQueueArgs(stream("x-max-length-bytes", int64(1000), "x-max-age", "7D",
		"x-stream-max-segment-size-bytes", int32(500), "x-initial-cluster-size", int8(3), "x-custom", "ignored"), true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if qa.queueType != QueueTypeStream || qa.stream.MaxBytes != 1000 || qa.stream.MaxAge != 7*24*time.Hour || qa.stream.SegmentBytes != 500 {
		t.Fatalf("parsed %+v", qa)
	}
	if qa, err := parseQueueArgs(stream(), true, false, false); err != nil || qa.stream.MaxBytes != -1 || qa.stream.MaxAge != 0 {
		t.Fatalf("plain stream: %+v, %v", qa, err)
	}

	refused := []struct {
		name                          string
		args                          fieldtable.Table
		durable, exclusive, autoDelet bool
	}{
		{"non-durable", stream(), false, false, false},
		{"exclusive", stream(), true, true, false},
		{"auto-delete", stream(), true, false, true},
		{"x-message-ttl", stream("x-message-ttl", int32(10)), true, false, false},
		{"x-max-length", stream("x-max-length", int32(10)), true, false, false},
		{"x-dead-letter-exchange", stream("x-dead-letter-exchange", "dlx"), true, false, false},
		{"x-max-priority", stream("x-max-priority", int32(3)), true, false, false},
		{"x-overflow", stream("x-overflow", "drop-head"), true, false, false},
		{"x-expires", stream("x-expires", int32(1000)), true, false, false},
		{"x-single-active-consumer", stream("x-single-active-consumer", true), true, false, false},
		{"bad max-age", stream("x-max-age", "7d"), true, false, false},
		{"max-age not a string", stream("x-max-age", int32(7)), true, false, false},
		{"negative max-length-bytes", stream("x-max-length-bytes", int64(-1)), true, false, false},
		{"max-length-bytes not an integer", stream("x-max-length-bytes", "10"), true, false, false},
		{"segment too large", stream("x-stream-max-segment-size-bytes", int64(3_000_000_001)), true, false, false},
	}
	for _, tc := range refused {
		if _, err := parseQueueArgs(tc.args, tc.durable, tc.exclusive, tc.autoDelet); !errors.Is(err, ErrPreconditionFailed) {
			t.Errorf("%s: %v, want PRECONDITION_FAILED", tc.name, err)
		}
	}
}

func TestStreamEquivalenceKeys(t *testing.T) {
	keys := equivalenceKeys(QueueTypeStream)
	if _, ok := argsEquivalent(fieldtable.Table{"x-max-age": "1h"}, fieldtable.Table{"x-max-age": "2h"}, keys); ok {
		t.Fatal("a stream redeclared with another x-max-age is equivalent")
	}
	if _, ok := argsEquivalent(fieldtable.Table{"x-max-age": "1h"}, fieldtable.Table{"x-max-age": "2h"}, equivalenceKeys(QueueTypeClassic)); !ok {
		t.Fatal("classic queues compare x-max-age")
	}
	if len(equivalenceArgs) != len(equivalenceKeys(QueueTypeClassic)) {
		t.Fatal("equivalenceKeys changed the shared list")
	}
}

// FuzzParseMaxAge: any string from the network is parsed or refused,
// never panics, and what parses is a positive age.
func FuzzParseMaxAge(f *testing.F) {
	for _, s := range []string{"7D", "1h", "30m", "0s", "", "9999999999999999999Y", "1", "h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseMaxAge(s)
		if err == nil && d <= 0 {
			t.Fatalf("ParseMaxAge(%q) = %v without error", s, d)
		}
		st, err := ParseStreamOffset(s, true, time.Unix(1_700_000_000, 0))
		if err == nil && st.Kind == queue.StartTimestamp && d <= 0 {
			t.Fatalf("ParseStreamOffset(%q) = %+v, but it is not an age", s, st)
		}
	})
}
