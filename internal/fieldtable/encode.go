package fieldtable

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Append appends t as a length-prefixed field table (uint32 byte length,
// then each entry as short-string key, type letter, value) with keys in
// sorted order. A nil Table encodes as an empty one. On error dst is returned
// unchanged (same length) together with the error.
func Append(dst []byte, t Table) ([]byte, error) {
	out, err := appendTable(dst, t, 1)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// AppendArray appends a as a length-prefixed field array (uint32 byte
// length, then each value as type letter and value), the body of an 'A'
// value. On error dst is returned unchanged together with the error.
func AppendArray(dst []byte, a []any) ([]byte, error) {
	out, err := appendArray(dst, a, 1)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// AppendValue appends v as a type letter followed by its encoding. On error
// dst is returned unchanged together with the error.
func AppendValue(dst []byte, v any) ([]byte, error) {
	out, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Validate reports the error Append would return for t, without encoding.
func Validate(t Table) error {
	return validateTable(t, 1)
}

func appendTable(dst []byte, t Table, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, ErrTooDeep
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if len(k) > MaxKeyLen {
			return dst, fmt.Errorf("%w: %.32q...", ErrKeyTooLong, k)
		}
		dst = append(dst, byte(len(k)))
		dst = append(dst, k...)
		var err error
		if dst, err = appendValue(dst, t[k], depth); err != nil {
			return dst, fmt.Errorf("key %q: %w", k, err)
		}
	}
	return patchLen(dst, start)
}

func appendArray(dst []byte, a []any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, ErrTooDeep
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for i, v := range a {
		var err error
		if dst, err = appendValue(dst, v, depth); err != nil {
			return dst, fmt.Errorf("index %d: %w", i, err)
		}
	}
	return patchLen(dst, start)
}

// patchLen fills in the uint32 length prefix reserved at dst[start:].
func patchLen(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - 4
	if uint64(n) > math.MaxUint32 {
		return dst, ErrTooLarge
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// appendValue appends the type letter and value of v. depth is the depth of
// the container holding v.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, 'V'), nil
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(dst, 't', b), nil
	case int8:
		return append(dst, 'b', byte(v)), nil
	case uint8:
		return append(dst, 'B', v), nil
	case int16:
		return binary.BigEndian.AppendUint16(append(dst, 's'), uint16(v)), nil
	case uint16:
		return binary.BigEndian.AppendUint16(append(dst, 'u'), v), nil
	case int32:
		return binary.BigEndian.AppendUint32(append(dst, 'I'), uint32(v)), nil
	case uint32:
		return binary.BigEndian.AppendUint32(append(dst, 'i'), v), nil
	case int64:
		return binary.BigEndian.AppendUint64(append(dst, 'l'), uint64(v)), nil
	case int:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			return binary.BigEndian.AppendUint32(append(dst, 'I'), uint32(v)), nil
		}
		return binary.BigEndian.AppendUint64(append(dst, 'l'), uint64(v)), nil
	case uint:
		return appendUnsigned(dst, uint64(v), true)
	case uint64:
		return appendUnsigned(dst, v, false)
	case float32:
		return binary.BigEndian.AppendUint32(append(dst, 'f'), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, 'd'), math.Float64bits(v)), nil
	case Decimal:
		return binary.BigEndian.AppendUint32(append(dst, 'D', v.Scale), uint32(v.Value)), nil
	case string:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, ErrTooLarge
		}
		dst = binary.BigEndian.AppendUint32(append(dst, 'S'), uint32(len(v)))
		return append(dst, v...), nil
	case []byte:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, ErrTooLarge
		}
		dst = binary.BigEndian.AppendUint32(append(dst, 'x'), uint32(len(v)))
		return append(dst, v...), nil
	case time.Time:
		// Whole seconds since the epoch; sub-second precision is dropped.
		return binary.BigEndian.AppendUint64(append(dst, 'T'), uint64(v.Unix())), nil
	case Table:
		return appendTable(append(dst, 'F'), v, depth+1)
	case map[string]any:
		return appendTable(append(dst, 'F'), v, depth+1)
	case []any:
		return appendArray(append(dst, 'A'), v, depth+1)
	default:
		return dst, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
	}
}

// appendUnsigned encodes a uint64 as 'l', or a uint like an int ('I' when it
// fits). There is no unsigned 64-bit letter, so values above MaxInt64 fail.
func appendUnsigned(dst []byte, v uint64, small bool) ([]byte, error) {
	if v > math.MaxInt64 {
		return dst, fmt.Errorf("%w: unsigned value %d does not fit a signed 64-bit 'l'", ErrUnsupportedType, v)
	}
	if small && v <= math.MaxInt32 {
		return binary.BigEndian.AppendUint32(append(dst, 'I'), uint32(v)), nil
	}
	return binary.BigEndian.AppendUint64(append(dst, 'l'), v), nil
}

func validateTable(t Table, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	for k, v := range t {
		if len(k) > MaxKeyLen {
			return fmt.Errorf("%w: %.32q...", ErrKeyTooLong, k)
		}
		if err := validateValue(v, depth); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}

func validateValue(v any, depth int) error {
	switch v := v.(type) {
	case nil, bool, int8, uint8, int16, uint16, int32, uint32, int64, int,
		float32, float64, Decimal, time.Time:
		return nil
	case uint:
		_, err := appendUnsigned(nil, uint64(v), true)
		return err
	case uint64:
		_, err := appendUnsigned(nil, v, false)
		return err
	case string:
		if uint64(len(v)) > math.MaxUint32 {
			return ErrTooLarge
		}
		return nil
	case []byte:
		if uint64(len(v)) > math.MaxUint32 {
			return ErrTooLarge
		}
		return nil
	case Table:
		return validateTable(v, depth+1)
	case map[string]any:
		return validateTable(v, depth+1)
	case []any:
		if depth+1 > MaxDepth {
			return ErrTooDeep
		}
		for i, e := range v {
			if err := validateValue(e, depth+1); err != nil {
				return fmt.Errorf("index %d: %w", i, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedType, v)
	}
}
