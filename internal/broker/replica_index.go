package broker

// The Raft index of a replicated partition (docs/clustering.md,
// "Replicated partitions").
//
// A replicated partition's segment log is the long-term copy of its Raft
// log: once entries are applied and the segment log is fsynced, the Raft
// log (multiraft.DiskStorage) drops them, and an entry a follower still
// needs is rebuilt from the segment log (partitionStorage). What the
// segment log cannot tell, this index keeps: for every applied Raft
// index, its term and the offsets its batches took (none for an empty
// entry, a configuration change or a produce refused when applied), and,
// in a second file, the configuration changes themselves.
//
// index: a 24-byte header (magic "SLRI", version 1, the Raft index of the
// first record, the term of the index before it) then 32-byte records, record k for index base+k: term,
// first offset, next offset (8 bytes each, big endian), kind (1 byte),
// 3 zero bytes, CRC-32C of the 28 bytes before it. conf: records of
// index (8), entry type (1), data length (4), data, CRC-32C of all before
// it. Both are written as entries are applied and fsynced before the
// applied checkpoint that covers them; records past the checkpoint are
// dropped when the partition opens.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/sluice-mq/sluice/internal/fsutil"
	"go.etcd.io/raft/v3/raftpb"
)

const (
	replIndexName    = "index"
	replConfName     = "conf"
	replIndexMagic   = "SLRI"
	replIndexVersion = 1
	replIndexHeader  = 24
	replIndexRecord  = 32
	// maxConfEntry bounds a configuration change read back (they are a
	// few dozen bytes).
	maxConfEntry = 1 << 20
)

// Kinds of index records.
const (
	kindNormal = 0 // a produce, an empty entry, or a produce refused when applied
	kindConf   = 1 // a configuration change, kept in the conf file
	// kindKept: batches that keep the leader epoch they were stored with
	// (a plain log's, made entries when it became a group:
	// replica_convert.go), rebuilt as entries that say so.
	kindKept = 2
)

type indexRecord struct {
	term        uint64
	first, next int64
	kind        byte
}

// replicaIndex is the index of one replicated partition. Safe for
// concurrent use: Apply adds, Raft's storage reads.
type replicaIndex struct {
	dir string

	mu   sync.Mutex
	f    *os.File
	conf *os.File
	base uint64 // index of record 0
	// baseTerm is the term of index base-1 (the snapshot the index
	// starts after), for Raft's Term of the entry before the first.
	baseTerm uint64
	n        uint64 // records
	confs    map[uint64]*raftpb.Entry
	// confEnd is where the next conf record goes.
	confEnd int64
	// dirty and confDirty: written since the last sync.
	dirty, confDirty bool
	held             heldCache
	// resets counts reset calls, so that a trim running beside one
	// gives up.
	resets uint64
}

// openReplicaIndex opens the index in dir, keeping the records up to
// applied. A missing index starts at base, after an entry of baseTerm.
// It fails when the records do not reach applied (the caller then
// rebuilds the partition).
func openReplicaIndex(dir string, base, baseTerm, applied uint64) (*replicaIndex, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	x := &replicaIndex{dir: dir, confs: make(map[uint64]*raftpb.Entry)}
	var err error
	if x.f, err = os.OpenFile(filepath.Join(dir, replIndexName), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	if x.conf, err = os.OpenFile(filepath.Join(dir, replConfName), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		x.f.Close()
		return nil, err
	}
	if err := x.load(base, baseTerm, applied); err != nil {
		x.close()
		return nil, err
	}
	return x, nil
}

func (x *replicaIndex) load(base, baseTerm, applied uint64) error {
	st, err := x.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < replIndexHeader {
		if applied >= base {
			return fmt.Errorf("replica index %s: missing, but %d entries were applied", x.dir, applied-base+1)
		}
		return x.resetLocked(base, baseTerm)
	}
	var h [replIndexHeader]byte
	if _, err := x.f.ReadAt(h[:], 0); err != nil {
		return err
	}
	if string(h[:4]) != replIndexMagic || binary.BigEndian.Uint32(h[4:]) != replIndexVersion {
		return fmt.Errorf("replica index %s: not an index of version %d", x.dir, replIndexVersion)
	}
	x.base, x.baseTerm = binary.BigEndian.Uint64(h[8:]), binary.BigEndian.Uint64(h[16:])
	if applied+1 < x.base {
		return fmt.Errorf("replica index %s: starts at %d, after the applied index %d", x.dir, x.base, applied)
	}
	want := applied + 1 - x.base
	if have := uint64(st.Size()-replIndexHeader) / replIndexRecord; have < want {
		return fmt.Errorf("replica index %s: %d records, %d applied", x.dir, have, want)
	}
	x.n = want
	for k := range want { // each record is checked once per open
		if _, err := x.readLocked(x.base + k); err != nil {
			return err
		}
	}
	if err := x.f.Truncate(replIndexHeader + int64(want)*replIndexRecord); err != nil {
		return err
	}
	return x.loadConfs(applied)
}

// loadConfs reads the conf records up to applied and cuts the file after
// them.
func (x *replicaIndex) loadConfs(applied uint64) error {
	b, err := io.ReadAll(io.LimitReader(x.conf, 64<<20))
	if err != nil {
		return err
	}
	off := 0
	for len(b)-off >= 17 {
		r := b[off:]
		idx, typ, n := binary.BigEndian.Uint64(r), r[8], int(binary.BigEndian.Uint32(r[9:]))
		if n > maxConfEntry || len(r) < 13+n+4 || crc32.Checksum(r[:13+n], castagnoli) != binary.BigEndian.Uint32(r[13+n:]) {
			break // a torn tail
		}
		if idx > applied {
			break
		}
		if idx >= x.base {
			x.confs[idx] = &raftpb.Entry{Index: &idx, Type: raftpb.EntryType(typ).Enum(), Data: append([]byte(nil), r[13:13+n]...)}
		}
		off += 13 + n + 4
	}
	x.confEnd = int64(off)
	return x.conf.Truncate(x.confEnd)
}

// reset empties the index, whose next record will be for index base,
// after an entry of baseTerm (a Raft snapshot's).
func (x *replicaIndex) reset(base, baseTerm uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.resetLocked(base, baseTerm)
}

func (x *replicaIndex) resetLocked(base, baseTerm uint64) error {
	if err := x.f.Truncate(0); err != nil {
		return err
	}
	if err := x.conf.Truncate(0); err != nil {
		return err
	}
	var h [replIndexHeader]byte
	copy(h[:], replIndexMagic)
	binary.BigEndian.PutUint32(h[4:], replIndexVersion)
	binary.BigEndian.PutUint64(h[8:], base)
	binary.BigEndian.PutUint64(h[16:], baseTerm)
	if _, err := x.f.WriteAt(h[:], 0); err != nil {
		return err
	}
	x.base, x.baseTerm, x.n, x.confEnd = base, baseTerm, 0, 0
	x.resets++
	clear(x.confs)
	x.dirty, x.confDirty = true, true
	return x.syncLocked()
}

// add writes the records of the indexes next() onwards, with the conf
// entries among them.
func (x *replicaIndex) add(recs []indexRecord, confs []*raftpb.Entry) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range confs {
		r := appendConfRecord(nil, e)
		if _, err := x.conf.WriteAt(r, x.confEnd); err != nil {
			return err
		}
		x.confEnd += int64(len(r))
		x.confs[e.GetIndex()] = e
		x.confDirty = true
	}
	if len(recs) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(recs)*replIndexRecord)
	for _, r := range recs {
		buf = binary.BigEndian.AppendUint64(buf, r.term)
		buf = binary.BigEndian.AppendUint64(buf, uint64(r.first))
		buf = binary.BigEndian.AppendUint64(buf, uint64(r.next))
		buf = append(buf, r.kind, 0, 0, 0)
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf[len(buf)-28:], castagnoli))
	}
	if _, err := x.f.WriteAt(buf, replIndexHeader+int64(x.n)*replIndexRecord); err != nil {
		return err
	}
	x.n += uint64(len(recs))
	x.dirty = true
	return nil
}

// next is the index the next record is for.
func (x *replicaIndex) next() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.base + x.n
}

// sync fsyncs what was written so far without holding up add (applying
// waits for no fsync): the files' dirty marks are taken under the lock,
// the fsyncs run outside it, and a failed one marks its file dirty again.
func (x *replicaIndex) sync() error {
	x.mu.Lock()
	f, conf, dirty, confDirty := x.f, x.conf, x.dirty, x.confDirty
	x.dirty, x.confDirty = false, false
	x.mu.Unlock()
	var err, cerr error
	if dirty {
		err = f.Sync()
	}
	if confDirty {
		cerr = conf.Sync()
	}
	if err != nil || cerr != nil {
		x.mu.Lock()
		x.dirty = x.dirty || err != nil
		x.confDirty = x.confDirty || cerr != nil
		x.mu.Unlock()
	}
	return errors.Join(err, cerr)
}

func (x *replicaIndex) syncLocked() error {
	var err error
	if x.dirty {
		err = x.f.Sync()
	}
	if x.confDirty {
		err = errors.Join(err, x.conf.Sync())
	}
	if err == nil {
		x.dirty, x.confDirty = false, false
	}
	return err
}

// trimMinRecords is the fewest dead records a trim drops: a trim copies
// the live records into a new file, so it waits until the dead part is
// at least this big and at least as big as the live part (each record is
// then copied about once over its life).
const trimMinRecords = 1 << 15

// trim drops the records before index upto (the segment log no longer
// holds their batches, and the checkpoint is past them) when enough of
// them are dead (trimMinRecords). The records kept are copied into a new
// file outside the lock (add goes on), then those added meanwhile, and
// the new file replaces the old (fsync, rename, directory fsync). Conf
// entries before upto are forgotten; the conf file keeps them, and
// opening skips them. It reports whether it trimmed.
func (x *replicaIndex) trim(upto uint64) (bool, error) {
	x.mu.Lock()
	base, n, resets, f := x.base, x.n, x.resets, x.f
	if upto > base+n {
		upto = base + n
	}
	dead := upto - min(upto, base)
	if dead < trimMinRecords || dead < n-dead {
		x.mu.Unlock()
		return false, nil
	}
	term, err := x.termLocked(upto - 1)
	x.mu.Unlock()
	if err != nil {
		return false, err
	}
	tmpPath := filepath.Join(x.dir, replIndexName+".tmp")
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	var h [replIndexHeader]byte
	copy(h[:], replIndexMagic)
	binary.BigEndian.PutUint32(h[4:], replIndexVersion)
	binary.BigEndian.PutUint64(h[8:], upto)
	binary.BigEndian.PutUint64(h[16:], term)
	if _, err := tmp.WriteAt(h[:], 0); err != nil {
		return false, err
	}
	// The records up to n are written and never change: copy them
	// without the lock, then fsync.
	copyRecords := func(from, to uint64) error {
		if to <= from {
			return nil
		}
		src := io.NewSectionReader(f, replIndexHeader+int64(from-base)*replIndexRecord, int64(to-from)*replIndexRecord)
		dst := io.NewOffsetWriter(tmp, replIndexHeader+int64(from-upto)*replIndexRecord)
		_, err := io.Copy(dst, src)
		return err
	}
	if err := copyRecords(upto, base+n); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.resets != resets || x.f != f {
		return false, nil // reset meanwhile: what was copied is stale
	}
	if err := copyRecords(base+n, x.base+x.n); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, err
	}
	if err := os.Rename(tmpPath, filepath.Join(x.dir, replIndexName)); err != nil {
		return false, err
	}
	done = true
	f.Close()
	x.f = tmp
	x.n -= upto - x.base
	x.base, x.baseTerm = upto, term
	x.dirty = false // the new file is synced whole
	for i := range x.confs {
		if i < upto {
			delete(x.confs, i)
		}
	}
	if err := x.compactConfsLocked(); err != nil {
		return true, err
	}
	return true, fsutil.SyncDir(x.dir)
}

// appendConfRecord appends e's conf record: index, type, data length,
// data, CRC-32C of what comes before it.
func appendConfRecord(b []byte, e *raftpb.Entry) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, e.GetIndex())
	b = append(b, byte(e.GetType()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.GetData())))
	b = append(b, e.GetData()...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// confCompactMin is the conf file size from which trim rewrites it with
// only the entries still held, when those take less than half of it:
// a quorum queue's settles are kept there (quorum.go), thousands a
// minute, and would otherwise grow it for ever.
const confCompactMin = 1 << 20

// compactConfsLocked rewrites the conf file with the entries held (temp
// file, fsync, rename; the caller fsyncs the directory); x.mu is held.
func (x *replicaIndex) compactConfsLocked() error {
	if x.confEnd < confCompactMin {
		return nil
	}
	idxs := slices.Sorted(maps.Keys(x.confs))
	var b []byte
	for _, i := range idxs {
		b = appendConfRecord(b, x.confs[i])
	}
	if int64(len(b)) > x.confEnd/2 {
		return nil
	}
	tmpPath := filepath.Join(x.dir, replConfName+".tmp")
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := tmp.WriteAt(b, 0); err != nil {
		tmp.Close()
		os.Remove(tmpPath)
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmpPath)
		return err
	}
	if err := os.Rename(tmpPath, filepath.Join(x.dir, replConfName)); err != nil {
		tmp.Close()
		os.Remove(tmpPath)
		return err
	}
	x.conf.Close()
	x.conf, x.confEnd, x.confDirty = tmp, int64(len(b)), false
	return nil
}

var errNoRecord = errors.New("broker: no index record")

// get returns the record of index i.
func (x *replicaIndex) get(i uint64) (indexRecord, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.readLocked(i)
}

// term returns the term of index i, from base-1 on.
func (x *replicaIndex) term(i uint64) (uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.termLocked(i)
}

func (x *replicaIndex) termLocked(i uint64) (uint64, error) {
	if i+1 == x.base {
		return x.baseTerm, nil
	}
	r, err := x.readLocked(i)
	return r.term, err
}

func (x *replicaIndex) readLocked(i uint64) (indexRecord, error) {
	if i < x.base || i >= x.base+x.n {
		return indexRecord{}, errNoRecord
	}
	var b [replIndexRecord]byte
	if _, err := x.f.ReadAt(b[:], replIndexHeader+int64(i-x.base)*replIndexRecord); err != nil {
		return indexRecord{}, err
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:]) {
		return indexRecord{}, fmt.Errorf("replica index %s: record of %d damaged", x.dir, i)
	}
	return indexRecord{term: binary.BigEndian.Uint64(b[:]), first: int64(binary.BigEndian.Uint64(b[8:])),
		next: int64(binary.BigEndian.Uint64(b[16:])), kind: b[24]}, nil
}

// confEntry returns the configuration change applied at index i.
func (x *replicaIndex) confEntry(i uint64) (*raftpb.Entry, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.confs[i]
	return e, ok
}

// firstHeld is the first index whose records the segment log still
// holds, the log starting at start (retention moves it): the first
// record whose batches begin at or after start. Records of no batches
// count as held once every record before them is.
func (x *replicaIndex) firstHeld(start int64) uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	// Raft asks often, and the answer moves only with the log start
	// (retention) or a reset.
	if x.held.ok && x.held.start == start && x.held.base == x.base && x.held.k < x.n {
		return x.base + x.held.k
	}
	k := sort.Search(int(x.n), func(k int) bool {
		r, err := x.readLocked(x.base + uint64(k))
		return err != nil || r.first >= start
	})
	x.held = heldCache{ok: true, start: start, base: x.base, k: uint64(k)}
	return x.base + uint64(k)
}

// entryStart is the first offset of the entry whose batches hold offset,
// offset itself when none does (it is where the log ends, or between
// entries).
func (x *replicaIndex) entryStart(offset int64) int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := sort.Search(int(x.n), func(k int) bool {
		r, err := x.readLocked(x.base + uint64(k))
		return err != nil || r.next > offset
	})
	if r, err := x.readLocked(x.base + uint64(k)); err == nil && r.first < offset {
		return r.first
	}
	return offset
}

// heldCache is firstHeld's last answer: record k was the first at or
// after start, which stays true while the log start and base stay.
type heldCache struct {
	ok      bool
	start   int64
	base, k uint64
}

func (x *replicaIndex) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return errors.Join(x.f.Close(), x.conf.Close())
}
