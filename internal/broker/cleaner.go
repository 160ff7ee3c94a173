package broker

// The log cleaner: cleanup.policy=compact (and compact,delete) topics keep
// at least the latest record of every key. It is the storage's segment
// rewrite (storage.Log.RewriteSegment, the machinery AMQP queues compact
// their settled segments with: one crash-atomic swap, offsets kept, gaps
// read as the next batch) driven by a key policy instead of an ack policy.
//
// A pass over one partition, as Kafka's cleaner does it:
//
//  1. The cleanable part is the closed segments from the log start that
//     lie wholly below the last stable offset (no undecided transaction
//     in them) and whose newest record is older than min.compaction.lag.ms.
//     Its dirty part starts at the partition's first dirty offset (where
//     the last pass stopped, kept across restarts in cleaner_checkpoint.go;
//     without it the log start, which costs one extra pass, not
//     correctness). A pass runs when the dirty
//     bytes are at least min.cleanable.dirty.ratio of the cleanable bytes,
//     or when the oldest dirty segment is older than max.compaction.lag.ms.
//  2. Transactions: the control batches of the whole log are read
//     first (a marker may lie past the cleanable part), giving for each
//     producer the offsets of its COMMIT and ABORT markers. A
//     transactional batch belongs to the first marker of its producer
//     after it.
//  3. The offset map (cleaner_map.go, a fixed number of bytes however many
//     keys) takes each key of the dirty part with its latest offset,
//     skipping data of aborted transactions and control batches. When it
//     fills, the pass stops the map there (mapEnd) and cleans only what
//     it covers; the next pass goes on from mapEnd.
//  4. Every closed segment from the log start through the one holding
//     mapEnd is rewritten, oldest first, record by record:
//     - data of an aborted transaction goes;
//     - a record whose key the map holds at a later offset goes;
//     - a tombstone (null value) below mapEnd goes once its batch's
//     timestamp is older than delete.retention.ms: every older value of
//     its key went in this pass or an earlier one (a pass cleans from
//     the start, in order, and stops at its first failure);
//     - a record without a key stays (Kafka refuses those on compacted
//     topics at produce; Sluice keeps what it has);
//     - a control batch goes only when no record of its transaction is
//     left before it and it is older than delete.retention.ms, so that
//     a read_committed consumer that read the transaction's data before
//     it went still finds the marker for as long as a tombstone would
//     stay; else it stays;
//     - a batch that loses all its records goes, unless it is its
//     producer's last batch in the log: that one stays as an empty
//     batch (header only, record count 0, as Kafka keeps it), so that the
//     idempotent producer state rebuilt from headers (rebuildProducers)
//     is the same after cleaning. Headers of kept batches never change
//     their offsets, producer id, epoch or sequence.
//
// Memory: the offset map (CleanerOptions.MapBytes), one batch at a time,
// and per pass one entry per producer id and per transaction marker in the
// log. I/O: reads and rewrites are throttled to
// CleanerOptions.BytesPerSecond. After a pass that rewrote segments, their
// transaction summaries are written again (partition_txn_index.go), and an
// abort marker it removed leaves the partition's aborted index a minute
// later (forgetAborts). No lock of the partition is held: the
// rewrite takes the log's admin lock (retention waits, appends do not).

import (
	"errors"
	"maps"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// CleanerOptions tune the log cleaner of compacted topics.
type CleanerOptions struct {
	// MapBytes is the memory of the offset map of one pass (24 bytes a
	// key; a pass over more distinct keys than fit in 90% of it cleans in
	// several passes). Default 16 MiB (about 600,000 keys).
	MapBytes int64
	// BytesPerSecond caps the bytes the cleaner reads (and so writes) per
	// second, so that it does not starve producers of disk bandwidth.
	// Default 32 MiB/s; negative: unthrottled.
	BytesPerSecond int64
}

const (
	defaultCleanerMapBytes       = 16 << 20
	defaultCleanerBytesPerSecond = 32 << 20
	cleanerReadBytes             = 1 << 20 // bytes a cleaner read asks for
)

// cleanableLog is what the cleaner needs of a partition's log besides
// PartitionLog: a storage.Log has it, a log without it is not cleaned.
type cleanableLog interface {
	Segments() []storage.SegmentInfo
	RewriteSegment(base int64, rewrite storage.Rewrite) (int64, error)
}

// cleaner is the broker's log cleaner state; one goroutine runs it.
type cleaner struct {
	mu         sync.Mutex           // guards firstDirty and the stats
	firstDirty map[*Partition]int64 // where each partition's dirty part starts
	stats      CleanerStats         // totals since start
	stop       <-chan struct{}      // closed when the broker stops
	// checkpoint is what cleaner_checkpoint.go read at the first round,
	// each entry taken by the first partition of its name seen; saved is
	// what was last written.
	checkpoint map[cleanerKey]int64
	loaded     bool
	saved      map[cleanerKey]int64
	// dirty is each compacted partition's dirty ratio as the last round
	// found it.
	dirty map[cleanerKey]float64
	// forget are the abort markers the cleaner removed, per partition,
	// for the partition's in-memory aborted index to forget once
	// abortForgetDelay has passed.
	forget map[*Partition][]forgetAborts
}

// forgetAborts are abort markers removed from a partition at a time.
type forgetAborts struct {
	markers []int64
	at      time.Time
}

// abortForgetDelay is how long a partition's aborted index keeps an entry
// after the cleaner removed its marker (when no record of the transaction
// was left): longer than any fetch takes between reading its batches,
// perhaps from the segment before the rewrite, and asking the index which
// of them are aborted.
const abortForgetDelay = time.Minute

// forgetAborts makes p's aborted index forget the transactions whose abort
// markers the cleaner removed at least abortForgetDelay before now, so
// that the index of a compacted partition does not grow with every abort
// since the broker started.
func (b *Broker) forgetAborts(p *Partition, now time.Time) {
	b.cleaner.mu.Lock()
	pending := b.cleaner.forget[p]
	var due []int64
	kept := pending[:0]
	for _, f := range pending {
		if now.Sub(f.at) >= abortForgetDelay {
			due = append(due, f.markers...)
		} else {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		delete(b.cleaner.forget, p)
	} else {
		b.cleaner.forget[p] = kept
	}
	b.cleaner.mu.Unlock()
	if len(due) > 0 {
		p.forgetAborted(due)
	}
}

// CleanerStats count what the cleaner did (totals since start) and say
// how its last round found the compacted partitions.
type CleanerStats struct {
	Passes          int64 // partition passes that rewrote segments
	SegmentsCleaned int64
	BytesRead       int64
	BytesWritten    int64 // bytes of the cleaned segments written
	BytesFreed      int64
	RecordsRemoved  int64
	Rounds          int64 // rounds over every compacted partition completed

	// Of the last completed round:
	LastRoundDuration time.Duration
	// MaxDirtyRatio is the largest share of dirty bytes in the cleanable
	// part of a compacted partition, as the round found them before it
	// cleaned (Kafka's max-dirty-percent, as a ratio).
	MaxDirtyRatio float64
	// Uncleanable is the number of partitions whose pass failed (a
	// corrupt batch, a full offset map, a failed write).
	Uncleanable int64
}

var errCleanerStopped = errors.New("broker: cleaner stopped")

// RunCleaner cleans the compacted topics every interval until stop is
// closed.
func (b *Broker) RunCleaner(interval time.Duration, stop <-chan struct{}) {
	b.cleaner.mu.Lock()
	b.cleaner.stop = stop
	b.cleaner.mu.Unlock()
	every(interval, stop, b.CleanLogs)
}

// CleanerStats returns the cleaner's totals.
func (b *Broker) CleanerStats() CleanerStats {
	b.cleaner.mu.Lock()
	defer b.cleaner.mu.Unlock()
	return b.cleaner.stats
}

// CleanerDirtyRatio returns the share of dirty bytes in the cleanable
// part of a compacted partition, as the cleaner's last round found it
// before cleaning; ok is false if no round has looked at it.
func (b *Broker) CleanerDirtyRatio(topic string, partition int32) (ratio float64, ok bool) {
	b.cleaner.mu.Lock()
	defer b.cleaner.mu.Unlock()
	ratio, ok = b.cleaner.dirty[cleanerKey{topic, partition}]
	return ratio, ok
}

// CleanLogs runs one cleaner pass over every partition of every compacted
// topic that is due for one.
func (b *Broker) CleanLogs() {
	b.cleaner.mu.Lock()
	if !b.cleaner.loaded && b.opts.DataDir != "" {
		b.cleaner.loaded = true
		b.cleaner.checkpoint = loadCleanerCheckpoint(b.opts.DataDir)
	}
	b.cleaner.mu.Unlock()
	round := time.Now()
	var maxDirty float64
	var uncleanable int64
	dirty := make(map[cleanerKey]float64)
	seen := make(map[*Partition]bool)
	for _, t := range b.Topics() {
		if !t.cfg.compact {
			continue
		}
		for _, p := range t.Partitions {
			seen[p] = true
			began := time.Now()
			st, err := b.cleanPartition(p, t.cfg)
			maxDirty = max(maxDirty, st.MaxDirtyRatio)
			dirty[cleanerKey{p.Topic, p.Index}] = st.MaxDirtyRatio
			switch {
			case errors.Is(err, errCleanerStopped):
				return
			case errors.Is(err, storage.ErrClosed):
				continue // deleted meanwhile
			case err != nil:
				uncleanable++
				b.log.Warn("log cleaner failed", "topic", t.Name, "partition", p.Index, "err", err)
			case st.SegmentsCleaned > 0:
				b.log.Info("log cleaner pass", "topic", t.Name, "partition", p.Index,
					"segments", st.SegmentsCleaned, "read_bytes", st.BytesRead, "freed_bytes", st.BytesFreed,
					"records_removed", st.RecordsRemoved, "took_ms", time.Since(began).Milliseconds())
			}
		}
	}
	b.cleaner.mu.Lock()
	now := make(map[cleanerKey]int64)
	for p, off := range b.cleaner.firstDirty {
		if !seen[p] {
			delete(b.cleaner.firstDirty, p) // deleted, or no longer compacted
			delete(b.cleaner.forget, p)
			continue
		}
		now[cleanerKey{p.Topic, p.Index}] = off
	}
	b.cleaner.stats.Rounds++
	b.cleaner.stats.LastRoundDuration = time.Since(round)
	b.cleaner.stats.MaxDirtyRatio = maxDirty
	b.cleaner.stats.Uncleanable = uncleanable
	b.cleaner.dirty = dirty
	changed := !maps.Equal(now, b.cleaner.saved)
	b.cleaner.mu.Unlock()
	if changed && b.opts.DataDir != "" {
		if err := saveCleanerCheckpoint(b.opts.DataDir, now); err != nil {
			b.log.Warn("log cleaner checkpoint not saved", "err", err)
			return
		}
		b.cleaner.mu.Lock()
		b.cleaner.saved = now
		b.cleaner.mu.Unlock()
	}
}

// txnMarker is a transaction marker: its offset and whether it aborts.
type txnMarker struct {
	offset int64
	abort  bool
}

// cleanPartition runs one pass over p if it is due (see the top of the
// file) and returns what it did.
func (b *Broker) cleanPartition(p *Partition, cfg resolvedConfig) (CleanerStats, error) {
	var st CleanerStats
	cl, ok := p.log.(cleanableLog)
	if !ok {
		return st, nil
	}
	now := b.opts.Now()
	b.forgetAborts(p, now)
	b.cleaner.mu.Lock()
	if b.cleaner.firstDirty == nil {
		b.cleaner.firstDirty = make(map[*Partition]int64)
	}
	if b.cleaner.forget == nil {
		b.cleaner.forget = make(map[*Partition][]forgetAborts)
	}
	firstDirty, known := b.cleaner.firstDirty[p]
	start, hw, lso := p.Offsets()
	if k := (cleanerKey{p.Topic, p.Index}); !known {
		if off, ok := b.cleaner.checkpoint[k]; ok && off <= hw {
			firstDirty = off // where the last pass before a restart stopped
		}
		delete(b.cleaner.checkpoint, k)
		b.cleaner.firstDirty[p] = firstDirty
	}
	stop := b.cleaner.stop
	b.cleaner.mu.Unlock()

	firstDirty = max(firstDirty, start)
	segs := cl.Segments()
	lagEdge := now.Add(-cfg.minCompactionLag).UnixMilli()
	end := start // the cleanable part is [start, end)
	var total, dirty int64
	oldestDirty := int64(-1)
	var cleanable []storage.SegmentInfo
	for _, s := range segs {
		if s.Active || s.End > lso || cfg.minCompactionLag > 0 && s.MaxTimestamp > lagEdge {
			break
		}
		cleanable = append(cleanable, s)
		end = s.End
		total += s.Bytes
		if s.End > firstDirty {
			dirty += s.Bytes
			if oldestDirty < 0 {
				oldestDirty = s.MaxTimestamp
			}
		}
	}
	if firstDirty >= end || dirty == 0 {
		return st, nil
	}
	st.MaxDirtyRatio = float64(dirty) / float64(total)
	overdue := cfg.maxCompactionLag < time.Duration(math.MaxInt64) && oldestDirty >= 0 &&
		oldestDirty < now.Add(-cfg.maxCompactionLag).UnixMilli()
	if float64(dirty)/float64(total) < cfg.minCleanableRatio && !overdue {
		return st, nil
	}

	th := newThrottle(b.opts.Cleaner.BytesPerSecond, stop)

	// Producers' last batches and the markers, of the whole log: the
	// marker of a transaction whose data is in the cleanable part may lie
	// past it (in the active segment, say), and without it an aborted
	// transaction's data would pass for committed data.
	lastBatch := make(map[int64]int64)
	var controls []storage.BatchHeader
	if err := p.log.ScanHeaders(start, func(h storage.BatchHeader) bool {
		if h.ProducerID >= 0 {
			lastBatch[h.ProducerID] = h.BaseOffset
		}
		if h.Attributes&controlBit != 0 {
			controls = append(controls, h)
		}
		return true
	}); err != nil {
		return st, err
	}
	markers := make(map[int64][]txnMarker)
	for _, h := range controls {
		// A read of the marker's own size: it returns that batch whole.
		data, err := p.log.Read(h.BaseOffset, h.Size())
		if err != nil {
			return st, err
		}
		if err := th.wait(len(data)); err != nil {
			return st, err
		}
		if got, err := storage.ParseBatchHeader(data); err != nil || got.BaseOffset != h.BaseOffset || len(data) < h.Size() {
			return st, corruptf("control batch at %d: read %d bytes of another batch or none (%v)", h.BaseOffset, len(data), err)
		}
		abort := controlType(h, data[:h.Size()]) == ControlAbort
		markers[h.ProducerID] = append(markers[h.ProducerID], txnMarker{offset: h.BaseOffset, abort: abort})
	}
	aborted := func(h storage.BatchHeader) bool {
		if h.Attributes&transactionalBit == 0 || h.Attributes&controlBit != 0 {
			return false
		}
		ms := markers[h.ProducerID]
		i := sort.Search(len(ms), func(i int) bool { return ms[i].offset > h.BaseOffset })
		return i < len(ms) && ms[i].abort
	}

	// The offset map of the dirty part, as far as it holds.
	m := newOffsetMap(b.opts.Cleaner.MapBytes)
	mapEnd := end
	errFull := errors.New("full")
	err := eachBatch(p.log, firstDirty, end, th, func(h storage.BatchHeader, batch []byte) error {
		st.BytesRead += int64(len(batch))
		if h.Attributes&controlBit != 0 || aborted(h) {
			return nil
		}
		full := false
		if err := batchRecords(h, batch, func(r cleanRecord) {
			if full || r.keyNull || r.offset < firstDirty {
				return
			}
			if !m.put(r.key, r.offset) {
				full, mapEnd = true, r.offset
			}
		}); err != nil {
			return err
		}
		if full {
			return errFull
		}
		return nil
	})
	if err != nil && err != errFull {
		return st, err
	}
	if mapEnd <= firstDirty {
		return st, errors.New("broker: cleaner offset map holds no key: raise the map size")
	}

	level := defaultCodecLevel
	horizon := now.Add(-cfg.deleteRetention).UnixMilli()
	txnKept := make(map[int64]bool) // producer id: data of its open transaction is kept
	for _, s := range cleanable {
		if s.Base >= mapEnd {
			break
		}
		var removed int64
		var abortsGone []int64 // abort markers this rewrite removes
		freed, err := cl.RewriteSegment(s.Base, func(h storage.BatchHeader, batch []byte) ([]byte, error) {
			if err := th.wait(len(batch)); err != nil {
				return nil, err
			}
			st.BytesRead += int64(len(batch))
			pid := h.ProducerID
			if h.Attributes&controlBit != 0 {
				gone := !txnKept[pid] && h.MaxTimestamp < horizon && lastBatch[pid] != h.BaseOffset
				delete(txnKept, pid)
				if gone {
					removed += int64(h.NumRecords)
					ms := markers[pid]
					if i := sort.Search(len(ms), func(i int) bool { return ms[i].offset >= h.BaseOffset }); i < len(ms) && ms[i].offset == h.BaseOffset && ms[i].abort {
						abortsGone = append(abortsGone, h.BaseOffset)
					}
					return nil, nil
				}
				return batch, nil
			}
			abortedTxn := aborted(h)
			var kept [][]byte
			var dropped int64
			err := batchRecords(h, batch, func(r cleanRecord) {
				drop := abortedTxn
				if !drop && !r.keyNull {
					if latest, ok := m.get(r.key); ok && latest > r.offset {
						drop = true
					} else if r.valueNull && r.offset < mapEnd && h.MaxTimestamp < horizon {
						drop = true
					}
				}
				if drop {
					dropped++
				} else {
					kept = append(kept, r.raw)
				}
			})
			if err != nil {
				return nil, err
			}
			if h.Attributes&transactionalBit != 0 && len(kept) > 0 {
				txnKept[pid] = true
			}
			removed += dropped
			switch {
			case dropped == 0:
				return batch, nil
			case len(kept) == 0 && (pid < 0 || lastBatch[pid] != h.BaseOffset):
				return nil, nil
			}
			codec := h.Attributes & batchCodecMask
			lvl := level(codec)
			if cfg.codec == codec {
				lvl = cfg.codecLevel
			}
			return rebuildBatch(h, batch, kept, lvl)
		})
		if err != nil {
			if errors.Is(err, storage.ErrNoSegment) {
				continue // deleted by retention meanwhile
			}
			return st, err
		}
		st.SegmentsCleaned++
		if len(abortsGone) > 0 {
			b.cleaner.mu.Lock()
			b.cleaner.forget[p] = append(b.cleaner.forget[p], forgetAborts{markers: abortsGone, at: now})
			b.cleaner.mu.Unlock()
		}
		if freed > 0 { // else nothing changed, and nothing was written
			st.BytesWritten += s.Bytes - freed
		}
		st.BytesFreed += freed
		st.RecordsRemoved += removed
	}

	if st.SegmentsCleaned > 0 {
		// The rewrites removed the cleaned segments' transaction
		// summaries: write them again now.
		p.txnIndexStale()
		if err := p.persistTxnIndex(); err != nil && !errors.Is(err, storage.ErrClosed) {
			b.log.Warn("transaction index not written after cleaning", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	}
	b.cleaner.mu.Lock()
	b.cleaner.firstDirty[p] = mapEnd
	if st.SegmentsCleaned > 0 {
		st.Passes = 1
	}
	b.cleaner.stats.Passes += st.Passes
	b.cleaner.stats.SegmentsCleaned += st.SegmentsCleaned
	b.cleaner.stats.BytesRead += st.BytesRead
	b.cleaner.stats.BytesWritten += st.BytesWritten
	b.cleaner.stats.BytesFreed += st.BytesFreed
	b.cleaner.stats.RecordsRemoved += st.RecordsRemoved
	b.cleaner.mu.Unlock()
	return st, nil
}

// eachBatch calls fn with each whole batch of log holding offsets in
// [from, end), in order, reading through th.
func eachBatch(log PartitionLog, from, end int64, th *throttle, fn func(storage.BatchHeader, []byte) error) error {
	for off := from; off < end; {
		data, err := log.Read(off, cleanerReadBytes)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		if err := th.wait(len(data)); err != nil {
			return err
		}
		for len(data) > 0 {
			h, err := storage.ParseBatchHeader(data)
			if err != nil {
				return err
			}
			if h.Size() > len(data) {
				return corruptf("batch at %d: %d bytes in %d", h.BaseOffset, h.Size(), len(data))
			}
			if h.BaseOffset >= end {
				return nil
			}
			if h.LastOffset() >= off {
				if err := fn(h, data[:h.Size()]); err != nil {
					return err
				}
			}
			off = max(off, h.LastOffset()+1)
			data = data[h.Size():]
		}
	}
	return nil
}

// throttle paces the cleaner's I/O to a rate, and stops it when the
// broker stops.
type throttle struct {
	rate  int64 // bytes per second; <= 0: unthrottled
	start time.Time
	bytes int64
	stop  <-chan struct{}
}

func newThrottle(rate int64, stop <-chan struct{}) *throttle {
	return &throttle{rate: rate, start: time.Now(), stop: stop}
}

// wait accounts n bytes and sleeps until the rate allows them.
func (t *throttle) wait(n int) error {
	select {
	case <-t.stop:
		return errCleanerStopped
	default:
	}
	if t.rate <= 0 {
		return nil
	}
	t.bytes += int64(n)
	due := t.start.Add(time.Duration(float64(t.bytes) / float64(t.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		select {
		case <-t.stop:
			return errCleanerStopped
		case <-time.After(d):
		}
	}
	return nil
}
