package meta

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Log file layout (docs/meta-format.md):
//
//	header:  magic "SLMETA" | version uint16 | base index uint64 | crc32c uint32
//	record:  length uint32  | crc32c uint32  | payload (JSON Command)
//
// Integers are big-endian. The header CRC covers the 16 bytes before it; a
// record CRC (Castagnoli) covers its payload. The record at position i
// (counting from 0) holds the command with index base+i.
const (
	logMagic         = "SLMETA"
	logVersion       = 1
	logHeaderSize    = 20
	recordHeaderSize = 8

	// MaxRecordSize caps one encoded command. A length prefix above it is
	// treated as corruption, so a damaged length never makes replay
	// allocate more than this.
	MaxRecordSize = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendLogHeader appends a log file header whose first record has index
// base.
func appendLogHeader(dst []byte, base uint64) []byte {
	start := len(dst)
	dst = append(dst, logMagic...)
	dst = binary.BigEndian.AppendUint16(dst, logVersion)
	dst = binary.BigEndian.AppendUint64(dst, base)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseLogHeader checks a log file header and returns its base index.
func parseLogHeader(b []byte) (base uint64, err error) {
	if len(b) < logHeaderSize {
		return 0, errors.New("meta: log header too short")
	}
	if string(b[:6]) != logMagic {
		return 0, errors.New("meta: not a metadata log (bad magic)")
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:20]) {
		return 0, errors.New("meta: log header checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[6:8]); v != logVersion {
		return 0, fmt.Errorf("meta: log format version %d not supported (want %d)", v, logVersion)
	}
	base = binary.BigEndian.Uint64(b[8:16])
	if base == 0 {
		return 0, errors.New("meta: log header base index 0")
	}
	return base, nil
}

// appendRecord appends one framed record.
func appendRecord(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// Reasons a record is not accepted; recovery truncates the log there.
var (
	errShortRecord = errors.New("record extends past the end of the log")
	errRecordLen   = errors.New("record length out of range")
	errRecordCRC   = errors.New("record checksum mismatch")
)

// checkRecordHeader validates a record header against the bytes that remain
// after it, before anything is allocated for the payload.
func checkRecordHeader(h []byte, remaining int64) (length int, crc uint32, err error) {
	n := binary.BigEndian.Uint32(h[0:4])
	switch {
	case n == 0 || n > MaxRecordSize: // zeros are what a crash leaves in preallocated space
		return 0, 0, errRecordLen
	case int64(n) > remaining:
		return 0, 0, errShortRecord
	}
	return int(n), binary.BigEndian.Uint32(h[4:8]), nil
}

// scanRecords reads records from r, which holds size bytes, and calls fn
// with each valid payload (valid only during the call). It stops at the
// first record that is torn or corrupt and returns the number of bytes that
// precede it, and why it stopped (nil when every byte was a valid record).
// An error from fn or from reading r is returned as err.
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
		n, crc, berr := checkRecordHeader(hdr[:], size-valid-recordHeaderSize)
		if berr != nil {
			return valid, berr, nil
		}
		// n is at most MaxRecordSize and at most what the file holds.
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return valid, nil, err
		}
		if crc32.Checksum(buf, castagnoli) != crc {
			return valid, errRecordCRC, nil
		}
		if err := fn(buf); err != nil {
			return valid, nil, err
		}
		valid += recordHeaderSize + int64(n)
	}
	return valid, nil, nil
}
