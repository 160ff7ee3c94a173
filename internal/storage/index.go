package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// Sparse indexes. See docs/storage-format.md.
//
// Offset index entry (8 bytes): relative offset uint32 (batch BaseOffset
// minus segment base), file position uint32 of that batch.
//
// Time index entry (12 bytes): timestamp int64, relative offset uint32.
// The entry says: the batch at that offset has MaxTimestamp == timestamp,
// and no batch at or before it has a larger MaxTimestamp. Timestamps and
// offsets strictly increase from entry to entry.
//
// Both are derived data: recovery checks them against the data file and
// rebuilds them when they disagree; readers double-check what they use.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
	noTimestamp     = -1 // Kafka's "no timestamp"; never indexed
)

type offsetEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

func appendOffsetEntries(dst []byte, es []offsetEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
		dst = binary.BigEndian.AppendUint32(dst, e.pos)
	}
	return dst
}

func appendTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
	}
	return dst
}

func decodeOffsetEntry(b []byte) offsetEntry {
	return offsetEntry{rel: binary.BigEndian.Uint32(b), pos: binary.BigEndian.Uint32(b[4:])}
}

func decodeTimeEntry(b []byte) timeEntry {
	return timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: binary.BigEndian.Uint32(b[8:])}
}

// floorOffsetEntry returns the last entry with rel <= rel, if any.
func floorOffsetEntry(es []offsetEntry, rel uint32) (offsetEntry, bool) {
	i := sort.Search(len(es), func(i int) bool { return es[i].rel > rel })
	if i == 0 {
		return offsetEntry{}, false
	}
	return es[i-1], true
}

// lastTimeEntryBefore returns the last entry with ts < ts, if any.
func lastTimeEntryBefore(es []timeEntry, ts int64) (timeEntry, bool) {
	i := sort.Search(len(es), func(i int) bool { return es[i].ts >= ts })
	if i == 0 {
		return timeEntry{}, false
	}
	return es[i-1], true
}

// indexFile answers the same lookups from an index file, with one ReadAt
// per probe, so that old segments' indexes never live in memory.
type indexFile struct {
	f File
	n int // entries
}

func newIndexFile(f File, entrySize int) (indexFile, error) {
	size, err := f.Size()
	if err != nil {
		return indexFile{}, err
	}
	return indexFile{f: f, n: int(size / int64(entrySize))}, nil
}

// search returns the number of entries for which less(entry) is true,
// assuming they form a prefix. buf holds one entry.
func (x indexFile) search(buf []byte, less func([]byte) bool) (int, error) {
	lo, hi := 0, x.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if err := readFull(x.f, buf, int64(mid)*int64(len(buf))); err != nil {
			return 0, err
		}
		if less(buf) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

func (x indexFile) floorOffset(rel uint32) (offsetEntry, bool, error) {
	var buf [offsetEntrySize]byte
	i, err := x.search(buf[:], func(b []byte) bool { return binary.BigEndian.Uint32(b) <= rel })
	if err != nil || i == 0 {
		return offsetEntry{}, false, err
	}
	if err := readFull(x.f, buf[:], int64(i-1)*offsetEntrySize); err != nil {
		return offsetEntry{}, false, err
	}
	return decodeOffsetEntry(buf[:]), true, nil
}

func (x indexFile) timeBefore(ts int64) (timeEntry, bool, error) {
	var buf [timeEntrySize]byte
	i, err := x.search(buf[:], func(b []byte) bool { return int64(binary.BigEndian.Uint64(b)) < ts })
	if err != nil || i == 0 {
		return timeEntry{}, false, err
	}
	if err := readFull(x.f, buf[:], int64(i-1)*timeEntrySize); err != nil {
		return timeEntry{}, false, err
	}
	return decodeTimeEntry(buf[:]), true, nil
}

// entry reads entry i into buf.
func (x indexFile) entry(buf []byte, i int) error {
	return readFull(x.f, buf, int64(i)*int64(len(buf)))
}

// indexBuilder decides, batch by batch, which index entries a segment
// gets. The writer and recovery share it, so a rebuilt index is the index
// the writer would have written.
//
// Recovery may start it in the middle of a segment whose offset index is
// known up to position floor: up to there it only re-derives time
// entries, at the batches the known entries name.
type indexBuilder struct {
	base     int64 // segment base offset
	interval int64
	floor    int64         // position of the last known offset entry; -1: none
	known    []offsetEntry // known offset entries not yet passed
	since    int64         // data bytes since the last offset entry
	maxTs    int64         // running max of batch MaxTimestamp
	maxTsRel uint32
	lastTs   int64 // ts of the last time entry, noTimestamp if none
}

func newIndexBuilder(base int64, interval int) indexBuilder {
	return indexBuilder{base: base, interval: int64(interval), floor: -1, maxTs: noTimestamp, lastTs: noTimestamp}
}

// resumeAfter tells the builder the offset entries that already exist.
func (b *indexBuilder) resumeAfter(known []offsetEntry) {
	b.known = known
	b.floor = -1
	if len(known) > 0 {
		b.floor = int64(known[len(known)-1].pos)
	}
}

// add accounts for the batch with header h at position pos and appends the
// entries it earns to oi and ti.
func (b *indexBuilder) add(h BatchHeader, pos int64, oi []offsetEntry, ti []timeEntry) ([]offsetEntry, []timeEntry) {
	rel := uint32(h.BaseOffset - b.base)
	if h.MaxTimestamp > b.maxTs {
		b.maxTs, b.maxTsRel = h.MaxTimestamp, rel
	}
	if pos <= b.floor {
		for len(b.known) > 0 && int64(b.known[0].pos) < pos {
			b.known = b.known[1:]
		}
		if len(b.known) > 0 && int64(b.known[0].pos) == pos {
			ti = b.maybeTime(ti)
			b.since = 0
		}
	} else if b.since >= b.interval {
		oi = append(oi, offsetEntry{rel: rel, pos: uint32(pos)})
		ti = b.maybeTime(ti)
		b.since = 0
	}
	b.since += int64(h.Size())
	return oi, ti
}

func (b *indexBuilder) maybeTime(ti []timeEntry) []timeEntry {
	if b.maxTs > b.lastTs {
		ti = append(ti, timeEntry{ts: b.maxTs, rel: b.maxTsRel})
		b.lastTs = b.maxTs
	}
	return ti
}

// final returns the time entry a closed segment ends with, recording its
// largest timestamp, if the index does not have it yet.
func (b *indexBuilder) final(ti []timeEntry) []timeEntry { return b.maybeTime(ti) }

// relFits reports whether offset can be stored relative to base.
func relFits(base, offset int64) bool { return offset >= base && offset-base <= math.MaxInt32 }

// readFull reads exactly len(p) bytes at off.
func readFull(f File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("short read: %d of %d bytes at %d", n, len(p), off)
	}
	return err
}
