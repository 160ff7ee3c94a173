package wire

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// Reader decodes AMQP fields from a byte slice. Its error is sticky: after
// the first failure every read returns a zero value and the caller checks
// Err or Complete once at the end instead of after each field.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error met, which wraps ErrMalformed.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Complete returns the first error met, or an ErrMalformed error when bytes
// remain unread.
func (r *Reader) Complete() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	return r.err
}

func (r *Reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

// take returns the next n bytes, or nil once an error is recorded.
func (r *Reader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s needs %d bytes, %d remain", what, n, len(r.b))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

// Uint8 reads an octet.
func (r *Reader) Uint8() uint8 {
	if p := r.take(1, "octet"); p != nil {
		return p[0]
	}
	return 0
}

// Uint16 reads a big-endian short.
func (r *Reader) Uint16() uint16 {
	if p := r.take(2, "short"); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

// Uint32 reads a big-endian long.
func (r *Reader) Uint32() uint32 {
	if p := r.take(4, "long"); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// Uint64 reads a big-endian longlong.
func (r *Reader) Uint64() uint64 {
	if p := r.take(8, "longlong"); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// ShortStr reads a short string: an octet length and up to 255 bytes.
func (r *Reader) ShortStr() string {
	n := r.Uint8()
	return string(r.take(uint64(n), "short string"))
}

// LongStr reads a long string: a long length and that many bytes, checked
// against the bytes remaining before anything is allocated.
func (r *Reader) LongStr() string {
	n := r.Uint32()
	return string(r.take(uint64(n), "long string"))
}

// Timestamp reads a longlong of seconds since the Unix epoch, in UTC.
func (r *Reader) Timestamp() time.Time {
	sec := r.Uint64()
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(int64(sec), 0).UTC()
}

// Table reads a field table.
func (r *Reader) Table() fieldtable.Table {
	if r.err != nil {
		return nil
	}
	t, n, err := fieldtable.Read(r.b)
	if err != nil {
		r.err = fmt.Errorf("%w: %w", ErrMalformed, err)
		return nil
	}
	r.b = r.b[n:]
	return t
}

// Bits reads one octet of packed bits into fields, the first field from the
// lowest bit. Unused high bits are ignored.
func (r *Reader) Bits(fields ...*bool) {
	b := r.Uint8()
	for i, f := range fields {
		*f = b&(1<<i) != 0
	}
}

func appendShortStr(dst []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

func appendLongStr(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendTimestamp(dst []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t.Unix()))
}

// appendTable appends t; see the package documentation for why an
// unencodable table panics instead of returning an error.
func appendTable(dst []byte, t fieldtable.Table) []byte {
	out, err := fieldtable.Append(dst, t)
	if err != nil {
		panic("wire: unencodable field table (check it with fieldtable.Validate): " + err.Error())
	}
	return out
}

// appendBits packs up to eight bits into one octet, the first lowest.
func appendBits(dst []byte, bits ...bool) []byte {
	var b byte
	for i, v := range bits {
		if v {
			b |= 1 << i
		}
	}
	return append(dst, b)
}
