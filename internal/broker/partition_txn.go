package broker

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/sluice-mq/sluice/internal/storage"
)

// Transactions in a partition (issue 12).
//
// A transactional batch (attribute bit 4) belongs to the ongoing
// transaction of its producer id: the first such batch after the
// producer's last marker opens it at its base offset. A control batch
// (attribute bits 4 and 5; written only by the transaction coordinator
// through WriteMarker, refused from clients) holds one control record
// whose key says commit or abort, and closes the producer's transaction.
//
// The last stable offset (LSO) is the first offset of the earliest
// transaction still open, or the high watermark if none is (and never
// above it): read_committed readers see only what is below it, so data
// of an open transaction is never shown to them, and neither is anything
// after it, committed or not (Kafka's rule, which keeps the order of a
// partition the same for both isolation levels).
//
// An aborted transaction is remembered as (producer id, first offset,
// marker offset) in the partition's aborted index, sorted by marker
// offset; a read_committed fetch returns the entries that overlap what it
// returns, and the client drops the aborted producer's batches between
// the first offset and the marker. The index and the open transactions
// are rebuilt at open from each closed segment's persisted summary
// (partition_txn_index.go) and, past the last segment that has one, by
// scanning every batch header and decoding the control batches found
// (they are small, and decoding one needs a read of one batch). Entries
// whose marker is below the log start are dropped as reads find them.
//
// What a log cleaner (compaction, issue 12) must respect:
//
//   - data of an aborted transaction may be removed at any time (a reader
//     drops it anyway), but the abort marker must stay while any of that
//     transaction's data remains below it, or a read_committed reader
//     would show it;
//   - a commit or abort marker may be removed only once no data of its
//     transaction remains and it is older than delete.retention.ms (as
//     Kafka's cleaner does: a consumer in the middle of the transaction
//     must still see it close);
//   - nothing at or past the LSO may be cleaned (the transaction's
//     outcome is not known yet);
//   - offsets are preserved, so the aborted index (offsets only) stays
//     valid across a clean; the cleaner keeps control batches uncompacted
//     and unmerged, one control record per batch.

// transactionalBit is the batch attribute marking a transactional batch
// (controlBit, in cleaner_records.go, marks a control batch).
const transactionalBit = 0x10

// Control record types (the key of a control record).
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// AbortedTxn is an aborted transaction of one producer in a partition:
// its data lies from FirstOffset to its abort marker at LastOffset.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// OpenTxn is a transaction still open in a partition.
type OpenTxn struct {
	ProducerID    int64
	ProducerEpoch int16
	FirstOffset   int64
}

// txnState is a partition's transactions, guarded by Partition.mu.
type txnState struct {
	open    map[int64]OpenTxn // by producer id
	aborted []AbortedTxn      // sorted by LastOffset
}

// firstUnstableLocked recomputes the first offset of the earliest open
// transaction (math.MaxInt64 if none) into p.firstUnstable.
func (p *Partition) firstUnstableLocked() {
	first := int64(math.MaxInt64)
	for _, o := range p.txns.open {
		first = min(first, o.FirstOffset)
	}
	p.firstUnstable.Store(first)
}

// observeTxnLocked updates the transactions with a batch found at
// baseOffset; for a control batch, kind is its control record type.
func (p *Partition) observeTxnLocked(h storage.BatchHeader, baseOffset int64, kind int16) {
	if p.txns.observe(h, baseOffset, kind) {
		p.firstUnstableLocked()
	}
}

// observe updates s with a batch found at baseOffset (kind: as for
// observeTxnLocked) and reports whether the open transactions changed.
func (s *txnState) observe(h storage.BatchHeader, baseOffset int64, kind int16) bool {
	if h.Attributes&transactionalBit == 0 || h.ProducerID < 0 {
		return false
	}
	if h.Attributes&controlBit == 0 {
		if _, ok := s.open[h.ProducerID]; !ok {
			s.open[h.ProducerID] = OpenTxn{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, FirstOffset: baseOffset}
			return true
		}
		return false
	}
	o, ok := s.open[h.ProducerID]
	if !ok {
		return false // a marker of a transaction with no data here
	}
	delete(s.open, h.ProducerID)
	if kind == ControlAbort {
		s.aborted = append(s.aborted, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: o.FirstOffset, LastOffset: baseOffset})
	}
	return true
}

// WriteMarker appends a control batch closing producerID's transaction
// in this partition (commit or abort) at epoch, and returns the append
// to wait on for durability. A marker whose epoch is older than the
// producer's fails with ErrInvalidProducerEpoch. Writing the marker of
// a transaction with no data here is harmless, so the coordinator may
// write markers again after a crash.
func (p *Partition) WriteMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32) (Pending, error) {
	kind := ControlAbort
	if commit {
		kind = ControlCommit
	}
	batch := buildControlBatch(producerID, epoch, kind, coordinatorEpoch, p.now().UnixMilli())
	if p.repl != nil {
		// Every replica writes the marker where its Raft entry puts it.
		p.mu.Lock()
		st := p.producers[producerID]
		p.mu.Unlock()
		if st != nil && epoch < st.epoch {
			return nil, ErrInvalidProducerEpoch
		}
		return p.repl.proposeMarker(batch)
	}
	_, ap, err := p.writeMarkerLocal(batch, -1)
	return ap, err
}

// writeMarkerLocal appends a marker batch built by WriteMarker, stamped
// with leaderEpoch when it is not -1 (a replicated partition's term).
func (p *Partition) writeMarkerLocal(batch []byte, leaderEpoch int32) (int64, Pending, error) {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return -1, nil, coreError(err)
	}
	kind, err := markerType(batch)
	if err != nil {
		return -1, nil, err
	}
	if leaderEpoch >= 0 {
		stampLeaderEpoch(batch, leaderEpoch)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.producers[h.ProducerID]; st != nil && h.ProducerEpoch < st.epoch {
		return -1, nil, ErrInvalidProducerEpoch
	}
	base, ap, err := p.log.Append(batch)
	if err != nil {
		return -1, nil, coreError(err)
	}
	p.observeLocked(h, base, ap)
	p.observeTxnLocked(h, base, kind)
	return base, ap, nil
}

// OpenTransactions returns the transactions open in the partition.
func (p *Partition) OpenTransactions() []OpenTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]OpenTxn, 0, len(p.txns.open))
	for _, o := range p.txns.open {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstOffset < out[j].FirstOffset })
	return out
}

// AbortedIn returns the aborted transactions that overlap the batches in
// data (as Read returned them from offset): those whose marker is at or
// after offset and whose first offset is before the end of data. A
// read_committed reader drops their batches.
func (p *Partition) AbortedIn(offset int64, data []byte) []AbortedTxn {
	end := offset
	for n := 0; len(data)-n >= 61; {
		b := data[n:]
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if size < 61 || size > len(b) {
			break
		}
		end = int64(binary.BigEndian.Uint64(b[0:])) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		n += size
	}
	return p.AbortedBetween(offset, end)
}

// AbortedBetween returns the aborted transactions that overlap a read of
// the offsets from offset to end (exclusive): AbortedIn for a read whose
// batches were not copied (a FileRegion, which knows its End).
func (p *Partition) AbortedBetween(offset, end int64) []AbortedTxn {
	if end <= offset {
		return nil
	}
	start := p.log.StartOffset()
	p.mu.Lock()
	defer p.mu.Unlock()
	// Forget what is wholly below the log start.
	drop := sort.Search(len(p.txns.aborted), func(i int) bool { return p.txns.aborted[i].LastOffset >= start })
	if drop > 0 {
		p.txns.aborted = append(p.txns.aborted[:0], p.txns.aborted[drop:]...)
	}
	i := sort.Search(len(p.txns.aborted), func(i int) bool { return p.txns.aborted[i].LastOffset >= offset })
	var out []AbortedTxn
	for _, a := range p.txns.aborted[i:] {
		if a.FirstOffset < end {
			out = append(out, a)
		}
	}
	return out
}

// rebuildTxnsLocked rebuilds the open transactions and the aborted index:
// from the persisted summaries of the closed segments that have a valid
// one (partition_txn_index.go), then from every batch header after them,
// reading each control batch to learn whether it commits or aborts.
func (p *Partition) rebuildTxnsLocked() error {
	p.txns.open = make(map[int64]OpenTxn)
	p.txns.aborted = nil
	defer p.firstUnstableLocked()
	from := p.loadTxnIndexLocked(p.log.StartOffset())
	return scanTxns(p.log, from, math.MaxInt64, &p.txns)
}

// scanTxns applies the batches of log in [from, end) to st. The log is
// not read while it is being scanned: a first pass finds the control
// batches, which are then read, and a second applies.
func scanTxns(log PartitionLog, from, end int64, st *txnState) error {
	var controls []int64
	var sizes []int
	anyTxn := false
	if err := log.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.BaseOffset >= end {
			return false
		}
		anyTxn = anyTxn || h.Attributes&transactionalBit != 0
		if h.Attributes&controlBit != 0 {
			controls, sizes = append(controls, h.BaseOffset), append(sizes, h.Size())
		}
		return true
	}); err != nil || !anyTxn && len(st.open) == 0 {
		return err
	}
	kinds := make(map[int64]int16, len(controls))
	for i, off := range controls {
		data, err := log.Read(off, sizes[i])
		if err != nil {
			return err
		}
		kind, err := markerType(data)
		if err != nil {
			return fmt.Errorf("control batch at %d: %w", off, err)
		}
		kinds[off] = kind
	}
	return log.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.BaseOffset >= end {
			return false
		}
		kind, ok := kinds[h.BaseOffset]
		if !ok {
			kind = -1
		}
		st.observe(h, h.BaseOffset, kind)
		return true
	})
}

// buildControlBatch encodes a control batch of one control record:
// key (version 0, type kind), value (version 0, coordinatorEpoch).
func buildControlBatch(producerID int64, epoch int16, kind int16, coordinatorEpoch int32, ts int64) []byte {
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(kind))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	b := storage.BuildRecordBatch(0, ts, []storage.Record{{Key: key, Value: val}})
	binary.BigEndian.PutUint16(b[posAttributes:], transactionalBit|controlBit)
	binary.BigEndian.PutUint64(b[43:], uint64(producerID))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], math.MaxUint32) // base sequence -1
	seal(b)
	return b
}

// markerType decodes the control record type of the control batch at
// the start of data (uncompressed, its first record's key: version int16,
// type int16), failing with a corrupt-batch error for anything else.
func markerType(data []byte) (int16, error) {
	h, err := storage.ParseBatchHeader(data)
	if err != nil {
		return 0, err
	}
	if h.Attributes&controlBit == 0 {
		return 0, corruptf("not a control batch")
	}
	if h.Attributes&batchCodecMask != 0 {
		return 0, corruptf("compressed control batch")
	}
	if h.NumRecords < 1 || h.Size() < 61 || h.Size() > len(data) {
		return 0, corruptf("control batch without records")
	}
	r := recordReader{b: data[61:h.Size()]}
	n := r.varint32()
	r.b = r.take(n)
	r.int8()     // attributes
	r.varint64() // timestamp delta
	r.varint32() // offset delta
	key := r.take(r.varint32())
	if r.err != nil {
		return 0, r.err
	}
	if len(key) < 4 {
		return 0, corruptf("control record key of %d bytes", len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v != 0 {
		return 0, corruptf("control record key version %d", v)
	}
	kind := int16(binary.BigEndian.Uint16(key[2:]))
	if kind != ControlAbort && kind != ControlCommit {
		return 0, corruptf("control record type %d", kind)
	}
	return kind, nil
}

// ProducerInfo is a producer's state in a partition, as DescribeProducers
// reports it.
type ProducerInfo struct {
	ProducerID   int64
	Epoch        int16
	LastSequence int32 // -1: none since its epoch began
	// TxnStartOffset is the first offset of its open transaction, -1 if
	// none is open.
	TxnStartOffset int64
}

// Producers returns the producers the partition keeps state for, by id.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for id, st := range p.producers {
		pi := ProducerInfo{ProducerID: id, Epoch: st.epoch, LastSequence: -1, TxnStartOffset: -1}
		if st.n > 0 {
			pi.LastSequence = st.last().lastSeq
		}
		if o, ok := p.txns.open[id]; ok {
			pi.TxnStartOffset = o.FirstOffset
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}
