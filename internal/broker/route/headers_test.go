package route

import (
	"math"
	"testing"
	"time"
)

// table stands in for a wire package's field-table type.
type table map[string]any

type array []any

type shortstr string

func TestHeadersMatch(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	tests := []struct {
		name    string
		args    map[string]any
		headers map[string]any
		want    bool
	}{
		// x-match all (the default).
		{"all: every arg equal", map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "1", "b": "2", "c": "3"}, true},
		{"all by default", map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "1"}, false},
		{"all explicit", map[string]any{"x-match": "all", "a": "1", "b": "2"}, map[string]any{"a": "1"}, false},
		{"all: value differs", map[string]any{"a": "1"}, map[string]any{"a": "2"}, false},
		{"all: no headers", map[string]any{"a": "1"}, nil, false},
		{"all: nothing to compare matches everything", nil, nil, true},
		{"all: only x- args match everything", map[string]any{"x-match": "all", "x-foo": "bar"}, map[string]any{"a": 1}, true},
		{"all: x- args ignored", map[string]any{"a": "1", "x-foo": "bar"}, map[string]any{"a": "1"}, true},
		{"all: void requires presence", map[string]any{"a": nil}, map[string]any{"a": "anything"}, true},
		{"all: void requires presence, absent", map[string]any{"a": nil}, map[string]any{"b": "x"}, false},
		{"all: void matches void", map[string]any{"a": nil}, map[string]any{"a": nil}, true},
		{"all: void header is not a value", map[string]any{"a": "1"}, map[string]any{"a": nil}, false},
		{"unknown x-match means all", map[string]any{"x-match": "some", "a": "1", "b": "2"}, map[string]any{"a": "1"}, false},
		{"non-string x-match means all", map[string]any{"x-match": int32(1), "a": "1"}, map[string]any{"a": "1"}, true},
		{"x-match as bytes", map[string]any{"x-match": []byte("any"), "a": "1", "b": "2"}, map[string]any{"a": "1"}, true},

		// x-match any.
		{"any: one of two", map[string]any{"x-match": "any", "a": "1", "b": "2"}, map[string]any{"b": "2"}, true},
		{"any: none", map[string]any{"x-match": "any", "a": "1", "b": "2"}, map[string]any{"a": "2", "c": "1"}, false},
		{"any: nothing to compare matches nothing", map[string]any{"x-match": "any"}, map[string]any{"a": "1"}, false},
		{"any: only x- args match nothing", map[string]any{"x-match": "any", "x-a": "1"}, map[string]any{"x-a": "1"}, false},
		{"any: void", map[string]any{"x-match": "any", "a": nil, "b": "2"}, map[string]any{"a": int8(0)}, true},
		{"any: no headers", map[string]any{"x-match": "any", "a": nil}, nil, false},

		// -with-x variants compare x- arguments, but never x-match.
		{"all-with-x", map[string]any{"x-match": "all-with-x", "x-a": "1", "b": "2"}, map[string]any{"x-a": "1", "b": "2"}, true},
		{"all-with-x: x- arg missing", map[string]any{"x-match": "all-with-x", "x-a": "1", "b": "2"}, map[string]any{"b": "2"}, false},
		{"all-with-x: x-match not compared", map[string]any{"x-match": "all-with-x"}, map[string]any{}, true},
		{"any-with-x", map[string]any{"x-match": "any-with-x", "x-a": "1", "b": "2"}, map[string]any{"x-a": "1"}, true},
		{"any-with-x: x-match not compared", map[string]any{"x-match": "any-with-x"}, map[string]any{"x-match": "any-with-x"}, false},

		// Values.
		{"int types compare by value", map[string]any{"a": int32(5)}, map[string]any{"a": int64(5)}, true},
		{"signed and unsigned", map[string]any{"a": uint8(200)}, map[string]any{"a": int16(200)}, true},
		{"negative never equals unsigned", map[string]any{"a": int64(-1)}, map[string]any{"a": uint64(math.MaxUint64)}, false},
		{"int and float", map[string]any{"a": int32(3)}, map[string]any{"a": float64(3)}, true},
		{"int and fractional float", map[string]any{"a": int32(3)}, map[string]any{"a": 3.5}, false},
		{"large int not rounded through float", map[string]any{"a": int64(1<<53 + 1)}, map[string]any{"a": float64(1 << 53)}, false},
		{"uint64 max and float", map[string]any{"a": uint64(math.MaxUint64)}, map[string]any{"a": float64(math.MaxUint64)}, false},
		{"float32 and float64", map[string]any{"a": float32(0.5)}, map[string]any{"a": 0.5}, true},
		{"number and string", map[string]any{"a": int32(1)}, map[string]any{"a": "1"}, false},
		{"bool", map[string]any{"a": true}, map[string]any{"a": true}, true},
		{"bool is not a number", map[string]any{"a": true}, map[string]any{"a": int8(1)}, false},
		{"string equals bytes", map[string]any{"a": "xyz"}, map[string]any{"a": []byte("xyz")}, true},
		{"bytes equal string", map[string]any{"a": []byte("xyz")}, map[string]any{"a": "xyz"}, true},
		{"bytes differ", map[string]any{"a": []byte("xyz")}, map[string]any{"a": []byte("xy")}, false},
		{"named string", map[string]any{"a": "v"}, map[string]any{"a": shortstr("v")}, true},
		{"time", map[string]any{"a": t0}, map[string]any{"a": t0.In(time.FixedZone("X", 3600))}, true},
		{"time differs", map[string]any{"a": t0}, map[string]any{"a": t0.Add(time.Second)}, false},
		{"table vs named table", map[string]any{"a": map[string]any{"n": int32(1), "s": "x"}}, map[string]any{"a": table{"n": int64(1), "s": []byte("x")}}, true},
		{"nested table differs", map[string]any{"a": table{"n": int32(1)}}, map[string]any{"a": map[string]any{"n": int32(2)}}, false},
		{"table vs array", map[string]any{"a": table{}}, map[string]any{"a": []any{}}, false},
		{"array", map[string]any{"a": []any{int8(1), "x", table{"k": nil}}}, map[string]any{"a": array{int64(1), []byte("x"), map[string]any{"k": nil}}}, true},
		{"array length", map[string]any{"a": []any{int8(1)}}, map[string]any{"a": []any{int8(1), int8(1)}}, false},
		{"binding arg of named table type", map[string]any{"a": table{"k": "v"}}, map[string]any{"a": map[string]any{"k": "v"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewHeaders[string]()
			m.Add("ignored", tt.args, "q")
			got := len(matched(t, m, "any routing key", tt.headers)) == 1
			if got != tt.want {
				t.Errorf("args %v, headers %v: match = %v, want %v", tt.args, tt.headers, got, tt.want)
			}
		})
	}
}

// The field-table type of a wire package converts to map[string]any.
func TestHeadersNamedTableHeaders(t *testing.T) {
	m := NewHeaders[string]()
	m.Add("", table{"a": int32(1)}, "q")
	h := table{"a": uint8(1)}
	if got := matched(t, m, "", h); len(got) != 1 {
		t.Errorf("Match = %v, want [q]", got)
	}
	if !m.Remove("", map[string]any{"a": int32(1)}, "q") {
		t.Error("a named table and a map with the same contents name different bindings")
	}
}

func TestHeadersVisitsOnce(t *testing.T) {
	m := NewHeaders[string]()
	m.Add("", map[string]any{"a": "1"}, "q")
	m.Add("", map[string]any{"b": "2"}, "q")
	m.Add("", nil, "q")
	m.Add("", map[string]any{"x-match": "any", "a": "1", "b": "2"}, "r")
	m.Add("", map[string]any{"a": "2"}, "s")
	got := matched(t, m, "", map[string]any{"a": "1", "b": "2"})
	if want := []string{"q", "r"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Match = %v, want %v", got, want)
	}
	if m.Len() != 5 {
		t.Errorf("Len = %d, want 5", m.Len())
	}
	m.Remove("", map[string]any{"a": "1"}, "q")
	m.Remove("", map[string]any{"b": "2"}, "q")
	m.Remove("", nil, "q")
	if _, ok := m.(*headersMatcher[string]).byDest["q"]; ok {
		t.Error("destination with no bindings left is still held")
	}
}

func TestValidateHeadersArgs(t *testing.T) {
	for _, ok := range []map[string]any{
		nil,
		{"a": "1"},
		{"x-match": "all"},
		{"x-match": "any"},
		{"x-match": "all-with-x"},
		{"x-match": []byte("any-with-x")},
	} {
		if err := ValidateHeadersArgs(ok); err != nil {
			t.Errorf("ValidateHeadersArgs(%v) = %v", ok, err)
		}
	}
	for _, bad := range []map[string]any{
		{"x-match": "ALL"},
		{"x-match": ""},
		{"x-match": int32(0)},
		{"x-match": nil},
	} {
		if err := ValidateHeadersArgs(bad); err == nil {
			t.Errorf("ValidateHeadersArgs(%v) = nil, want an error", bad)
		}
	}
}

func TestFingerprint(t *testing.T) {
	same := [][2]map[string]any{
		{nil, {}},
		{{"a": int32(1), "b": "x"}, {"b": "x", "a": int32(1)}},
		{{"t": table{"k": []any{"v"}}}, {"t": map[string]any{"k": array{"v"}}}},
		{{"s": shortstr("v")}, {"s": "v"}},
	}
	for _, p := range same {
		if fingerprint(p[0]) != fingerprint(p[1]) {
			t.Errorf("fingerprint(%v) != fingerprint(%v)", p[0], p[1])
		}
	}
	differ := [][2]map[string]any{
		{nil, {"a": nil}},
		{{"a": int32(1)}, {"a": int64(1)}},
		{{"a": "x"}, {"a": []byte("x")}},
		{{"a": "1", "b": "2"}, {"a": "1b1:2"}},
		{{"ab": ""}, {"a": "b"}},
		{{"a": []any{"x", "y"}}, {"a": []any{"xy"}}},
		{{"a": 0.0}, {"a": math.Copysign(0, -1)}},
	}
	for _, p := range differ {
		if fingerprint(p[0]) == fingerprint(p[1]) {
			t.Errorf("fingerprint(%v) == fingerprint(%v) = %q", p[0], p[1], fingerprint(p[0]))
		}
	}
	if keyFingerprint("a", nil) == keyFingerprint("b", nil) {
		t.Error("keyFingerprint ignores the key")
	}
}
