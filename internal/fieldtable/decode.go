package fieldtable

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Read decodes a length-prefixed field table from the front of b and
// returns it with the number of bytes consumed. An empty table decodes as a
// non-nil empty Table. Errors wrap ErrMalformed.
func Read(b []byte) (t Table, n int, err error) {
	d := decoder{b: b}
	t = d.table(1)
	if d.err != nil {
		return nil, 0, d.err
	}
	return t, d.off, nil
}

// ReadArray decodes a length-prefixed field array (the body of an 'A' value)
// from the front of b. An empty array decodes as a non-nil empty slice.
// Errors wrap ErrMalformed.
func ReadArray(b []byte) (a []any, n int, err error) {
	d := decoder{b: b}
	a = d.array(1)
	if d.err != nil {
		return nil, 0, d.err
	}
	return a, d.off, nil
}

// ReadValue decodes one type letter and its value from the front of b.
// Errors wrap ErrMalformed.
func ReadValue(b []byte) (v any, n int, err error) {
	d := decoder{b: b}
	v = d.value(0)
	if d.err != nil {
		return nil, 0, d.err
	}
	return v, d.off, nil
}

// decoder reads from b with a sticky error: after the first failure every
// read returns zero values, and the caller checks err once.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

// take returns the next n bytes, or nil after recording an error when fewer
// than n remain. The length is checked before anything is allocated.
func (d *decoder) take(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("%s needs %d bytes at offset %d, %d remain", what, n, d.off, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) u8(what string) uint8 {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if p := d.take(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// sub returns a decoder over the next length-prefixed region.
func (d *decoder) sub(what string) decoder {
	n := d.u32(what + " length")
	return decoder{b: d.take(uint64(n), what), err: d.err}
}

// table decodes a length-prefixed table at nesting depth depth.
func (d *decoder) table(depth int) Table {
	if depth > MaxDepth {
		d.fail("tables nested deeper than %d", MaxDepth)
		return nil
	}
	s := d.sub("table")
	if s.err != nil {
		d.err = s.err
		return nil
	}
	t := make(Table)
	for s.off < len(s.b) && s.err == nil {
		kn := s.u8("key length")
		k := string(s.take(uint64(kn), "key"))
		v := s.value(depth)
		if s.err == nil {
			t[k] = v
		}
	}
	if s.err != nil {
		d.err = s.err
		return nil
	}
	return t
}

// array decodes a length-prefixed array at nesting depth depth.
func (d *decoder) array(depth int) []any {
	if depth > MaxDepth {
		d.fail("arrays nested deeper than %d", MaxDepth)
		return nil
	}
	s := d.sub("array")
	if s.err != nil {
		d.err = s.err
		return nil
	}
	a := []any{}
	for s.off < len(s.b) && s.err == nil {
		v := s.value(depth)
		if s.err == nil {
			a = append(a, v)
		}
	}
	if s.err != nil {
		d.err = s.err
		return nil
	}
	return a
}

// value decodes a type letter and value held in a container at depth depth.
func (d *decoder) value(depth int) any {
	typ := d.u8("type letter")
	if d.err != nil {
		return nil
	}
	switch typ {
	case 't':
		b := d.u8("bool")
		if b > 1 {
			// Any non-zero octet is true on the wire; normalising keeps
			// decode(encode(decode(x))) equal to decode(x).
			b = 1
		}
		return b == 1
	case 'b':
		return int8(d.u8("int8"))
	case 'B':
		return d.u8("uint8")
	case 's':
		return int16(d.u16("int16"))
	case 'u':
		return d.u16("uint16")
	case 'I':
		return int32(d.u32("int32"))
	case 'i':
		return d.u32("uint32")
	case 'l':
		return int64(d.u64("int64"))
	case 'f':
		return math.Float32frombits(d.u32("float32"))
	case 'd':
		return math.Float64frombits(d.u64("float64"))
	case 'D':
		scale := d.u8("decimal scale")
		return Decimal{Scale: scale, Value: int32(d.u32("decimal value"))}
	case 'S':
		n := d.u32("long string length")
		return string(d.take(uint64(n), "long string"))
	case 'x':
		n := d.u32("byte array length")
		p := d.take(uint64(n), "byte array")
		if d.err != nil {
			return nil
		}
		return append([]byte{}, p...)
	case 'A':
		return d.array(depth + 1)
	case 'T':
		sec := d.u64("timestamp")
		return time.Unix(int64(sec), 0).UTC()
	case 'F':
		return d.table(depth + 1)
	case 'V':
		return nil
	default:
		d.off--
		d.fail("unknown type letter %q at offset %d", typ, d.off)
		return nil
	}
}
