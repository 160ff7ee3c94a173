package offsets

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Log file layout (docs/offsets-format.md):
//
//	header:  magic "SLOFFS" | version uint16 | crc32c uint32
//	record:  length uint32  | crc32c uint32  | payload
//
// Integers are big-endian. The header CRC covers the 8 bytes before it; a
// record CRC (Castagnoli) covers its payload. A payload is a kind byte and
// the kind's fields; strings are a uint16 length and bytes, metadata a
// uint32 length and bytes.
const (
	logMagic         = "SLOFFS"
	logVersion       = 1
	logHeaderSize    = 12
	recordHeaderSize = 8

	// MaxRecordSize caps one record. A length prefix above it is taken for
	// corruption, so a damaged length never makes replay allocate more.
	MaxRecordSize = 16 << 20
)

// Record kinds. A kind's number never changes meaning.
const (
	kindCommit      = 1 // group, then commits: all of them replace the group's offsets for their partitions
	kindDelete      = 2 // group, then partitions: those offsets go
	kindDeleteGroup = 3 // group: all its offsets go
	kindDeleteTopic = 4 // topic: every group's offsets in it go
	kindCommitSeq   = 5 // as kindCommit, each commit with its sequence number (written by rewrites)
	kindNextSeq     = 6 // the next sequence number: none below it is given again (written by rewrites)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt: a record whose checksum holds but whose payload does not
// parse: the log was written by a newer or broken version, not torn.
var ErrCorrupt = errors.New("offsets: malformed record")

// record is one change, as logged.
type record struct {
	kind       byte
	group      string // commit, delete, delete group
	topic      string // delete topic
	commits    []Commit
	partitions []Partition
	next       int64 // next sequence number
}

func appendLogHeader(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, logMagic...)
	dst = binary.BigEndian.AppendUint16(dst, logVersion)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func parseLogHeader(b []byte) error {
	if len(b) < logHeaderSize {
		return errors.New("offsets: log header too short")
	}
	if string(b[:6]) != logMagic {
		return errors.New("offsets: not an offsets log (bad magic)")
	}
	if crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:12]) {
		return errors.New("offsets: log header checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[6:8]); v != logVersion {
		return fmt.Errorf("offsets: log format version %d not supported (want %d)", v, logVersion)
	}
	return nil
}

// errTooLong: a string that the format cannot hold. Checked before a
// record is queued, so the writer never meets one.
var errTooLong = errors.New("offsets: name longer than 65535 bytes")

func (r *record) check() error {
	long := func(s string) bool { return len(s) > math.MaxUint16 }
	if long(r.group) || long(r.topic) {
		return errTooLong
	}
	for _, c := range r.commits {
		if long(c.Topic) || int64(len(c.Metadata)) > math.MaxUint32 {
			return errTooLong
		}
	}
	for _, p := range r.partitions {
		if long(p.Topic) {
			return errTooLong
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendPayload appends r's payload; r passed check.
func appendPayload(b []byte, r *record) []byte {
	b = append(b, r.kind)
	switch r.kind {
	case kindCommit, kindCommitSeq:
		b = appendString(b, r.group)
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.commits)))
		for _, c := range r.commits {
			if r.kind == kindCommitSeq {
				b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
			}
			b = appendString(b, c.Topic)
			b = binary.BigEndian.AppendUint32(b, uint32(c.Partition))
			b = binary.BigEndian.AppendUint64(b, uint64(c.Offset))
			b = binary.BigEndian.AppendUint32(b, uint32(c.LeaderEpoch))
			b = binary.BigEndian.AppendUint64(b, uint64(c.CommitMs))
			b = binary.BigEndian.AppendUint32(b, uint32(len(c.Metadata)))
			b = append(b, c.Metadata...)
		}
	case kindDelete:
		b = appendString(b, r.group)
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.partitions)))
		for _, p := range r.partitions {
			b = appendString(b, p.Topic)
			b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
		}
	case kindDeleteGroup:
		b = appendString(b, r.group)
	case kindDeleteTopic:
		b = appendString(b, r.topic)
	case kindNextSeq:
		b = binary.BigEndian.AppendUint64(b, uint64(r.next))
	}
	return b
}

// appendRecord appends r framed: length, checksum, payload.
func appendRecord(b []byte, r *record) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeaderSize)...)
	b = appendPayload(b, r)
	payload := b[start+recordHeaderSize:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// reader reads a payload with a sticky error, checked once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) str16() string { return string(r.take(int(r.u16()))) }

// count reads an element count and refuses one that the bytes left
// cannot hold at min bytes an element, so a bad count allocates nothing.
func (r *reader) count(min int) int {
	n := r.u32()
	if r.bad || uint64(n)*uint64(min) > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

// decodeRecord parses a payload; an error wraps ErrCorrupt.
func decodeRecord(b []byte) (record, error) {
	r := reader{b: b}
	rec := record{kind: r.u8()}
	switch rec.kind {
	case kindCommit, kindCommitSeq:
		rec.group = r.str16()
		min := 2 + 4 + 8 + 4 + 8 + 4
		if rec.kind == kindCommitSeq {
			min += 8
		}
		n := r.count(min)
		rec.commits = make([]Commit, 0, n)
		for range n {
			var c Commit
			if rec.kind == kindCommitSeq {
				c.Seq = int64(r.u64())
			}
			c.Topic = r.str16()
			c.Partition = int32(r.u32())
			c.Offset = int64(r.u64())
			c.LeaderEpoch = int32(r.u32())
			c.CommitMs = int64(r.u64())
			c.Metadata = string(r.take(int(r.u32())))
			rec.commits = append(rec.commits, c)
		}
	case kindDelete:
		rec.group = r.str16()
		n := r.count(2 + 4)
		rec.partitions = make([]Partition, 0, n)
		for range n {
			var p Partition
			p.Topic = r.str16()
			p.Partition = int32(r.u32())
			rec.partitions = append(rec.partitions, p)
		}
	case kindDeleteGroup:
		rec.group = r.str16()
	case kindDeleteTopic:
		rec.topic = r.str16()
	case kindNextSeq:
		rec.next = int64(r.u64())
	default:
		return record{}, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, rec.kind)
	}
	if r.bad {
		return record{}, fmt.Errorf("%w: kind %d payload is short", ErrCorrupt, rec.kind)
	}
	if len(r.b) != 0 {
		return record{}, fmt.Errorf("%w: %d bytes after a kind %d payload", ErrCorrupt, len(r.b), rec.kind)
	}
	return rec, nil
}

// Reasons a record is not accepted; recovery truncates the log there.
var (
	errShortRecord = errors.New("record extends past the end of the log")
	errRecordLen   = errors.New("record length out of range")
	errRecordCRC   = errors.New("record checksum mismatch")
)

// scanRecords reads the records in r (size bytes) and calls fn with each
// valid payload (valid only during the call). It stops at the first torn
// or corrupt record and returns the bytes before it and why it stopped
// (nil when all size bytes were valid records); err is from reading or fn.
func scanRecords(r io.Reader, size int64, fn func(payload []byte) error) (valid int64, stop, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [recordHeaderSize]byte
	var buf []byte
	for valid < size {
		if size-valid < recordHeaderSize {
			return valid, errShortRecord, nil
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return valid, nil, err
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		switch {
		case n == 0 || n > MaxRecordSize: // zeros are what a crash can leave
			return valid, errRecordLen, nil
		case int64(n) > size-valid-recordHeaderSize:
			return valid, errShortRecord, nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return valid, nil, err
		}
		if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(hdr[4:8]) {
			return valid, errRecordCRC, nil
		}
		if err := fn(buf); err != nil {
			return valid, nil, err
		}
		valid += recordHeaderSize + int64(n)
	}
	return valid, nil, nil
}
