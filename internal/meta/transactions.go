package meta

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Transactions: the Kafka transaction coordinator's state, one record per
// transactional id, replaced whole by each put_transaction command. The
// coordinator (internal/broker, txn.go) writes it before every step it
// takes, so that after a restart it knows where each transaction was:
// an ongoing one is aborted when it times out or its producer is
// re-initialised, and one prepared to commit or abort gets its markers
// written again (writing a marker twice is harmless).

// TxnState is the phase of a transaction.
type TxnState string

const (
	TxnEmpty          TxnState = "empty"
	TxnOngoing        TxnState = "ongoing"
	TxnPrepareCommit  TxnState = "prepare_commit"
	TxnPrepareAbort   TxnState = "prepare_abort"
	TxnCompleteCommit TxnState = "complete_commit"
	TxnCompleteAbort  TxnState = "complete_abort"
)

// Transaction is a transactional id's current transaction.
type Transaction struct {
	TransactionalID string           `json:"transactional_id"`
	ProducerID      int64            `json:"producer_id"`
	Epoch           int16            `json:"epoch"`
	TimeoutMs       int32            `json:"timeout_ms"`
	State           TxnState         `json:"state"`
	StartMs         int64            `json:"start_ms,omitempty"` // when it became ongoing
	Partitions      []TopicPartition `json:"partitions,omitempty"`
	// Offsets are the consumer offsets the transaction commits
	// (TxnOffsetCommit), visible to their groups only once it commits.
	Offsets []TxnOffset `json:"offsets,omitempty"`
	// Version is the transaction protocol the producer runs: 2 for
	// KIP-890's (partitions added by produce, the epoch bumped by every
	// EndTxn: end_transaction), 0 for the classic one.
	Version int8 `json:"version,omitempty"`
	// PrevProducerID and PrevEpoch, set by end_transaction, are the
	// producer id and epoch the ended transaction was written with
	// (ProducerID and Epoch are the bumped ones): its markers are written
	// at PrevEpoch+1 under PrevProducerID, and a retried EndTxn names
	// them. Zero (no producer id is 0): none.
	PrevProducerID int64 `json:"prev_producer_id,omitempty"`
	PrevEpoch      int16 `json:"prev_epoch,omitempty"`
}

// TxnOffset is one consumer offset committed in a transaction.
type TxnOffset struct {
	Group string `json:"group"`
	OffsetCommit
}

func (t Transaction) clone() Transaction {
	t.Partitions = slices.Clone(t.Partitions)
	t.Offsets = slices.Clone(t.Offsets)
	return t
}

// PutTransactionCmd replaces a transactional id's transaction. It is
// refused unless the id's producer is the one InitProducerID last handed
// out (same id and epoch), so a fenced producer's change never lands.
type PutTransactionCmd Transaction

func (c *PutTransactionCmd) check(st *State) error {
	switch c.State {
	case TxnEmpty, TxnOngoing, TxnPrepareCommit, TxnPrepareAbort, TxnCompleteCommit, TxnCompleteAbort:
	default:
		return fmt.Errorf("%w: transaction state %q", ErrInvalidCommand, c.State)
	}
	p, ok := st.producers[c.TransactionalID]
	if !ok || p.ID != c.ProducerID || p.Epoch != c.Epoch {
		return fmt.Errorf("%w: transactional id %q is not at producer %d epoch %d", ErrStaleProducer, c.TransactionalID, c.ProducerID, c.Epoch)
	}
	return nil
}

func (c *PutTransactionCmd) apply(st *State) Result {
	st.txns[c.TransactionalID] = Transaction(*c).clone()
	return Result{}
}

// PutTransaction durably replaces a transactional id's transaction.
func (s *Store) PutTransaction(t Transaction) error {
	c := PutTransactionCmd(t.clone())
	_, err := s.propose(NewCommand(&c))
	return err
}

// EndTransactionCmd is a transaction version 2 EndTxn: it bumps the
// transactional id's producer epoch (a new producer id at epoch 0 when the
// epoch is exhausted, as init_producer_id does) and records the
// transaction, now prepared, under the bumped producer, in one command so
// that a decision is never durable without its bump or the other way
// round. It is refused unless the id's producer is PrevProducerID at
// PrevEpoch. ProducerID and Epoch are filled in by apply.
type EndTransactionCmd Transaction

func (c *EndTransactionCmd) check(st *State) error {
	switch c.State {
	case TxnPrepareCommit, TxnPrepareAbort, TxnCompleteAbort:
	default:
		return fmt.Errorf("%w: end_transaction to state %q", ErrInvalidCommand, c.State)
	}
	p, ok := st.producers[c.TransactionalID]
	if !ok || p.ID != c.PrevProducerID || p.Epoch != c.PrevEpoch {
		return fmt.Errorf("%w: transactional id %q is not at producer %d epoch %d", ErrStaleProducer, c.TransactionalID, c.PrevProducerID, c.PrevEpoch)
	}
	if p.Epoch >= maxProducerEpoch && st.nextProducerID == math.MaxInt64 {
		return fmt.Errorf("%w: producer ids exhausted", ErrInvalidCommand)
	}
	return nil
}

func (c *EndTransactionCmd) apply(st *State) Result {
	p := st.producers[c.TransactionalID]
	if p.Epoch < maxProducerEpoch {
		p.Epoch++
	} else {
		p = producer{ID: st.nextProducerID}
		st.nextProducerID++
	}
	st.producers[c.TransactionalID] = p
	t := Transaction(*c).clone()
	t.ProducerID, t.Epoch, t.Version = p.ID, p.Epoch, 2
	st.txns[c.TransactionalID] = t
	return Result{ProducerID: p.ID, ProducerEpoch: p.Epoch}
}

// EndTransaction durably records t (prepared, or complete_abort with
// nothing in it) as ended by its producer at t.PrevProducerID and
// t.PrevEpoch, bumping the producer, and returns the transaction as
// recorded (with the new producer id and epoch).
func (s *Store) EndTransaction(t Transaction) (Transaction, error) {
	c := EndTransactionCmd(t.clone())
	res, err := s.propose(NewCommand(&c))
	if err != nil {
		return Transaction{}, err
	}
	t.ProducerID, t.Epoch, t.Version = res.ProducerID, res.ProducerEpoch, 2
	return t, nil
}

// Transaction returns a transactional id's transaction.
func (s *Store) Transaction(transactionalID string) (Transaction, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.state.txns[transactionalID]
	return t.clone(), ok
}

// TransactionIncludes returns the producer id and epoch of a
// transactional id's transaction, whether it is ongoing and whether tp is
// in it, without copying it (produce asks this for every transactional
// batch).
func (s *Store) TransactionIncludes(transactionalID string, tp TopicPartition) (producerID int64, epoch int16, ongoing, included bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.state.txns[transactionalID]
	if !ok {
		return -1, -1, false, false
	}
	return t.ProducerID, t.Epoch, t.State == TxnOngoing, slices.Contains(t.Partitions, tp)
}

// Transactions returns every transaction, sorted by transactional id.
func (s *Store) Transactions() []Transaction {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.transactions()
}

func (st *State) transactions() []Transaction {
	out := make([]Transaction, 0, len(st.txns))
	for _, t := range st.txns {
		out = append(out, t.clone())
	}
	slices.SortFunc(out, func(a, b Transaction) int { return cmp.Compare(a.TransactionalID, b.TransactionalID) })
	return out
}
