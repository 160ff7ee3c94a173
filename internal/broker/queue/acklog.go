package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/sluice-mq/sluice/internal/fsutil"
	"github.com/sluice-mq/sluice/internal/storage"
)

// The ack log records which offsets of a queue's log are settled (acked,
// expired, dead-lettered, dropped or purged). It is an 8-byte header
// ("SLQA", version 1, 3 reserved bytes) followed by 20-byte entries:
// from int64, to int64 (the half-open range [from, to)), and a CRC32C of
// those 16 bytes, all big-endian. Replaying the entries into an interval
// set gives the settled set. A torn or corrupt tail is cut off at the first
// bad entry: losing a settle only means a redelivery, never a loss.
//
// An entry whose from is greater than its to is not a range: it is a
// delivered mark, from = the queue's delivery cursor at the time (every
// offset below it may have been delivered), to = math.MinInt64. Replay
// keeps the largest mark; readers that predate marks skip such entries
// (an empty range adds nothing), so the file version stays 1. After a
// restart, unsettled messages below the mark are flagged redelivered.
//
// Entries are written without waiting for fsync (an ack is not promised to
// be durable, a publish is); Sync and Close fsync. When the file grows well
// past what the live set needs, it is rewritten from the set (temp file,
// fsync, rename).

const (
	ackMagic     = "SLQA"
	ackVersion   = 1
	ackHeaderLen = 8
	ackEntryLen  = 20
	ackFileName  = "acks"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// The file is opened through storage.OSFS, so that its descriptor counts
// in the process's file handle budget: an idle queue's ack log holds none.
type ackLog struct {
	dir  string
	f    storage.File
	size int64
	buf  []byte
	mark int64 // largest delivered mark recorded (buffered or written); 0 if none
	// stale: a write failed, so the file lacks settles the set holds;
	// the next write rewrites the file from the set (compact).
	stale bool
}

// openAckLog reads dir/acks into set (creating the file if missing) and
// leaves it open for appending.
func openAckLog(dir string, set *intervals) (*ackLog, error) {
	path := filepath.Join(dir, ackFileName)
	f, err := storage.OSFS().OpenFile(path, true)
	if err != nil {
		return nil, err
	}
	a := &ackLog{dir: dir, f: f}
	data, err := readAll(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	valid := int64(0)
	if len(data) >= ackHeaderLen && string(data[:4]) == ackMagic && data[4] == ackVersion {
		n := validAckEntries(data[ackHeaderLen:])
		a.mark = replayAckEntries(data[ackHeaderLen:ackHeaderLen+n], set)
		valid = int64(ackHeaderLen + n)
	}
	if valid == 0 {
		hdr := append([]byte(ackMagic), ackVersion, 0, 0, 0)
		if _, err := f.WriteAt(hdr, 0); err != nil {
			f.Close()
			return nil, err
		}
		valid = ackHeaderLen
	}
	if valid != int64(len(data)) { // a torn tail; else nothing to change
		if err := f.Truncate(valid); err != nil {
			f.Close()
			return nil, err
		}
	}
	a.size = valid
	return a, nil
}

// validAckEntries returns the length of the longest prefix of p made of
// whole entries with good CRCs: replay stops at the first bad one.
func validAckEntries(p []byte) int {
	n := 0
	for ; len(p)-n >= ackEntryLen; n += ackEntryLen {
		e := p[n : n+ackEntryLen]
		if crc32.Checksum(e[:16], crcTable) != binary.BigEndian.Uint32(e[16:]) {
			break
		}
	}
	return n
}

// replayAckEntries adds the ranges of p, whole entries already checked by
// validAckEntries, to set and returns the largest delivered mark among
// them (0 if none).
func replayAckEntries(p []byte, set *intervals) (mark int64) {
	for ; len(p) >= ackEntryLen; p = p[ackEntryLen:] {
		from, to := int64(binary.BigEndian.Uint64(p)), int64(binary.BigEndian.Uint64(p[8:]))
		if from > to {
			mark = max(mark, from)
		} else {
			set.add(from, to)
		}
	}
	return mark
}

// appendAckRecord appends set and the delivered mark (if any) as entries.
func appendAckRecord(b []byte, set *intervals, mark int64) []byte {
	for _, s := range set.r {
		b = appendAckEntry(b, s.from, s.to)
	}
	if mark > 0 {
		b = appendAckEntry(b, mark, math.MinInt64)
	}
	return b
}

func appendAckEntry(b []byte, from, to int64) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(from))
	b = binary.BigEndian.AppendUint64(b, uint64(to))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[len(b)-16:], crcTable))
}

// record buffers one settled range; flush writes the buffer.
func (a *ackLog) record(from, to int64) { a.buf = appendAckEntry(a.buf, from, to) }

// recordMark buffers a delivered mark if it is above the last one.
func (a *ackLog) recordMark(next int64) {
	if next > a.mark {
		a.mark = next
		a.buf = appendAckEntry(a.buf, next, math.MinInt64)
	}
}

func (a *ackLog) pending() bool { return len(a.buf) > 0 }

// A Queue splits the ack log's state between two locks, so that no file
// I/O happens under the queue's lock: the buffer (buf, mark: record,
// recordMark, takeBuffered) is the queue's, the file (f, size, stale:
// appendEntries, rewrite, sync) is guarded by Queue.ackMu. Delayed keeps
// both under its one lock and uses flush and compact.

// takeBuffered hands over the buffered entries, for appendEntries.
func (a *ackLog) takeBuffered() []byte {
	b := a.buf
	a.buf = nil
	return b
}

func (a *ackLog) flush() error {
	err := a.appendEntries(a.buf)
	a.buf = a.buf[:0]
	return err
}

// appendEntries writes entries taken from the buffer to the file. After a
// failed write the file is stale: the next write rewrites it whole.
func (a *ackLog) appendEntries(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := a.f.WriteAt(b, a.size)
	if err != nil {
		// Cut off what part of the write landed, so that later entries
		// do not follow a torn one, and rewrite the file from the set
		// next time: the buffer is dropped, the set keeps every settle.
		if n > 0 {
			a.f.Truncate(a.size)
		}
		a.stale = true
		return err
	}
	a.size += int64(n)
	return nil
}

// write records what is buffered: appended, or after a failed write the
// whole set rewritten.
func (a *ackLog) write(set *intervals) error {
	if !a.stale {
		return a.flush()
	}
	a.buf = a.buf[:0]
	if err := a.compact(set); err != nil {
		return err
	}
	a.stale = false
	return nil
}

// forgetFrom drops from set every offset at or above end, and lowers the
// delivered mark to end. The log ends at end after a crash that took its
// unsynced tail: messages there were delivered (and perhaps acked) before
// their fsync, and their offsets now go to new messages. The file is
// rewritten without them, durably, before any new message can take those
// offsets: replayed at a later start, the stale acks would settle the new
// messages, confirmed ones included.
func (a *ackLog) forgetFrom(set *intervals, end int64) error {
	if set.count(end, math.MaxInt64) == 0 && a.mark <= end {
		return nil
	}
	set.trimAtOrAbove(end)
	a.mark = min(a.mark, end)
	a.buf = a.buf[:0]
	return a.rewrite(set, a.mark)
}

// needsCompaction: the file holds many more entries than the set has spans.
func (a *ackLog) needsCompaction(spans int) bool {
	return a.size > 1<<20 && a.size > 4*int64(ackHeaderLen+ackEntryLen*spans)
}

// compact rewrites the file to hold exactly set.
func (a *ackLog) compact(set *intervals) error {
	if err := a.flush(); err != nil {
		return err
	}
	return a.rewrite(set, a.mark)
}

// rewrite replaces the file with one holding exactly set and the
// delivered mark (temp file, fsync, rename, directory fsync).
func (a *ackLog) rewrite(set *intervals, mark int64) error {
	tmp := filepath.Join(a.dir, ackFileName+".tmp")
	b := make([]byte, 0, ackHeaderLen+ackEntryLen*(len(set.r)+1))
	b = append(append(b, ackMagic...), ackVersion, 0, 0, 0)
	b = appendAckRecord(b, set, mark)
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	if err := storage.OSFS().Rename(tmp, filepath.Join(a.dir, ackFileName)); err != nil {
		return err
	}
	f, err := storage.OSFS().OpenFile(filepath.Join(a.dir, ackFileName), false)
	if err != nil {
		return err
	}
	a.f.Close()
	a.f, a.size = f, int64(len(b))
	return fsutil.SyncDir(a.dir)
}

func (a *ackLog) sync() error {
	if err := a.flush(); err != nil {
		return err
	}
	return a.f.Sync()
}

func (a *ackLog) close() error {
	err := a.sync()
	return errors.Join(err, a.f.Close())
}

// readAll reads the whole of f.
func readAll(f storage.File) ([]byte, error) {
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
