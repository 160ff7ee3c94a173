package broker

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// Partition is one partition of a topic: its log, the idempotent producer
// state that decides whether a batch is new, a duplicate, or out of order,
// and what readers see of it. Front ends reach the log only through it:
// it validates what is appended, owns the offsets a client is told (log
// start, high watermark, last stable offset) and decides what a read at
// each isolation level may return.
type Partition struct {
	Topic string
	Index int32

	log PartitionLog
	// maxMessageBytes is the topic's max.message.bytes, the largest batch
	// Append takes (<= 0: no limit of its own).
	maxMessageBytes atomic.Int64
	// stored is how batches are stored: the topic's compression.type and
	// message.timestamp.type (partition_rewrite.go).
	stored atomic.Pointer[storedForm]
	now    func() time.Time // the clock of LogAppendTime
	// rotor spreads keyless routed messages over the topic's partitions
	// (Topic.Publish; the first partition's serves the topic).
	rotor atomic.Uint32

	mu        sync.Mutex // guards producers and txns, orders appends with their checks
	producers map[int64]*producerState
	txns      txnState // open transactions and the aborted index (partition_txn.go)
	txnIndex  txnIndex // how far the segments' transaction summaries are written (partition_txn_index.go)
	// firstUnstable is the first offset of the earliest open transaction
	// (math.MaxInt64 if none), written under mu, read without it.
	firstUnstable atomic.Int64
	// repl, set before the partition is in use, replicates it through its
	// Raft group (replica.go); nil for a partition of one replica.
	repl *replica
	// minInsync is the topic's min.insync.replicas (replica.go).
	minInsync atomic.Int32
}

// newPartition returns partition index of topic over log, its producer
// state rebuilt from what log holds.
func newPartition(topic string, index int32, log PartitionLog, maxMessageBytes int) (*Partition, error) {
	p := &Partition{Topic: topic, Index: index, log: log, producers: make(map[int64]*producerState), now: time.Now}
	p.maxMessageBytes.Store(int64(maxMessageBytes))
	p.stored.Store(&storedForm{codec: -1})
	p.firstUnstable.Store(math.MaxInt64)
	if err := p.rebuildProducers(); err != nil {
		return nil, err
	}
	return p, nil
}

// IsolationLevel is what a reader may see: Kafka's read_uncommitted sees
// everything below the high watermark, read_committed only what is below
// the last stable offset (partition_txn.go).
type IsolationLevel int8

const (
	ReadUncommitted IsolationLevel = iota
	ReadCommitted
)

// producerState remembers, per producer id, its epoch and its last few
// batches so that a retried batch is answered with its first offsets
// instead of being appended twice (Kafka keeps five; so do we).
type producerState struct {
	epoch  int16
	recent [5]seqEntry // ring of the latest batches, newest at (next-1)
	next   int
	n      int
}

type seqEntry struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	// ap is the append that wrote the batch, nil for a batch found in the
	// log at recovery. Until it completes the batch is not durable, so a
	// retry of it is answered only once it is, and fails if it failed.
	ap Pending
}

func (s *producerState) last() seqEntry { return s.recent[(s.next+len(s.recent)-1)%len(s.recent)] }

func (s *producerState) add(e seqEntry) {
	s.recent[s.next] = e
	s.next = (s.next + 1) % len(s.recent)
	if s.n < len(s.recent) {
		s.n++
	}
}

func (s *producerState) find(firstSeq, lastSeq int32) (seqEntry, bool) {
	for i := 0; i < s.n; i++ {
		e := s.recent[(s.next+len(s.recent)-1-i)%len(s.recent)]
		if e.firstSeq == firstSeq && e.lastSeq == lastSeq {
			return e, true
		}
	}
	return seqEntry{}, false
}

func nextSeq(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

func lastSeqOf(h storage.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// AppendResult says where a produced batch set landed.
type AppendResult struct {
	BaseOffset    int64
	LogAppendTime int64
	LogStart      int64
	// Duplicate is true when every batch was a retry of batches already
	// appended; nothing was appended. If the original is not durable yet,
	// the returned Pending is the original's: the retry is answered when
	// (and only if) the original is.
	Duplicate bool
}

// Append validates batches (one or more whole RecordBatch v2: framing,
// magic 2, CRC32C, each at most the topic's max.message.bytes) and stores
// them, enforcing idempotent-producer sequences. It returns the pending
// append to wait on for durability (nil when there is nothing to wait
// for). Malformed batches fail with ErrCorruptMessage, oversized ones
// with ErrMessageTooLarge, control batches (only WriteMarker writes
// them) with ErrControlBatch; nothing of a failed request is appended.
// A transactional batch opens its producer's transaction here if none is
// open (partition_txn.go).
// Batches are stored as the topic's compression.type and
// message.timestamp.type say (partition_rewrite.go).
//
// A producer's sequence state counts a batch from the moment it is handed
// to the log, so that pipelined batches (up to five in flight) are checked
// against each other; but a retry is answered as a duplicate only with the
// original's own durability: it waits for the original's fsync, and gets
// its error if that failed. A failed write fails the log, and Recover
// rebuilds the sequence state from what is durable, so a batch whose
// write failed is written again when its producer retries it.
func (p *Partition) Append(batches []byte) (AppendResult, Pending, error) {
	return p.AppendTxn(batches, nil)
}

// TxnCheck says whether a producer may append transactional data to a
// partition now (Broker.TxnProduceCheck: its transaction is ongoing and
// includes the partition).
type TxnCheck func(topic string, partition int32, producerID int64, epoch int16) error

// AppendTxn is Append for a produce request that carries a transactional
// id: check (if not nil) is asked about every transactional batch first,
// and its error refuses the request.
func (p *Partition) AppendTxn(batches []byte, check TxnCheck) (AppendResult, Pending, error) {
	if p.repl != nil {
		return p.repl.propose(batches, check)
	}
	return p.appendLocal(batches, check, -1, -1)
}

// checkProduce checks a produce's batches before anything is written or
// proposed: framing, CRCs and size (untrusted input), no control batch
// from a client, and check (if not nil) for every transactional batch.
func (p *Partition) checkProduce(batches []byte, check TxnCheck) ([]storage.BatchHeader, error) {
	headers, err := storage.ValidateBatches(batches, int(p.maxMessageBytes.Load()))
	if err != nil {
		return nil, coreError(err)
	}
	for _, h := range headers {
		if h.Attributes&controlBit != 0 {
			return nil, ErrControlBatch
		}
		if check != nil && h.Attributes&transactionalBit != 0 {
			if err := check(p.Topic, p.Index, h.ProducerID, h.ProducerEpoch); err != nil {
				return nil, err
			}
		}
	}
	return headers, nil
}

// appendLocal is AppendTxn on this node's log: a single node's and an
// unreplicated partition's produce, and a replicated partition's apply of
// a committed entry (replica.go), which passes the entry's Raft term as
// leaderEpoch (stamped in every batch; -1 leaves the producer's) and the
// leader's LogAppendTime (-1: take the clock now).
func (p *Partition) appendLocal(batches []byte, check TxnCheck, leaderEpoch int32, appendTime int64) (AppendResult, Pending, error) {
	headers, err := p.checkProduce(batches, check)
	if err != nil {
		return AppendResult{}, nil, err
	}
	// Recompression (partition_rewrite.go) runs before the lock is taken;
	// the LogAppendTime stamp is put on under it, so that append times
	// follow offsets.
	form := p.stored.Load()
	if form.codec >= 0 {
		if batches, err = form.recompress(batches, headers); err != nil {
			return AppendResult{}, nil, err
		}
		// Kafka's limit applies to what is stored: a recompressed batch
		// may have grown past it.
		if _, err := storage.ValidateBatches(batches, int(p.maxMessageBytes.Load())); err != nil {
			return AppendResult{}, nil, coreError(err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	// Decide for every batch before appending any, so a request is applied
	// all or nothing.
	var dup *seqEntry
	for _, h := range headers {
		if h.ProducerID < 0 {
			continue
		}
		st := p.producers[h.ProducerID]
		if st == nil {
			continue // unknown producer (new, or its state aged out): accept
		}
		switch {
		case h.ProducerEpoch < st.epoch:
			return AppendResult{}, nil, ErrInvalidProducerEpoch
		case h.ProducerEpoch > st.epoch:
			if h.BaseSequence != 0 {
				return AppendResult{}, nil, ErrOutOfOrderSequence
			}
		default:
			if e, ok := st.find(h.BaseSequence, lastSeqOf(h)); ok && len(headers) == 1 {
				dup = &e
				continue
			}
			if st.n == 0 { // a new epoch set by a marker: sequences restart
				if h.BaseSequence != 0 {
					return AppendResult{}, nil, ErrOutOfOrderSequence
				}
				continue
			}
			if h.BaseSequence != nextSeq(st.last().lastSeq) {
				return AppendResult{}, nil, ErrOutOfOrderSequence
			}
		}
	}
	if dup != nil {
		res := AppendResult{BaseOffset: dup.firstOffset, LogAppendTime: -1, LogStart: p.log.StartOffset(), Duplicate: true}
		if dup.ap != nil { // not known durable yet: answer as the original is answered
			select {
			case <-dup.ap.Done():
				if err := dup.ap.Wait(); err != nil {
					return AppendResult{}, nil, coreError(err) // the original was lost: the log is failed until Recover
				}
			default:
				return res, dup.ap, nil
			}
		}
		return res, nil, nil
	}

	if form.logAppendTime {
		if appendTime < 0 {
			appendTime = p.now().UnixMilli()
		}
		batches = stamp(batches, appendTime)
	} else {
		appendTime = -1
	}
	if leaderEpoch >= 0 {
		stampLeaderEpoch(batches, leaderEpoch)
	}
	base, ap, err := p.log.Append(batches)
	if err != nil {
		return AppendResult{}, nil, coreError(err)
	}
	off := base
	for _, h := range headers {
		if h.ProducerID >= 0 {
			p.observeLocked(h, off, ap)
			p.observeTxnLocked(h, off, -1)
		}
		off += int64(h.LastOffsetDelta) + 1
	}
	return AppendResult{BaseOffset: base, LogAppendTime: appendTime, LogStart: p.log.StartOffset()}, ap, nil
}

// observeLocked records a batch of a producer at baseOffset, written by
// ap (nil: found durable in the log). A control batch only moves the
// producer's epoch: it has no sequence.
func (p *Partition) observeLocked(h storage.BatchHeader, baseOffset int64, ap Pending) {
	st := p.producers[h.ProducerID]
	if st == nil || h.ProducerEpoch > st.epoch {
		st = &producerState{epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = st
	}
	if h.Attributes&controlBit != 0 {
		return
	}
	st.add(seqEntry{
		firstSeq: h.BaseSequence, lastSeq: lastSeqOf(h),
		firstOffset: baseOffset, lastOffset: baseOffset + int64(h.LastOffsetDelta), ap: ap,
	})
}

// Failed returns why the partition's log refuses writes, nil if it
// does not.
func (p *Partition) Failed() error { return p.log.Failed() }

// Recover reopens a failed partition log from what is durable
// (PartitionLog.Recover) and rebuilds the producers' sequence state from
// it, forgetting the batches whose writes failed. A healthy partition is
// left alone.
func (p *Partition) Recover() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log.Failed() == nil {
		return nil
	}
	if err := p.log.Recover(); err != nil {
		return err
	}
	if err := p.rebuildProducersLocked(); err != nil {
		return err
	}
	return p.rebuildTxnsLocked()
}

// rebuildProducers replays batch headers from the last segments so that
// sequence checks survive a restart, and rebuilds the transactions
// (partition_txn.go).
func (p *Partition) rebuildProducers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.rebuildProducersLocked(); err != nil {
		return err
	}
	return p.rebuildTxnsLocked()
}

func (p *Partition) rebuildProducersLocked() error {
	clear(p.producers)
	bases := p.log.SegmentBaseOffsets()
	from := p.log.StartOffset()
	if len(bases) > 2 {
		from = max(from, bases[len(bases)-2])
	}
	return p.log.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.ProducerID >= 0 {
			p.observeLocked(h, h.BaseOffset, nil)
		}
		return true
	})
}

// Offsets returns the first offset still held, the high watermark (the
// offset after the last durable record: read_uncommitted sees everything
// below it) and the last stable offset (read_committed sees everything
// below it: the first offset of the earliest open transaction, at most
// the high watermark).
func (p *Partition) Offsets() (start, highWatermark, lastStable int64) {
	hw := p.log.HighWatermark()
	return p.log.StartOffset(), hw, min(hw, p.firstUnstable.Load())
}

// visibleEnd is the offset below which a reader at iso sees records.
func (p *Partition) visibleEnd(iso IsolationLevel) int64 {
	_, hw, lso := p.Offsets()
	if iso == ReadCommitted {
		return lso
	}
	return hw
}

// Read returns whole batches visible at iso, from the one holding offset:
// up to maxBytes, but at least one whole batch if any is visible, so that
// a reader always makes progress; nil at the visible end. No record at or
// past the visible end (the high watermark, or the last stable offset for
// ReadCommitted) is returned. An offset below the log start or past the
// high watermark fails with ErrOffsetOutOfRange; one from the last
// stable offset up to the high watermark reads nothing at ReadCommitted.
// A ReadCommitted reader also needs AbortedIn for what it read.
func (p *Partition) Read(offset int64, maxBytes int, iso IsolationLevel) ([]byte, error) {
	start, hw, _ := p.Offsets()
	end := p.visibleEnd(iso)
	if offset > hw && p.repl != nil && !p.repl.settled() {
		// A new leader still applying what its predecessor committed
		// (and showed): the offset is not out of range, only not here yet.
		return nil, nil
	}
	if offset < start || offset > hw {
		return nil, fmt.Errorf("%w: offset %d, log holds %d..%d", ErrOffsetOutOfRange, offset, start, hw)
	}
	if offset >= end {
		return nil, nil
	}
	data, err := p.log.Read(offset, maxBytes)
	if err != nil {
		return nil, coreError(err)
	}
	return data[:visiblePrefix(data, end)], nil
}

// visiblePrefix is the length of the leading whole batches of data whose
// records all lie below end.
func visiblePrefix(data []byte, end int64) int {
	const headerBytes = 61 // the fixed RecordBatch v2 header
	n := 0
	for len(data)-n >= headerBytes {
		b := data[n:]
		base := int64(binary.BigEndian.Uint64(b[0:]))
		size := 12 + int64(int32(binary.BigEndian.Uint32(b[8:])))
		last := base + int64(int32(binary.BigEndian.Uint32(b[23:])))
		if size < headerBytes || size > int64(len(b)) || last >= end {
			break
		}
		n += int(size)
	}
	return n
}

// Watch returns a channel closed the next time more may be visible (the
// high watermark moved) or the partition closes: a long-polling reader
// reads, and if it found too little waits on the channel it took before
// reading, then reads again.
func (p *Partition) Watch() <-chan struct{} { return p.log.Changed() }

// DeleteRecordsBefore durably moves the log start up to offset and drops
// the segments wholly below it, returning the log start afterwards. An
// offset at or below the log start changes nothing; one above the high
// watermark, or negative, fails with ErrOffsetOutOfRange.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	start, hw, _ := p.Offsets()
	if offset < 0 || offset > hw {
		return -1, fmt.Errorf("%w: delete before %d, high watermark %d", ErrOffsetOutOfRange, offset, hw)
	}
	if offset > start && p.repl != nil {
		// Every replica deletes the same records, where the entry falls.
		start, err := p.repl.proposeDelete(offset)
		return start, coreError(err)
	}
	if offset > start {
		if err := p.log.DeleteRecordsBefore(offset); err != nil {
			return -1, coreError(err)
		}
	}
	return p.log.StartOffset(), nil
}

// Size is the bytes the partition's log holds.
func (p *Partition) Size() int64 { return p.log.Size() }

// Segments is the number of segments the partition's log holds.
func (p *Partition) Segments() int { return len(p.log.SegmentBaseOffsets()) }

// configure applies the topic's resolved configuration to the partition.
func (p *Partition) configure(cfg resolvedConfig) {
	p.maxMessageBytes.Store(int64(cfg.maxMessageBytes))
	p.stored.Store(&storedForm{codec: cfg.codec, level: cfg.codecLevel, logAppendTime: cfg.logAppendTime})
	p.minInsync.Store(int32(cfg.minInsync))
	p.log.SetSegmentOptions(cfg.segmentBytes, cfg.segmentAge)
}
