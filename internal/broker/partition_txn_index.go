package broker

import (
	"encoding/binary"
	"errors"
	"sort"
	"sync"

	"github.com/sluice-mq/sluice/internal/storage"
)

// The persisted transaction index (Kafka's per-segment .txnindex, and
// the part of its producer snapshots that says which transactions are
// open): each closed segment gets a summary, kept in the segment's
// sidecar file (storage.Log.SetSegmentSidecar), of
//
//   - the aborted transactions whose abort marker is in the segment
//     (producer id, first offset, marker offset), and
//   - the transactions open at the segment's end (producer id, epoch,
//     first offset),
//
// so that opening a partition reads one small file per closed segment
// and scans only the segments after the last one with a summary
// (rebuildTxnsLocked), instead of every batch header of the log.
//
// A segment's summary follows from the one before it (the transactions
// open at its start) and its own batches; the first segment's starts
// with none open, as a scan from the log start does. Summaries are
// written off the hot path: by persistTxnIndex, which the broker calls on
// its retention tick, after a cleaner pass and at close, for the closed
// segments that have none yet. The storage keeps them true to their
// segment: a sidecar is valid only for the segment data it was written
// for, goes with its segment, and is removed before a cleaner rewrite
// swaps the segment, so a missing, torn or stale summary (a crash at any
// point) reads as absent and that segment and those after it are
// scanned, as before. A cleaner rewrite keeps offsets and what every
// transaction decided, so the summaries of the segments after a rewritten
// one stay right.
//
// Summary bytes (inside the sidecar's checksummed frame): version 1 (one
// byte), the number of aborted transactions (uint32) and each as producer
// id (int64), first offset (int64), marker offset (int64); then the
// number of open transactions (uint32) and each as producer id (int64),
// epoch (int16), first offset (int64); all big-endian.

// sidecarLog is what the persisted index needs of a partition's log: a
// storage.Log has it; a log without it is always scanned.
type sidecarLog interface {
	Segments() []storage.SegmentInfo
	SegmentSidecar(base int64) ([]byte, bool)
	SetSegmentSidecar(base, size int64, data []byte) error
}

// txnIndex is how far a partition's summaries are known to be written.
type txnIndex struct {
	mu sync.Mutex // serializes persistTxnIndex; taken before Partition.mu, never under it
	// known: every closed segment below through has a valid summary, and
	// open is what is open at through.
	known   bool
	through int64
	open    []OpenTxn
}

// txnSummary is one closed segment's part of a partition's transactions.
type txnSummary struct {
	aborted []AbortedTxn // markers in the segment, in offset order
	open    []OpenTxn    // open at the segment's end, by first offset
}

const txnSummaryVersion = 1

func (s txnSummary) encode() []byte {
	b := []byte{txnSummaryVersion}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.aborted)))
	for _, a := range s.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.open)))
	for _, o := range s.open {
		b = binary.BigEndian.AppendUint64(b, uint64(o.ProducerID))
		b = binary.BigEndian.AppendUint16(b, uint16(o.ProducerEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(o.FirstOffset))
	}
	return b
}

var errTxnSummary = errors.New("broker: malformed transaction summary")

// decodeTxnSummary decodes a summary, checking every count against the
// bytes there are before allocating for it.
func decodeTxnSummary(b []byte) (txnSummary, error) {
	var s txnSummary
	if len(b) < 1 || b[0] != txnSummaryVersion {
		return s, errTxnSummary
	}
	b = b[1:]
	count := func(each int) (int, bool) {
		if len(b) < 4 {
			return 0, false
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n)*uint64(each) > uint64(len(b)) {
			return 0, false
		}
		return int(n), true
	}
	u64 := func() int64 { v := int64(binary.BigEndian.Uint64(b)); b = b[8:]; return v }
	n, ok := count(24)
	if !ok {
		return s, errTxnSummary
	}
	s.aborted = make([]AbortedTxn, n)
	for i := range s.aborted {
		s.aborted[i] = AbortedTxn{ProducerID: u64(), FirstOffset: u64(), LastOffset: u64()}
	}
	if n, ok = count(18); !ok {
		return s, errTxnSummary
	}
	s.open = make([]OpenTxn, n)
	for i := range s.open {
		pid := u64()
		epoch := int16(binary.BigEndian.Uint16(b))
		b = b[2:]
		s.open[i] = OpenTxn{ProducerID: pid, ProducerEpoch: epoch, FirstOffset: u64()}
	}
	if len(b) != 0 {
		return s, errTxnSummary
	}
	return s, nil
}

// summarizeSegment scans the batches of [base, end) given the
// transactions open at base.
func summarizeSegment(log PartitionLog, base, end int64, open []OpenTxn) (txnSummary, error) {
	st := txnState{open: make(map[int64]OpenTxn, len(open))}
	for _, o := range open {
		st.open[o.ProducerID] = o
	}
	if err := scanTxns(log, base, end, &st); err != nil {
		return txnSummary{}, err
	}
	return txnSummary{aborted: st.aborted, open: openList(st.open)}, nil
}

func openList(m map[int64]OpenTxn) []OpenTxn {
	out := make([]OpenTxn, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstOffset < out[j].FirstOffset })
	return out
}

// loadTxnIndexLocked fills p.txns from the summaries of the closed
// segments from the one holding start, in order, as far as each has a
// valid one, and returns the offset after the last one used: where the
// scan of the rest begins. p.txns must be empty.
func (p *Partition) loadTxnIndexLocked(start int64) int64 {
	sl, ok := p.log.(sidecarLog)
	if !ok {
		return start
	}
	from := start
	var open []OpenTxn
	for _, s := range sl.Segments() {
		if s.Active {
			break
		}
		if s.End <= start {
			continue
		}
		data, ok := sl.SegmentSidecar(s.Base)
		if !ok {
			break
		}
		sum, err := decodeTxnSummary(data)
		if err != nil {
			break
		}
		for _, a := range sum.aborted {
			if a.LastOffset >= start {
				p.txns.aborted = append(p.txns.aborted, a)
			}
		}
		open, from = sum.open, s.End
	}
	clear(p.txns.open)
	for _, o := range open {
		// A transaction whose first records went with deleted segments is
		// open from the log start on (as Kafka bounds its first unstable
		// offset by the log start).
		o.FirstOffset = max(o.FirstOffset, start)
		p.txns.open[o.ProducerID] = o
	}
	return from
}

// persistTxnIndex writes the summary of every closed segment that has no
// valid one, oldest first, and returns the first error. It reads the log
// only (the summaries follow from the log, not from p's state), takes no
// lock of p's but its own, and may run beside appends and fetches.
func (p *Partition) persistTxnIndex() error {
	sl, ok := p.log.(sidecarLog)
	if !ok {
		return nil
	}
	p.txnIndex.mu.Lock()
	defer p.txnIndex.mu.Unlock()
	// Only segments wholly below the high watermark, read before the
	// segments: a segment just closed by a roll may still have batches
	// on their way to its file.
	hw := p.log.HighWatermark()
	segs := sl.Segments()
	if len(segs) == 0 {
		return nil
	}
	x := &p.txnIndex
	if !x.known || x.through < segs[0].Base {
		// Start over from the first segment (and with nothing open, as a
		// scan from the log start does), reading the summaries there are.
		x.known, x.through, x.open = true, segs[0].Base, nil
	}
	for _, s := range segs {
		if s.Active || s.End > hw {
			break
		}
		if s.End <= x.through {
			continue
		}
		if s.Base != x.through {
			x.known = false // the segments changed under us: next time
			return nil
		}
		if data, ok := sl.SegmentSidecar(s.Base); ok {
			if sum, err := decodeTxnSummary(data); err == nil {
				x.through, x.open = s.End, sum.open
				continue
			}
		}
		sum, err := summarizeSegment(p.log, s.Base, s.End, x.open)
		if err == nil {
			err = sl.SetSegmentSidecar(s.Base, s.Bytes, sum.encode())
		}
		if err != nil {
			x.known = false
			if errors.Is(err, storage.ErrNoSegment) {
				return nil // rewritten or deleted meanwhile: next time
			}
			return err
		}
		x.through, x.open = s.End, sum.open
	}
	return nil
}

// txnIndexStale makes the next persistTxnIndex check every summary again
// (after a cleaner pass rewrote segments, which removes theirs).
func (p *Partition) txnIndexStale() {
	p.txnIndex.mu.Lock()
	p.txnIndex.known = false
	p.txnIndex.mu.Unlock()
}

// forgetAborted drops the aborted transactions whose abort marker was at
// one of markers: the cleaner removed those markers, and every record of
// their transactions before them.
func (p *Partition) forgetAborted(markers []int64) {
	gone := make(map[int64]bool, len(markers))
	for _, m := range markers {
		gone[m] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.txns.aborted[:0]
	for _, a := range p.txns.aborted {
		if !gone[a.LastOffset] {
			kept = append(kept, a)
		}
	}
	clear(p.txns.aborted[len(kept):])
	p.txns.aborted = kept
}
