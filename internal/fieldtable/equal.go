package fieldtable

import (
	"bytes"
	"math"
	"time"
)

// Equal reports whether a and b are the same field-table value. Integers of
// any Go integer type compare by numeric value (int8(1) equals uint64(1));
// float32 and float64 compare by value, with NaN equal to NaN; Table and
// map[string]any compare key by key and []any element by element, both
// recursively; []byte compares by content; time.Time compares the instant.
// Values of different kinds are unequal, and a value of a type outside the
// value model equals nothing.
func Equal(a, b any) bool {
	if ai, ok := toInteger(a); ok {
		bi, ok := toInteger(b)
		return ok && ai == bi
	}
	if af, ok := toFloat(a); ok {
		bf, ok := toFloat(b)
		return ok && (af == bf || (af != af && bf != bf))
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case []byte:
		bb, ok := b.([]byte)
		return ok && bytes.Equal(a, bb)
	case Decimal:
		bd, ok := b.(Decimal)
		return ok && a == bd
	case time.Time:
		bt, ok := b.(time.Time)
		return ok && a.Equal(bt)
	case Table:
		return equalTable(a, b)
	case map[string]any:
		return equalTable(a, b)
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return false
		}
		for i := range a {
			if !Equal(a[i], ba[i]) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

func equalTable(a map[string]any, b any) bool {
	var bt map[string]any
	switch b := b.(type) {
	case Table:
		bt = b
	case map[string]any:
		bt = b
	default:
		return false
	}
	if len(a) != len(bt) {
		return false
	}
	for k, av := range a {
		bv, ok := bt[k]
		if !ok || !Equal(av, bv) {
			return false
		}
	}
	return true
}

// integer is a value of any Go integer type, widened without loss.
type integer struct {
	neg bool   // value is negative
	mag uint64 // absolute value when neg, else the value itself
}

func signed(v int64) integer {
	if v < 0 {
		return integer{neg: true, mag: uint64(-(v + 1)) + 1}
	}
	return integer{mag: uint64(v)}
}

func toInteger(v any) (integer, bool) {
	switch v := v.(type) {
	case int8:
		return signed(int64(v)), true
	case int16:
		return signed(int64(v)), true
	case int32:
		return signed(int64(v)), true
	case int64:
		return signed(v), true
	case int:
		return signed(int64(v)), true
	case uint8:
		return integer{mag: uint64(v)}, true
	case uint16:
		return integer{mag: uint64(v)}, true
	case uint32:
		return integer{mag: uint64(v)}, true
	case uint64:
		return integer{mag: v}, true
	case uint:
		return integer{mag: uint64(v)}, true
	}
	return integer{}, false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return math.NaN(), false
}
