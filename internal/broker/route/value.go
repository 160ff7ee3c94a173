package route

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
)

// Argument and header values are what an AMQP field-table decoder yields:
// nil, bool, the sized integer types, float32, float64, string, []byte,
// time.Time, []any and map[string]any, possibly under named types (a
// field-table type declared as map[string]any, say). This file compares
// them the way RabbitMQ compares decoded values, and turns argument tables
// into canonical strings that identify bindings.

// normalize returns a copy of v that shares no mutable memory with it and
// uses only unnamed types: tables become map[string]any, arrays []any,
// named scalars their underlying builtin type.
func normalize(v any) any {
	switch v := v.(type) {
	case nil, bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64,
		int, uint, float32, float64, string, time.Time:
		return v
	case []byte:
		return slices.Clone(v)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = normalize(x)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = normalize(x)
		}
		return a
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool()
	case reflect.String:
		return rv.String()
	case reflect.Int8:
		return int8(rv.Int())
	case reflect.Int16:
		return int16(rv.Int())
	case reflect.Int32:
		return int32(rv.Int())
	case reflect.Int64:
		return rv.Int()
	case reflect.Int:
		return int(rv.Int())
	case reflect.Uint8:
		return uint8(rv.Uint())
	case reflect.Uint16:
		return uint16(rv.Uint())
	case reflect.Uint32:
		return uint32(rv.Uint())
	case reflect.Uint64:
		return rv.Uint()
	case reflect.Uint:
		return uint(rv.Uint())
	case reflect.Float32:
		return float32(rv.Float())
	case reflect.Float64:
		return rv.Float()
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = normalize(it.Value().Interface())
		}
		return m
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return slices.Clone(rv.Bytes())
		}
		a := make([]any, rv.Len())
		for i := range a {
			a[i] = normalize(rv.Index(i).Interface())
		}
		return a
	}
	return v
}

// equalValues reports whether header value b equals binding value a:
// numbers by value across types, strings and byte slices by content,
// times by instant, tables and arrays element by element.
func equalValues(a, b any) bool {
	if x, ok := toNumber(a); ok {
		y, ok := toNumber(b)
		return ok && x.equal(y)
	}
	if as, ab, aIsBytes, ok := toText(a); ok {
		bs, bb, bIsBytes, ok := toText(b)
		switch {
		case !ok:
			return false
		case aIsBytes && bIsBytes:
			return bytes.Equal(ab, bb)
		case aIsBytes:
			return string(ab) == bs
		case bIsBytes:
			return string(bb) == as
		}
		return as == bs
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if at, ok := a.(time.Time); ok {
		bt, ok := b.(time.Time)
		return ok && at.Equal(bt)
	}
	ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
	if isTable(ra) || isTable(rb) {
		return isTable(ra) && isTable(rb) && equalTables(ra, rb)
	}
	if isArray(ra) || isArray(rb) {
		if !isArray(ra) || !isArray(rb) || ra.Len() != rb.Len() {
			return false
		}
		for i := range ra.Len() {
			if !equalValues(ra.Index(i).Interface(), rb.Index(i).Interface()) {
				return false
			}
		}
		return true
	}
	if ra.Kind() == reflect.Bool && rb.Kind() == reflect.Bool {
		return ra.Bool() == rb.Bool()
	}
	return reflect.DeepEqual(a, b)
}

func isTable(v reflect.Value) bool {
	return v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String
}

// isArray excludes byte slices, which toText has already dealt with.
func isArray(v reflect.Value) bool {
	return v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8
}

func equalTables(a, b reflect.Value) bool {
	if a.Len() != b.Len() {
		return false
	}
	bKey := b.Type().Key()
	for it := a.MapRange(); it.Next(); {
		bv := b.MapIndex(reflect.ValueOf(it.Key().String()).Convert(bKey))
		if !bv.IsValid() || !equalValues(it.Value().Interface(), bv.Interface()) {
			return false
		}
	}
	return true
}

// toText returns the contents of a string or byte slice (named or not)
// without copying it.
func toText(v any) (s string, b []byte, isBytes, ok bool) {
	switch v := v.(type) {
	case string:
		return v, nil, false, true
	case []byte:
		return "", v, true, true
	case nil, bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64,
		int, uint, float32, float64, time.Time, map[string]any, []any:
		return "", nil, false, false
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.String:
		return rv.String(), nil, false, true
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8:
		return "", rv.Bytes(), true, true
	}
	return "", nil, false, false
}

// number is an integer or floating-point value of any Go type.
type number struct {
	kind uint8 // signed, unsigned or float
	i    int64
	u    uint64
	f    float64
}

const (
	signed = iota
	unsigned
	float
)

func toNumber(v any) (number, bool) {
	switch v := v.(type) {
	case int8:
		return number{kind: signed, i: int64(v)}, true
	case int16:
		return number{kind: signed, i: int64(v)}, true
	case int32:
		return number{kind: signed, i: int64(v)}, true
	case int64:
		return number{kind: signed, i: v}, true
	case int:
		return number{kind: signed, i: int64(v)}, true
	case uint8:
		return number{kind: unsigned, u: uint64(v)}, true
	case uint16:
		return number{kind: unsigned, u: uint64(v)}, true
	case uint32:
		return number{kind: unsigned, u: uint64(v)}, true
	case uint64:
		return number{kind: unsigned, u: v}, true
	case uint:
		return number{kind: unsigned, u: uint64(v)}, true
	case float32:
		return number{kind: float, f: float64(v)}, true
	case float64:
		return number{kind: float, f: v}, true
	case nil, bool, string, []byte, time.Time, map[string]any, []any:
		return number{}, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return number{kind: signed, i: rv.Int()}, true
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Uintptr:
		return number{kind: unsigned, u: rv.Uint()}, true
	case reflect.Float32, reflect.Float64:
		return number{kind: float, f: rv.Float()}, true
	}
	return number{}, false
}

// equal compares exactly: no rounding of large integers through float64.
func (x number) equal(y number) bool {
	if x.kind > y.kind {
		x, y = y, x
	}
	switch {
	case x.kind == y.kind:
		return x == y
	case x.kind == signed && y.kind == unsigned:
		return x.i >= 0 && uint64(x.i) == y.u
	case x.kind == signed: // y is a float
		// -2^63 and 2^63 are exact float64 values.
		return y.f == math.Trunc(y.f) && y.f >= math.MinInt64 && y.f < -math.MinInt64 && int64(y.f) == x.i
	default: // unsigned and float
		return y.f == math.Trunc(y.f) && y.f >= 0 && y.f < 2*-math.MinInt64 && uint64(y.f) == x.u
	}
}

// fingerprint encodes an argument table canonically, so that equal tables
// (keys in any order, named or unnamed map types) give equal strings and
// unequal ones differ. Unlike equalValues it keeps Go kinds apart: int32(1)
// and int64(1) are different arguments, as RabbitMQ's typed tables are.
func fingerprint(args map[string]any) string {
	if len(args) == 0 {
		return ""
	}
	return string(appendTable(nil, args))
}

// keyFingerprint identifies a binding by key and arguments together.
func keyFingerprint(key string, args map[string]any) string {
	b := appendString(nil, 's', key)
	if len(args) > 0 {
		b = appendTable(b, args)
	}
	return string(b)
}

func appendString(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendTable(b []byte, m map[string]any) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, 'T')
	b = strconv.AppendInt(b, int64(len(keys)), 10)
	b = append(b, '{')
	for _, k := range keys {
		b = appendString(b, 'k', k)
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

func appendValue(b []byte, v any) []byte {
	switch v := normalize(v).(type) {
	case nil:
		return append(b, 'V')
	case bool:
		if v {
			return append(b, "Bt"...)
		}
		return append(b, "Bf"...)
	case int8, int16, int32, int64, int:
		n, _ := toNumber(v)
		b = fmt.Appendf(b, "%T", v)
		b = append(b, '=')
		return strconv.AppendInt(b, n.i, 10)
	case uint8, uint16, uint32, uint64, uint:
		n, _ := toNumber(v)
		b = fmt.Appendf(b, "%T", v)
		b = append(b, '=')
		return strconv.AppendUint(b, n.u, 10)
	case float32:
		b = append(b, "f32="...)
		return strconv.AppendUint(b, uint64(math.Float32bits(v)), 16)
	case float64:
		b = append(b, "f64="...)
		return strconv.AppendUint(b, math.Float64bits(v), 16)
	case string:
		return appendString(b, 's', v)
	case []byte:
		return appendString(b, 'x', string(v))
	case time.Time:
		b = append(b, 't')
		b = strconv.AppendInt(b, v.Unix(), 10)
		b = append(b, '.')
		return strconv.AppendInt(b, int64(v.Nanosecond()), 10)
	case map[string]any:
		return appendTable(b, v)
	case []any:
		b = append(b, 'A')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, '[')
		for _, x := range v {
			b = appendValue(b, x)
		}
		return append(b, ']')
	default:
		// Decimals and anything else a decoder may produce: %#v is
		// deterministic for structs and scalars; length-prefix it.
		return appendString(b, '?', fmt.Sprintf("%T:%#v", v, v))
	}
}
