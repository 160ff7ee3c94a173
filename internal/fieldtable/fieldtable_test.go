package fieldtable

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// everyType holds one value of every decoded type, with non-zero values.
func everyType() Table {
	return Table{
		"bool":    true,
		"int8":    int8(-5),
		"uint8":   uint8(250),
		"int16":   int16(-30000),
		"uint16":  uint16(60000),
		"int32":   int32(-2000000000),
		"uint32":  uint32(4000000000),
		"int64":   int64(-9000000000000000000),
		"float32": float32(1.5),
		"float64": float64(-2.25),
		"decimal": Decimal{Scale: 2, Value: -12345},
		"string":  "héllo\x00world",
		"bytes":   []byte{0, 1, 2, 0xff},
		"array":   []any{int32(1), "two", nil, []any{false}},
		"time":    time.Unix(1700000000, 0).UTC(),
		"table":   Table{"nested": Table{"deep": uint8(1)}},
		"void":    nil,
		"empty":   Table{},
	}
}

func TestRoundTripEveryType(t *testing.T) {
	in := everyType()
	b, err := Append([]byte("prefix"), in)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := Read(append(b[len("prefix"):], "trailing"...))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(b)-len("prefix") {
		t.Errorf("consumed %d bytes, want %d", n, len(b)-len("prefix"))
	}
	if !Equal(in, got) {
		t.Errorf("round trip changed the table:\n in  %#v\n out %#v", in, got)
	}
	// Decoded values have exactly the documented Go types.
	for k, v := range in {
		if v == nil {
			if got[k] != nil {
				t.Errorf("%s: got %T, want nil", k, got[k])
			}
			continue
		}
		if want, gotT := reflect.TypeOf(v), reflect.TypeOf(got[k]); want != gotT {
			t.Errorf("%s: decoded as %v, want %v", k, gotT, want)
		}
	}
}

// TestGoldenValueBytes pins the type letters to RabbitMQ's errata, which
// differs from the letters printed in the 0-9-1 specification.
func TestGoldenValueBytes(t *testing.T) {
	tests := []struct {
		v    any
		want string // hex
	}{
		{true, "7401"},
		{false, "7400"},
		{int8(-2), "62fe"},
		{uint8(0xab), "42ab"},
		{int16(-2), "73fffe"},
		{uint16(0xabcd), "75abcd"},
		{int32(-2), "49fffffffe"},
		{uint32(0xdeadbeef), "69deadbeef"},
		{int64(-2), "6cfffffffffffffffe"},
		{float32(1), "663f800000"},
		{float64(1), "643ff0000000000000"},
		{Decimal{Scale: 3, Value: 258}, "440300000102"},
		{"ab", "53000000026162"},
		{[]byte{1, 2}, "78000000020102"},
		{[]any{uint8(7), nil}, "4100000003420756"},
		{time.Unix(0x01020304, 0), "540000000001020304"},
		{Table{"k": true}, "4600000004016b7401"},
		{nil, "56"},
		// Convenience encodings.
		{5, "4900000005"},
		{-1 << 40, "6cffffff0000000000"},
		{uint(7), "4900000007"},
		{uint64(7), "6c0000000000000007"},
		{map[string]any{}, "4600000000"},
	}
	for _, tt := range tests {
		got, err := AppendValue(nil, tt.v)
		if err != nil {
			t.Errorf("AppendValue(%#v): %v", tt.v, err)
			continue
		}
		if hex.EncodeToString(got) != tt.want {
			t.Errorf("AppendValue(%#v) = %x, want %s", tt.v, got, tt.want)
		}
		v, n, err := ReadValue(got)
		if err != nil || n != len(got) || !Equal(v, tt.v) {
			t.Errorf("ReadValue(%x) = %#v, %d, %v; want %#v", got, v, n, err, tt.v)
		}
	}
}

func TestGoldenTableSortedKeys(t *testing.T) {
	got, err := Append(nil, Table{"b": uint8(2), "a": uint8(1)})
	if err != nil {
		t.Fatal(err)
	}
	const want = "00000008" + "0161" + "4201" + "0162" + "4202"
	if hex.EncodeToString(got) != want {
		t.Errorf("got %x, want %s", got, want)
	}
	if got, _ := Append(nil, nil); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("nil table = %x, want 00000000", got)
	}
}

func TestEncodeErrors(t *testing.T) {
	deep := Table{}
	for range MaxDepth {
		deep = Table{"d": deep}
	}
	deepArr := []any{}
	for range MaxDepth {
		deepArr = []any{deepArr}
	}
	tests := []struct {
		name string
		t    Table
		want error
	}{
		{"key too long", Table{strings.Repeat("k", 256): 1}, ErrKeyTooLong},
		{"unsupported type", Table{"k": struct{}{}}, ErrUnsupportedType},
		{"unsupported nested", Table{"k": []any{Table{"x": complex(1, 2)}}}, ErrUnsupportedType},
		{"uint64 overflow", Table{"k": uint64(math.MaxUint64)}, ErrUnsupportedType},
		{"too deep table", deep, ErrTooDeep},
		{"too deep array", Table{"a": deepArr}, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := Append(dst, tt.t)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append error = %v, want %v", err, tt.want)
			}
			if string(got) != "keep" {
				t.Errorf("Append changed dst on error: %q", got)
			}
			if err := Validate(tt.t); !errors.Is(err, tt.want) {
				t.Errorf("Validate error = %v, want %v", err, tt.want)
			}
		})
	}
	// The deepest allowed nesting still encodes and decodes.
	ok := Table{}
	for range MaxDepth - 1 {
		ok = Table{"d": ok}
	}
	b, err := Append(nil, ok)
	if err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	if err := Validate(ok); err != nil {
		t.Fatalf("Validate depth %d: %v", MaxDepth, err)
	}
	if _, _, err := Read(b); err != nil {
		t.Fatalf("Read depth %d: %v", MaxDepth, err)
	}
}

func TestReadMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string // hex
	}{
		{"empty", ""},
		{"short length", "000000"},
		{"length beyond input", "00000010"},
		{"huge length", "ffffffff"},
		{"key beyond table", "00000002" + "05" + "61"},
		{"missing type letter", "00000002" + "0161"},
		{"unknown type letter", "00000003" + "0161" + "7a"},
		{"truncated int32", "00000005" + "0161" + "49" + "0000"},
		{"long string beyond table", "0000000a" + "0161" + "53" + "ffffffff" + "0000"},
		{"byte array beyond input", "00000007" + "0161" + "78" + "00000005"},
		{"nested table overruns parent", "00000007" + "0161" + "46" + "00000005"},
		{"array overruns parent", "00000007" + "0161" + "41" + "00000001"},
		{"bad value in array", "00000008" + "0161" + "41" + "00000001" + "3f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := hex.DecodeString(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Read(in); !errors.Is(err, ErrMalformed) {
				t.Errorf("Read(%s) error = %v, want ErrMalformed", tt.in, err)
			}
		})
	}
	t.Run("too deep", func(t *testing.T) {
		// Build MaxDepth+1 nested tables with correct length prefixes.
		b := []byte{0, 0, 0, 0}
		for range MaxDepth {
			inner := b
			b = []byte{0, 0, 0, 0, 1, 'd', 'F'}
			b = append(b, inner...)
			n := len(b) - 4
			b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		}
		if _, _, err := Read(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Read of %d nested tables: %v, want ErrMalformed", MaxDepth+1, err)
		}
	})
}

func TestReadDoesNotAlias(t *testing.T) {
	b, _ := Append(nil, Table{"s": "abc", "x": []byte("def")})
	got, _, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if got["s"] != "abc" || !bytes.Equal(got["x"].([]byte), []byte("def")) {
		t.Errorf("decoded values changed with the input buffer: %#v", got)
	}
}

func TestReadArray(t *testing.T) {
	in := []any{int32(1), "x", Table{"a": nil}}
	b, err := AppendArray(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := ReadArray(b)
	if err != nil || n != len(b) || !Equal(got, in) {
		t.Errorf("ReadArray = %#v, %d, %v", got, n, err)
	}
}

func TestEqual(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		a, b any
		want bool
	}{
		{int8(1), uint64(1), true},
		{int32(-1), int64(-1), true},
		{int64(-1), uint64(math.MaxUint64), false},
		{int(math.MinInt64), int64(math.MinInt64), true},
		{uint32(5), 5, true},
		{int32(5), float64(5), false},
		{float32(1.5), float64(1.5), true},
		{nan, float32(nan), true},
		{"a", []byte("a"), false},
		{[]byte("a"), []byte("a"), true},
		{nil, nil, true},
		{nil, false, false},
		{Table{"a": int8(1)}, map[string]any{"a": 1}, true},
		{Table{"a": int8(1)}, Table{"a": 2}, false},
		{Table{"a": nil}, Table{"b": nil}, false},
		{Table{}, Table(nil), true},
		{[]any{1, "x"}, []any{int64(1), "x"}, true},
		{[]any{1}, []any{1, 2}, false},
		{time.Unix(5, 0), time.Unix(5, 0).UTC(), true},
		{Decimal{1, 2}, Decimal{1, 2}, true},
		{Decimal{1, 2}, Decimal{2, 2}, false},
		{struct{}{}, struct{}{}, false},
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%#v, %#v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := Equal(tt.b, tt.a); got != tt.want {
			t.Errorf("Equal(%#v, %#v) = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	seed, _ := Append(nil, everyType())
	f.Add(seed)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 3, 1, 'a', 'V'})
	f.Fuzz(func(t *testing.T, b []byte) {
		tbl, n, err := Read(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		enc, err := Append(nil, tbl)
		if err != nil {
			t.Fatalf("decoded table does not encode: %v", err)
		}
		again, m, err := Read(enc)
		if err != nil || m != len(enc) {
			t.Fatalf("re-encoded table does not decode: %d of %d, %v", m, len(enc), err)
		}
		if !Equal(tbl, again) {
			t.Fatalf("round trip changed the table:\n %#v\n %#v", tbl, again)
		}
		if enc2, _ := Append(nil, again); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n %x\n %x", enc, enc2)
		}
	})
}
