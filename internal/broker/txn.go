package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
)

// The transaction coordinator (Kafka's, single node).
//
// Each transactional id has one durable record in the metadata log
// (meta.Transaction, written by put_transaction), and every step of a
// transaction is written there before it is acted on:
//
//	empty ──AddPartitions/AddOffsets──▶ ongoing ──EndTxn──▶ prepare_commit ──markers──▶ complete_commit
//	                                       │                prepare_abort  ──markers──▶ complete_abort
//	                                       └─ timeout or InitProducerID: epoch bumped, then prepare_abort
//
// A transaction found in prepare_commit or prepare_abort (a crash between
// the decision and its markers, or a marker write that failed) is
// completed by RecoverTransactions and by every tick of RunTransactions:
// the markers are written again (harmless where they already are), then
// the offsets the transaction committed are written to the offsets store,
// then complete_* is recorded. An ongoing transaction past its timeout is
// aborted by the tick, with the producer's epoch bumped first so that the
// abandoned producer is fenced.
//
// Concurrency: the steps of one transactional id take turns under its own
// lock (txnLock), held across the metadata write and the markers' fsync:
// only that id's producer waits. Lock order: a txnLock > Broker.mu >
// Partition.mu.

// Transaction errors.
var (
	// ErrProducerFenced: a newer producer with the same transactional id
	// exists (Kafka's PRODUCER_FENCED).
	ErrProducerFenced = newError(KindFenced, "broker: producer fenced by a newer instance")
	// ErrInvalidProducerIDMapping: the producer id is not the
	// transactional id's.
	ErrInvalidProducerIDMapping = newError(KindInvalid, "broker: producer id does not belong to the transactional id")
	// ErrInvalidTxnState: the request does not fit the transaction's
	// phase (EndTxn with nothing in the transaction, commit after abort).
	ErrInvalidTxnState = newError(KindConflict, "broker: invalid transaction state")
	// ErrConcurrentTransactions: the previous transaction is still being
	// completed; retry.
	ErrConcurrentTransactions = newError(KindConflict, "broker: previous transaction still completing")
	// ErrTransactionalWithoutID: transactional data produced without a
	// transactional id, which no coordinator could ever close.
	ErrTransactionalWithoutID = newError(KindCorrupt, "broker: transactional batch without a transactional id")
)

// RefuseTransactional is the TxnCheck of a produce request without a
// transactional id: transactional batches are refused, as Kafka does.
func RefuseTransactional(string, int32, int64, int16) error { return ErrTransactionalWithoutID }

// Transaction is a transactional id's transaction as the coordinator
// records it.
type Transaction = meta.Transaction

// TxnState is a transaction's phase.
type TxnState = meta.TxnState

// The phases of a transaction.
const (
	TxnEmpty          = meta.TxnEmpty
	TxnOngoing        = meta.TxnOngoing
	TxnPrepareCommit  = meta.TxnPrepareCommit
	TxnPrepareAbort   = meta.TxnPrepareAbort
	TxnCompleteCommit = meta.TxnCompleteCommit
	TxnCompleteAbort  = meta.TxnCompleteAbort
)

// txnLock returns the lock of a transactional id.
func (b *Broker) txnLock(id string) *sync.Mutex {
	m, _ := b.txnLocks.LoadOrStore(id, new(sync.Mutex))
	return m.(*sync.Mutex)
}

// InitTransactions (Kafka's InitProducerId with a transactional id)
// bumps the id's epoch, fencing older producers, and returns the producer
// id and new epoch. An ongoing transaction left by an earlier producer is
// aborted first and a prepared one completed, so the new producer starts
// clean.
func (b *Broker) InitTransactions(id string, timeoutMs int32) (producerID int64, epoch int16, err error) {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, ok := b.meta.Transaction(id)
	if ok {
		if err := b.settleLocked(t); err != nil {
			return -1, -1, err
		}
	}
	pid, epoch, err := b.meta.InitProducerID(id)
	if err != nil {
		return -1, -1, metaErr(err)
	}
	if err := b.putTxn(meta.Transaction{TransactionalID: id, ProducerID: pid, Epoch: epoch, TimeoutMs: timeoutMs, State: meta.TxnEmpty}); err != nil {
		return -1, -1, err
	}
	return pid, epoch, nil
}

// settleLocked finishes whatever t left open: a prepared transaction is
// completed, an ongoing one aborted at a bumped epoch.
func (b *Broker) settleLocked(t meta.Transaction) error {
	switch t.State {
	case meta.TxnPrepareCommit, meta.TxnPrepareAbort:
		return b.completeLocked(t)
	case meta.TxnOngoing:
		pid, epoch, err := b.meta.InitProducerID(t.TransactionalID) // fence the old producer
		if err != nil {
			return metaErr(err)
		}
		if pid != t.ProducerID {
			// Its epochs ran out and the id got a new producer id: the
			// old id's transaction is closed under the old id.
			if err := b.writeMarkersLocked(t.ProducerID, t.Epoch, false, t.Partitions); err != nil {
				return err
			}
		}
		t.ProducerID, t.Epoch, t.State = pid, epoch, meta.TxnPrepareAbort
		if err := b.putTxn(t); err != nil {
			return err
		}
		return b.completeLocked(t)
	}
	return nil
}

// checkProducerLocked checks that (pid, epoch) is the transactional id's
// current producer and returns its transaction.
func (b *Broker) checkProducerLocked(id string, pid int64, epoch int16) (meta.Transaction, error) {
	cur, curEpoch, ok := b.meta.TransactionalProducer(id)
	t, tok := b.meta.Transaction(id)
	switch {
	case !ok || !tok || cur != pid:
		return t, ErrInvalidProducerIDMapping
	case epoch < curEpoch:
		return t, ErrProducerFenced
	case epoch > curEpoch:
		return t, ErrInvalidProducerEpoch
	}
	return t, nil
}

// AddPartitionsToTxn adds partitions to the producer's transaction,
// starting it if none is ongoing. Unknown partitions fail the whole
// request (perPartition says which).
func (b *Broker) AddPartitionsToTxn(id string, pid int64, epoch int16, tps []TopicPartition) (perPartition map[TopicPartition]error, err error) {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, err := b.checkProducerLocked(id, pid, epoch)
	if err != nil {
		return nil, err
	}
	if t.State == meta.TxnPrepareCommit || t.State == meta.TxnPrepareAbort {
		return nil, ErrConcurrentTransactions
	}
	for _, tp := range tps {
		_, perr := b.Partition(tp.Topic, tp.Partition)
		if top, ok := b.Topic(tp.Topic); ok && top.IsInternal() {
			perr = ErrInternalTopic // no marker could be written there
		}
		if perr != nil {
			if perPartition == nil {
				perPartition = make(map[TopicPartition]error)
			}
			perPartition[tp] = perr
		}
	}
	if perPartition != nil {
		return perPartition, nil
	}
	changed := b.beginLocked(&t)
	for _, tp := range tps {
		mtp := meta.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
		if !slices.Contains(t.Partitions, mtp) {
			t.Partitions = append(t.Partitions, mtp)
			changed = true
		}
	}
	if changed {
		return nil, b.putTxn(t)
	}
	return nil, nil
}

// VerifyPartitionsInTxn returns those of tps that are not in the
// producer's ongoing transaction (all of them if none is ongoing).
func (b *Broker) VerifyPartitionsInTxn(id string, pid int64, epoch int16, tps []TopicPartition) (missing []TopicPartition, err error) {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, err := b.checkProducerLocked(id, pid, epoch)
	if err != nil {
		return nil, err
	}
	for _, tp := range tps {
		if t.State != meta.TxnOngoing || !slices.Contains(t.Partitions, meta.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}) {
			missing = append(missing, tp)
		}
	}
	return missing, nil
}

// beginLocked makes t ongoing if it is not, reporting whether it changed.
func (b *Broker) beginLocked(t *meta.Transaction) bool {
	if t.State == meta.TxnOngoing {
		return false
	}
	t.State, t.StartMs = meta.TxnOngoing, b.opts.Now().UnixMilli()
	t.Partitions, t.Offsets = nil, nil
	t.Version, t.PrevProducerID, t.PrevEpoch = 0, 0, 0 // the caller sets the version (txn_v2.go)
	return true
}

// AddOffsetsToTxn adds a consumer group's offsets to the producer's
// transaction, starting it if none is ongoing.
func (b *Broker) AddOffsetsToTxn(id string, pid int64, epoch int16, group string) error {
	return b.beginForOffsets(id, pid, epoch, 0)
}

// beginForOffsets starts the producer's transaction, of the given
// transaction version (0: classic), if none is ongoing: offsets are about
// to be committed in it.
func (b *Broker) beginForOffsets(id string, pid int64, epoch int16, version int8) error {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, err := b.checkProducerLocked(id, pid, epoch)
	if err != nil {
		return err
	}
	if t.State == meta.TxnPrepareCommit || t.State == meta.TxnPrepareAbort {
		return ErrConcurrentTransactions
	}
	if !b.beginLocked(&t) {
		return nil
	}
	t.Version = version
	return b.putTxn(t)
}

// TxnOffsetCommit records offsets of group in the producer's ongoing
// transaction: the group sees them only when the transaction commits.
func (b *Broker) TxnOffsetCommit(id string, pid int64, epoch int16, group string, commits []OffsetCommit) error {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, err := b.checkProducerLocked(id, pid, epoch)
	if err != nil {
		return err
	}
	if t.State != meta.TxnOngoing {
		return ErrInvalidTxnState
	}
	for _, c := range commits {
		if _, err := b.Partition(c.Topic, c.Partition); err != nil {
			return err
		}
		o := meta.TxnOffset{Group: group, OffsetCommit: meta.OffsetCommit{
			Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, LeaderEpoch: c.LeaderEpoch, Metadata: c.Metadata,
			CommitMs: b.opts.Now().UnixMilli(),
		}}
		i := slices.IndexFunc(t.Offsets, func(x meta.TxnOffset) bool {
			return x.Group == group && x.Topic == c.Topic && x.Partition == c.Partition
		})
		if i >= 0 {
			t.Offsets[i] = o
		} else {
			t.Offsets = append(t.Offsets, o)
		}
	}
	return b.putTxn(t)
}

// EndTxn commits or aborts the producer's transaction: the decision is
// recorded, the markers written into every partition of the transaction
// and made durable, the transaction's offsets committed (on commit), and
// the completion recorded. A retry of an EndTxn that completed succeeds.
func (b *Broker) EndTxn(id string, pid int64, epoch int16, commit bool) error {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, err := b.checkProducerLocked(id, pid, epoch)
	if err != nil {
		return err
	}
	prepare, complete := meta.TxnPrepareAbort, meta.TxnCompleteAbort
	if commit {
		prepare, complete = meta.TxnPrepareCommit, meta.TxnCompleteCommit
	}
	switch t.State {
	case complete:
		return nil // a retry
	case prepare:
		return b.completeLocked(t)
	case meta.TxnOngoing:
	default:
		return ErrInvalidTxnState
	}
	t.State = prepare
	if err := b.putTxn(t); err != nil {
		return err
	}
	return b.completeLocked(t)
}

// completeLocked writes the markers of prepared transaction t, commits
// its offsets if it commits, and records it complete. On failure t stays
// prepared and is completed by a later call.
func (b *Broker) completeLocked(t meta.Transaction) error {
	commit := t.State == meta.TxnPrepareCommit
	pid, epoch := markerProducer(t)
	if err := b.writeMarkersLocked(pid, epoch, commit, t.Partitions); err != nil {
		return fmt.Errorf("transaction %q: %w", t.TransactionalID, err)
	}
	if commit {
		byGroup := map[string][]OffsetCommit{}
		var groups []string
		for _, o := range t.Offsets {
			if _, ok := byGroup[o.Group]; !ok {
				groups = append(groups, o.Group)
			}
			byGroup[o.Group] = append(byGroup[o.Group], OffsetCommit{
				Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: o.CommitMs,
			})
		}
		for _, g := range groups {
			if err := b.CommitOffsets(g, byGroup[g]); err != nil && !errors.Is(err, ErrUnknownTopic) && !errors.Is(err, ErrUnknownPartition) {
				return err
			}
		}
	}
	t.State = meta.TxnCompleteAbort
	if commit {
		t.State = meta.TxnCompleteCommit
	}
	t.Partitions, t.Offsets = nil, nil
	return b.putTxn(t)
}

// writeMarkersLocked writes a commit or abort marker of producer pid at
// epoch into every partition of tps that still exists, and waits until
// all are durable.
func (b *Broker) writeMarkersLocked(pid int64, epoch int16, commit bool, tps []meta.TopicPartition) error {
	var waits []Pending
	for _, tp := range tps {
		p, err := b.Partition(tp.Topic, tp.Partition)
		if err != nil {
			continue // deleted since: nothing to mark
		}
		ap, err := p.WriteMarker(pid, epoch, commit, 0)
		if err != nil {
			return fmt.Errorf("marker in %s-%d: %w", tp.Topic, tp.Partition, err)
		}
		waits = append(waits, ap)
	}
	for _, ap := range waits {
		if err := ap.Wait(); err != nil {
			return coreError(err)
		}
	}
	return nil
}

// putTxn records t, turning a fenced producer into ErrProducerFenced.
func (b *Broker) putTxn(t meta.Transaction) error {
	err := b.meta.PutTransaction(t)
	if errors.Is(err, meta.ErrStaleProducer) {
		return ErrProducerFenced
	}
	return metaErr(err)
}

// TxnProduceCheck returns the check a produce request of transactional
// id makes before appending transactional data (KIP-890's verification,
// which Kafka has made since 3.6): the producer is the id's current one
// (else ErrInvalidProducerEpoch) and its transaction is ongoing and
// includes the partition (else ErrInvalidTxnState). Without it a producer
// could open a transaction the coordinator does not know of, which no
// marker would ever close, holding the partition's LSO forever.
func (b *Broker) TxnProduceCheck(id string) TxnCheck {
	return func(topic string, partition int32, pid int64, epoch int16) error {
		curPID, curEpoch, ongoing, included := b.meta.TransactionIncludes(id, meta.TopicPartition{Topic: topic, Partition: partition})
		switch {
		case pid != curPID || epoch < curEpoch:
			return ErrInvalidProducerEpoch
		case epoch > curEpoch || !ongoing || !included:
			return ErrInvalidTxnState
		}
		return nil
	}
}

// Transactions returns every transactional id's transaction, sorted by
// transactional id.
func (b *Broker) Transactions() []Transaction { return b.meta.Transactions() }

// TxnAgeMillis is how long ago, by the broker's clock, t started.
func (b *Broker) TxnAgeMillis(t Transaction) int64 { return b.opts.Now().UnixMilli() - t.StartMs }

// TransactionOf returns a transactional id's transaction.
func (b *Broker) TransactionOf(id string) (Transaction, bool) { return b.meta.Transaction(id) }

// TickTransactions completes prepared transactions (recovery after a
// crash or a failed marker write) and aborts ongoing ones past their
// timeout at now, fencing their producers.
func (b *Broker) TickTransactions(now time.Time) {
	for _, t := range b.meta.Transactions() {
		expired := t.State == meta.TxnOngoing && now.UnixMilli() >= t.StartMs+int64(t.TimeoutMs)
		if !expired && t.State != meta.TxnPrepareCommit && t.State != meta.TxnPrepareAbort {
			continue
		}
		mu := b.txnLock(t.TransactionalID)
		mu.Lock()
		cur, ok := b.meta.Transaction(t.TransactionalID)
		if ok && cur.State == t.State && cur.Epoch == t.Epoch && cur.StartMs == t.StartMs {
			if err := b.settleLocked(cur); err != nil {
				b.log.Warn("transaction not completed; will retry", "transactional_id", t.TransactionalID, "state", cur.State, "error", err)
			} else if expired {
				b.log.Info("transaction aborted: timed out", "transactional_id", t.TransactionalID, "timeout_ms", t.TimeoutMs)
			}
		}
		mu.Unlock()
	}
}

// RunTransactions completes the transactions a crash left prepared, then
// ticks every interval until stop is closed.
func (b *Broker) RunTransactions(interval time.Duration, stop <-chan struct{}) {
	b.TickTransactions(b.opts.Now())
	every(interval, stop, func() { b.TickTransactions(b.opts.Now()) })
}
