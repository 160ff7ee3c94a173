package broker

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// kv is a record for a test batch; a nil value is a tombstone.
type kv struct {
	key, value []byte
}

// keyedBatch builds a RecordBatch v2 of recs stamped ts, from producer pid
// (-1: none) with the given attributes (transactional, control, codec).
func keyedBatch(t testing.TB, ts int64, pid int64, attrs int16, recs []kv) []byte {
	t.Helper()
	var body []byte
	for i, r := range recs {
		var rec []byte
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, 0)        // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		for _, f := range [][]byte{r.key, r.value} {
			if f == nil {
				rec = binary.AppendVarint(rec, -1)
			} else {
				rec = binary.AppendVarint(rec, int64(len(f)))
				rec = append(rec, f...)
			}
		}
		rec = binary.AppendVarint(rec, 0) // headers
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	if codec := attrs & batchCodecMask; codec != 0 {
		var err error
		if body, err = compress(codec, defaultCodecLevel(codec), body); err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, batchHeaderBytes, batchHeaderBytes+len(body))
	b[16] = 2 // magic
	be := binary.BigEndian
	be.PutUint32(b[23:], uint32(len(recs)-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], math.MaxUint16) // epoch -1
	be.PutUint32(b[53:], math.MaxUint32) // sequence -1
	if pid >= 0 {
		be.PutUint16(b[51:], 0)
		be.PutUint32(b[53:], 0)
	}
	be.PutUint32(b[57:], uint32(len(recs)))
	b = append(b, body...)
	setAttributes(b, attrs)
	seal(b)
	return b
}

// marker is a control batch of producer pid: commit or abort.
func marker(t testing.TB, ts, pid int64, commit bool) []byte {
	key := []byte{0, 0, 0, 0}
	if commit {
		key[3] = 1
	}
	return keyedBatch(t, ts, pid, transactionalBit|controlBit, []kv{{key: key, value: []byte{0, 0, 0, 0, 0, 0}}})
}

// cleanerFixture is a partition on a real log with small segments and a
// broker whose cleaner has a map of mapBytes and a clock at now.
func cleanerFixture(t *testing.T, mapBytes int64, now time.Time) (*Broker, *Partition) {
	t.Helper()
	l, err := openDiskLog(t.TempDir(), storage.Options{SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPartition("t", 0, l, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b := &Broker{
		opts: Options{Now: func() time.Time { return now }, Cleaner: CleanerOptions{MapBytes: mapBytes, BytesPerSecond: -1}},
		log:  slog.New(slog.DiscardHandler),
	}
	return b, p
}

func appendRaw(t *testing.T, p *Partition, b []byte) {
	t.Helper()
	_, ap, err := p.log.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
}

// readCleaned returns every record of p in order, checking offsets increase.
func readCleaned(t *testing.T, p *Partition) []cleanRecordCopy {
	t.Helper()
	var out []cleanRecordCopy
	last := int64(-1)
	start, hw, _ := p.Offsets()
	if err := eachBatch(p.log, start, hw, newThrottle(-1, nil), func(h storage.BatchHeader, batch []byte) error {
		if h.Attributes&controlBit != 0 {
			out = append(out, cleanRecordCopy{offset: h.BaseOffset, control: true})
			return nil
		}
		return batchRecords(h, batch, func(r cleanRecord) {
			if r.offset <= last {
				t.Fatalf("offset %d after %d", r.offset, last)
			}
			last = r.offset
			out = append(out, cleanRecordCopy{offset: r.offset, key: string(r.key), tombstone: r.valueNull, raw: string(r.raw)})
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

type cleanRecordCopy struct {
	offset    int64
	key       string
	tombstone bool
	control   bool
	raw       string
}

// cleanUntilDone runs passes until one cleans nothing.
func cleanUntilDone(t *testing.T, b *Broker, p *Partition, cfg resolvedConfig) int {
	t.Helper()
	passes := 0
	for ; passes < 100; passes++ {
		st, err := b.cleanPartition(p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.SegmentsCleaned == 0 {
			return passes
		}
	}
	t.Fatal("the cleaner never finished")
	return 0
}

func compactConfig(deleteRetention time.Duration) resolvedConfig {
	return resolvedConfig{compact: true, codec: -1, deleteRetention: deleteRetention,
		maxCompactionLag: time.Duration(math.MaxInt64)}
}

// TestCleanerKeepsLatestPerKey: 200 keys written 10 times (a quarter
// compressed), every seventh key's last write a tombstone, through a map
// too small for all keys (several passes): what is left is exactly the
// latest record of each key, in offset order, tombstones included while
// delete.retention.ms has not passed, gone after.
func TestCleanerKeepsLatestPerKey(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	b, p := cleanerFixture(t, 64*mapSlotBytes, now)
	const keys, rounds = 200, 10
	latest := map[string]string{} // key: raw record of its latest write
	for r := range rounds {
		for k := 0; k < keys; k += 4 {
			var recs []kv
			for i := k; i < k+4; i++ {
				v := []byte(fmt.Sprintf("v%d-%d", i, r))
				if r == rounds-1 && i%7 == 0 {
					v = nil
				}
				recs = append(recs, kv{key: []byte(fmt.Sprintf("k%d", i)), value: v})
			}
			attrs := int16(0)
			if k%16 == 0 {
				attrs = 4 // zstd
			}
			appendRaw(t, p, keyedBatch(t, now.UnixMilli()-int64(rounds-r)*1000, -1, attrs, recs))
		}
	}
	// Roll the data into closed segments behind unique filler keys.
	for i := range 40 {
		appendRaw(t, p, keyedBatch(t, now.UnixMilli(), -1, 0, []kv{{key: []byte(fmt.Sprintf("f%d", i)), value: make([]byte, 200)}}))
	}
	for _, r := range readCleaned(t, p) {
		latest[r.key] = r.raw
	}

	passes := cleanUntilDone(t, b, p, compactConfig(time.Hour))
	if passes < 2 {
		t.Fatalf("%d passes: the map of 64 slots should not have held 200 keys", passes)
	}
	got := readCleaned(t, p)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.key] {
			t.Fatalf("key %s twice after cleaning", r.key)
		}
		seen[r.key] = true
		if latest[r.key] != r.raw {
			t.Fatalf("key %s: kept a record that is not its latest", r.key)
		}
	}
	if len(seen) != len(latest) {
		t.Fatalf("%d keys after cleaning, want %d", len(seen), len(latest))
	}

	// Past delete.retention.ms, the tombstones go and nothing else.
	b.opts.Now = func() time.Time { return now.Add(time.Hour) }
	b.cleaner.firstDirty[p] = 0 // as after a restart: the whole log is dirty again
	cleanUntilDone(t, b, p, compactConfig(time.Hour))
	tombstones := 0
	for k := 0; k < keys; k += 7 {
		tombstones++
	}
	after := readCleaned(t, p)
	if len(after) != len(got)-tombstones {
		t.Fatalf("%d records after the tombstones expired, want %d", len(after), len(got)-tombstones)
	}
	for _, r := range after {
		if r.tombstone {
			t.Fatalf("tombstone of %s left past delete.retention.ms", r.key)
		}
	}
}

// TestCleanerTransactions: the data of an aborted transaction is removed
// and does not hide an older committed value of its key; committed data
// is compacted like any other; markers stay while delete.retention.ms has
// not passed, and the emptied last batch of a producer stays as an empty
// batch so that its sequence state survives.
func TestCleanerTransactions(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	b, p := cleanerFixture(t, 1<<20, now)
	ts := now.UnixMilli() - 10_000
	appendRaw(t, p, keyedBatch(t, ts, -1, 0, []kv{{key: []byte("a"), value: []byte("a0")}, {key: []byte("b"), value: []byte("b0")}}))
	// Producer 7: a committed transaction, then an aborted one.
	appendRaw(t, p, keyedBatch(t, ts, 7, transactionalBit, []kv{{key: []byte("a"), value: []byte("a1")}}))
	appendRaw(t, p, marker(t, ts, 7, true))
	appendRaw(t, p, keyedBatch(t, ts, 7, transactionalBit, []kv{{key: []byte("b"), value: []byte("b-aborted")}}))
	appendRaw(t, p, marker(t, ts, 7, false))
	appendRaw(t, p, keyedBatch(t, ts, 7, transactionalBit, []kv{{key: []byte("d"), value: []byte("d0")}}))
	appendRaw(t, p, marker(t, ts, 7, true))
	// Producer 9: one idempotent batch whose only record is superseded.
	appendRaw(t, p, keyedBatch(t, ts, 9, 0, []kv{{key: []byte("c"), value: []byte("c0")}}))
	appendRaw(t, p, keyedBatch(t, ts, -1, 0, []kv{{key: []byte("c"), value: []byte("c1")}}))
	for i := range 40 {
		appendRaw(t, p, keyedBatch(t, now.UnixMilli(), -1, 0, []kv{{key: []byte(fmt.Sprintf("f%d", i)), value: make([]byte, 200)}}))
	}
	cleanUntilDone(t, b, p, compactConfig(time.Hour))

	var vals []string
	controls := 0
	for _, r := range readCleaned(t, p) {
		switch {
		case r.control:
			controls++
		case r.key == "a" || r.key == "b" || r.key == "c" || r.key == "d":
			vals = append(vals, r.key)
		}
	}
	if fmt.Sprint(vals) != "[b a d c]" || controls != 3 {
		t.Fatalf("after cleaning: keys %v and %d markers, want [b a d c] (b0, a1, d0, c1) and 3", vals, controls)
	}
	// Producer 9's batch is kept, empty: its sequence is still known.
	found := false
	if err := p.log.ScanHeaders(0, func(h storage.BatchHeader) bool {
		if h.ProducerID == 9 {
			found = h.NumRecords == 0
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("producer 9's last batch was not kept as an empty batch")
	}
	if err := p.rebuildProducers(); err != nil {
		t.Fatal(err)
	}

	// Past delete.retention.ms the marker of the aborted transaction,
	// whose data is gone, goes; the commits' stay while their data does.
	b.opts.Now = func() time.Time { return now.Add(2 * time.Hour) }
	b.cleaner.firstDirty[p] = 0
	cleanUntilDone(t, b, p, compactConfig(time.Hour))
	controls = 0
	for _, r := range readCleaned(t, p) {
		if r.control {
			controls++
		}
	}
	if controls != 2 {
		t.Fatalf("%d markers left, want 2 (the commits of a1 and d0)", controls)
	}
}

// FuzzCleanerBatch: the cleaner's record decoder never panics on any
// bytes, and a batch rebuilt with every record it decoded decodes to the
// same records (offsets, keys, tombstones) with a header storage accepts.
func FuzzCleanerBatch(f *testing.F) {
	f.Add(keyedBatch(f, 1000, -1, 0, []kv{{key: []byte("a"), value: []byte("1")}, {key: []byte("b")}}))
	f.Add(keyedBatch(f, 1000, 7, 4, []kv{{key: []byte("a"), value: []byte("1")}, {value: []byte("2")}}))
	f.Add(marker(f, 1000, 7, false))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := storage.ParseBatchHeader(b)
		if err != nil || h.Size() != len(b) || h.Length < batchHeaderBytes-12 {
			return
		}
		controlType(h, b)
		var recs []cleanRecordCopy
		var raws [][]byte
		if err := batchRecords(h, b, func(r cleanRecord) {
			recs = append(recs, cleanRecordCopy{offset: r.offset, key: string(r.key), tombstone: r.valueNull})
			raws = append(raws, append([]byte(nil), r.raw...))
		}); err != nil {
			return
		}
		codec := h.Attributes & batchCodecMask
		if codec > 4 {
			return
		}
		nb, err := rebuildBatch(h, b, raws, defaultCodecLevel(codec))
		if err != nil {
			t.Fatal(err)
		}
		nh, err := storage.ParseBatchHeader(nb)
		if err != nil || nh.BaseOffset != h.BaseOffset || nh.LastOffsetDelta != h.LastOffsetDelta || int(nh.NumRecords) != len(recs) {
			t.Fatalf("rebuilt header %+v from %+v: %v", nh, h, err)
		}
		var again []cleanRecordCopy
		if err := batchRecords(nh, nb, func(r cleanRecord) {
			again = append(again, cleanRecordCopy{offset: r.offset, key: string(r.key), tombstone: r.valueNull})
		}); err != nil {
			t.Fatalf("rebuilt batch does not decode: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(recs) {
			t.Fatalf("rebuilt records %v, want %v", again, recs)
		}
	})
}

// TestCleanerAbortMarkerPastCleanablePart: the data of an aborted
// transaction fills a segment and its marker lands in the next, active
// one, outside the part the cleaner may clean: the data must still be
// known as aborted (the markers are read from the whole log), so it
// neither hides the older committed value of its key nor stays.
func TestCleanerAbortMarkerPastCleanablePart(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	b, p := cleanerFixture(t, 1<<20, now)
	ts := now.UnixMilli() - 10_000
	appendRaw(t, p, keyedBatch(t, ts, -1, 0, []kv{{key: []byte("a"), value: []byte("a0")}}))
	appendRaw(t, p, keyedBatch(t, ts, 7, transactionalBit, []kv{{key: []byte("a"), value: make([]byte, 5<<10)}}))
	appendRaw(t, p, marker(t, ts, 7, false))
	segs := p.log.(cleanableLog).Segments()
	if last := segs[len(segs)-1]; !last.Active || last.Base != 2 {
		t.Fatalf("segments %+v: want the marker alone in the active segment", segs)
	}
	cleanUntilDone(t, b, p, compactConfig(time.Hour))
	var got []string
	for _, r := range readCleaned(t, p) {
		if !r.control {
			got = append(got, fmt.Sprintf("%s@%d", r.key, r.offset))
		}
	}
	if fmt.Sprint(got) != "[a@0]" {
		t.Fatalf("after cleaning: %v, want [a@0] (the committed a0; the aborted write gone)", got)
	}
}

// TestCleanerForgetsRemovedAborts: once the cleaner has removed an
// aborted transaction's data and, past delete.retention.ms, its marker,
// the partition's aborted index forgets it, but only a minute later
// (abortForgetDelay: a fetch may have read the data before the rewrite);
// a read_committed read finds neither the data nor the entry, and an
// abort whose marker stays is kept.
func TestCleanerForgetsRemovedAborts(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	b, p := cleanerFixture(t, 1<<20, now)
	old := now.UnixMilli() - 2*3600_000
	appendRaw(t, p, keyedBatch(t, old, 7, transactionalBit, []kv{{key: []byte("a"), value: []byte("aborted")}}))
	appendRaw(t, p, marker(t, old, 7, false))
	appendRaw(t, p, keyedBatch(t, old, -1, 0, []kv{{key: []byte("a"), value: []byte("a0")}}))
	// Producer 8's abort is the last batch of its producer: its marker stays.
	appendRaw(t, p, keyedBatch(t, old, 8, transactionalBit, []kv{{key: []byte("b"), value: []byte("aborted")}}))
	appendRaw(t, p, marker(t, old, 8, false))
	appendRaw(t, p, keyedBatch(t, old, 7, transactionalBit, []kv{{key: []byte("c"), value: []byte("c1")}}))
	appendRaw(t, p, marker(t, old, 7, true))
	for i := range 40 {
		appendRaw(t, p, keyedBatch(t, now.UnixMilli(), -1, 0, []kv{{key: []byte(fmt.Sprintf("f%d", i)), value: make([]byte, 200)}}))
	}
	if err := p.rebuildProducers(); err != nil { // the aborted index, from the log
		t.Fatal(err)
	}
	aborted := func() []int64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		var out []int64
		for _, a := range p.txns.aborted {
			out = append(out, a.ProducerID)
		}
		return out
	}
	if got := fmt.Sprint(aborted()); got != "[7 8]" {
		t.Fatalf("aborted index before cleaning: producers %s, want [7 8]", got)
	}
	cleanUntilDone(t, b, p, compactConfig(time.Hour))
	controls := 0
	for _, r := range readCleaned(t, p) {
		if r.control {
			controls++
		} else if r.key == "a" && r.offset != 2 || r.key == "b" {
			t.Fatalf("aborted record of %s at %d left", r.key, r.offset)
		}
	}
	if controls != 2 {
		t.Fatalf("%d markers left, want 2 (producer 8's abort and 7's commit, each its producer's last batch)", controls)
	}
	if got := fmt.Sprint(aborted()); got != "[7 8]" {
		t.Fatalf("aborted index right after cleaning: producers %s, want [7 8] until the delay passes", got)
	}
	b.opts.Now = func() time.Time { return now.Add(abortForgetDelay) }
	if _, err := b.cleanPartition(p, compactConfig(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(aborted()); got != "[8]" {
		t.Fatalf("aborted index after the delay: producers %s, want [8]", got)
	}
}
