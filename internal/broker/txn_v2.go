package broker

import (
	"errors"
	"slices"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Transaction version 2 (KIP-890 part 2), which a client runs when the
// broker finalizes the transaction.version feature at 2:
//
//   - a transactional produce adds its partition to the transaction
//     itself (AddPartitionsOnProduce), starting the transaction if none
//     is ongoing, instead of an AddPartitionsToTxn before it; the
//     partition is in the durable transaction record before the data is
//     appended, so markers reach it whatever happens after the ack;
//   - TxnOffsetCommit starts the transaction too (no AddOffsetsToTxn);
//   - every EndTxn bumps the producer's epoch (EndTxnV2): the decision
//     and the bump are one metadata command (end_transaction), the
//     markers are written at the bumped epoch, so that no data of the
//     ended transaction (at the old epoch) can follow its marker, and the
//     answer carries the producer id and epoch of the next transaction (a
//     new producer id once the epoch is exhausted). An abort with nothing
//     ongoing is allowed and only bumps the epoch.
//
// The classic protocol (transaction version 0/1: AddPartitionsToTxn,
// EndTxn up to v4) is served as before, side by side: the version is per
// request, and a transaction records the one that started it
// (Transaction.Version).

// AddPartitionsOnProduce adds the partitions tps (which exist) to the
// transaction of producer (pid, epoch) of transactional id, starting it if
// none is ongoing, before a transactional produce of version 2 appends to
// them. It fails with ErrInvalidProducerEpoch for a producer that is not
// the id's current one (a produce's answer to a fenced producer), and
// ErrConcurrentTransactions while the previous transaction completes.
func (b *Broker) AddPartitionsOnProduce(id string, pid int64, epoch int16, tps []TopicPartition) error {
	if b.inOngoingTxn(id, pid, epoch, tps) {
		return nil // the common case: a later produce of the transaction
	}
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	t, err := b.checkProducerLocked(id, pid, epoch)
	switch {
	case errors.Is(err, ErrProducerFenced), errors.Is(err, ErrInvalidProducerIDMapping):
		return ErrInvalidProducerEpoch
	case err != nil:
		return err
	case t.State == meta.TxnPrepareCommit || t.State == meta.TxnPrepareAbort:
		return ErrConcurrentTransactions
	}
	changed := b.beginLocked(&t)
	if changed {
		t.Version = 2
	}
	for _, tp := range tps {
		mtp := meta.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
		if !slices.Contains(t.Partitions, mtp) {
			t.Partitions = append(t.Partitions, mtp)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	err = b.putTxn(t)
	if errors.Is(err, ErrProducerFenced) {
		return ErrInvalidProducerEpoch
	}
	return err
}

// inOngoingTxn reports whether every partition of tps is in the ongoing
// transaction of producer (pid, epoch), without taking the id's lock.
func (b *Broker) inOngoingTxn(id string, pid int64, epoch int16, tps []TopicPartition) bool {
	for _, tp := range tps {
		cur, curEpoch, ongoing, included := b.meta.TransactionIncludes(id, meta.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
		if cur != pid || curEpoch != epoch || !ongoing || !included {
			return false
		}
	}
	return true
}

// TxnOffsetCommitV2 is TxnOffsetCommit for transaction version 2
// (TxnOffsetCommit v5+): it starts the producer's transaction if none is
// ongoing, as AddOffsetsToTxn did before it.
func (b *Broker) TxnOffsetCommitV2(id string, pid int64, epoch int16, group string, commits []OffsetCommit) error {
	if err := b.beginForOffsets(id, pid, epoch, 2); err != nil {
		return err
	}
	return b.TxnOffsetCommit(id, pid, epoch, group, commits)
}

// EndTxnV2 commits or aborts the transaction of producer (pid, epoch) as
// EndTxn does, bumping the producer's epoch with the decision, and
// returns the producer id and epoch the producer is to use next. A retry
// of the EndTxn that ended the transaction (same producer, epoch and
// decision) is answered as the original was. An abort with no
// transaction ongoing bumps the epoch and writes nothing; a commit with
// none is INVALID_TXN_STATE.
func (b *Broker) EndTxnV2(id string, pid int64, epoch int16, commit bool) (nextPID int64, nextEpoch int16, err error) {
	mu := b.txnLock(id)
	mu.Lock()
	defer mu.Unlock()
	prepare, complete := meta.TxnPrepareAbort, meta.TxnCompleteAbort
	if commit {
		prepare, complete = meta.TxnPrepareCommit, meta.TxnCompleteCommit
	}
	if t, ok := b.meta.Transaction(id); ok && t.Version == 2 && t.PrevProducerID != 0 && t.PrevProducerID == pid && t.PrevEpoch == epoch {
		if cur, curEpoch, _ := b.meta.TransactionalProducer(id); cur == t.ProducerID && curEpoch == t.Epoch {
			switch t.State {
			case complete:
				return t.ProducerID, t.Epoch, nil // a retry
			case prepare:
				if err := b.completeLocked(t); err != nil {
					return -1, -1, err
				}
				return t.ProducerID, t.Epoch, nil
			case meta.TxnCompleteAbort, meta.TxnCompleteCommit, meta.TxnPrepareAbort, meta.TxnPrepareCommit:
				return -1, -1, ErrInvalidTxnState // a retry with the other decision
			}
		}
	}
	t, err := b.checkProducerLocked(id, pid, epoch)
	if err != nil {
		return -1, -1, err
	}
	switch t.State {
	case meta.TxnOngoing:
		t.State = prepare
	case meta.TxnPrepareCommit, meta.TxnPrepareAbort:
		return -1, -1, ErrConcurrentTransactions
	default:
		if commit {
			return -1, -1, ErrInvalidTxnState
		}
		t.State, t.Partitions, t.Offsets = meta.TxnCompleteAbort, nil, nil
	}
	t.PrevProducerID, t.PrevEpoch = pid, epoch
	ended, err := b.meta.EndTransaction(t)
	if errors.Is(err, meta.ErrStaleProducer) {
		return -1, -1, ErrProducerFenced
	} else if err != nil {
		return -1, -1, metaErr(err)
	}
	if ended.State == prepare {
		if err := b.completeLocked(ended); err != nil {
			return -1, -1, err
		}
	}
	return ended.ProducerID, ended.Epoch, nil
}

// markerProducer is the producer id and epoch the markers of t are
// written with: under transaction version 2, once EndTxn bumped the epoch,
// the ended transaction's producer id at the epoch after the one its data
// was written at (for an exhausted epoch, one past the last usable one,
// as Kafka does); else t's own.
func markerProducer(t meta.Transaction) (int64, int16) {
	if t.Version == 2 && t.PrevProducerID != 0 {
		return t.PrevProducerID, t.PrevEpoch + 1
	}
	return t.ProducerID, t.Epoch
}

// TxnProducerOf returns the producer id and epoch of the first batch of
// records (a produce request's record set for one partition) and
// whether it is transactional, for a version 2 produce to add the
// partition before the records are validated (they are, in full, by the
// append that follows).
func TxnProducerOf(records []byte) (pid int64, epoch int16, transactional bool) {
	h, err := storage.ParseBatchHeader(records)
	if err != nil || h.Attributes&transactionalBit == 0 || h.Attributes&controlBit != 0 || h.ProducerID < 0 {
		return -1, -1, false
	}
	return h.ProducerID, h.ProducerEpoch, true
}
