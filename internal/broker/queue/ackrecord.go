package queue

import (
	"errors"
	"os"
	"sync"
)

// ErrBadAckEntries: entries handed to AckRecord.Apply are not whole
// ack-record entries with good CRCs.
var ErrBadAckEntries = errors.New("queue: malformed ack-record entries")

// AckRecord is one replica's copy of a quorum queue's replicated ack
// record: the entries a tail queue hands to Tail.Record, applied on every
// replica in the order Raft commits them, and kept in dir/acks in the ack
// log's format (acklog.go). The replica that becomes leader opens its
// queue with Entries as Tail.Acks.
//
// Entries are appended without fsync, as a queue's acks are: losing the
// last ones means redeliveries. Sync and Close fsync. When the file has
// grown well past the settled set it is rewritten from the set.
//
// An AckRecord is safe for concurrent use. Its entries come from other
// nodes: Apply checks them whole before it applies any, and memory grows
// with the entries applied, never with what an entry claims.
type AckRecord struct {
	mu     sync.Mutex
	set    intervals
	log    *ackLog // the file and the largest mark; its buffer is unused
	closed bool
}

// OpenAckRecord opens (creating) dir/acks in the ack log's format,
// replaying it up to a torn or corrupt tail, which it cuts off.
func OpenAckRecord(dir string) (*AckRecord, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	a := &AckRecord{}
	l, err := openAckLog(dir, &a.set)
	if err != nil {
		return nil, err
	}
	a.log = l
	return a, nil
}

// Apply applies entries: whole 20-byte entries with good CRCs, else
// ErrBadAckEntries and nothing applied. Ranges join the settled set, the
// largest delivered mark is kept, and the entries are appended to the file
// without fsync. A failed write keeps them applied in memory; the file is
// then rewritten from the set at the next Apply, Sync or Close.
func (a *AckRecord) Apply(entries []byte) error {
	if len(entries)%ackEntryLen != 0 || validAckEntries(entries) != len(entries) {
		return ErrBadAckEntries
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return os.ErrClosed
	}
	a.log.mark = max(a.log.mark, replayAckEntries(entries, &a.set))
	var err error
	if !a.log.stale {
		err = a.log.appendEntries(entries)
	}
	if a.log.stale || a.log.needsCompaction(len(a.set.r)) {
		err = a.rewriteLocked()
	}
	return err
}

// rewriteLocked replaces the file with one holding exactly the set and the
// mark.
func (a *AckRecord) rewriteLocked() error {
	if err := a.log.rewrite(&a.set, a.log.mark); err != nil {
		a.log.stale = true
		return err
	}
	a.log.stale = false
	return nil
}

// Entries returns the settled set and the delivered mark as ack-record
// entries, for Tail.Acks.
func (a *AckRecord) Entries() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return appendAckRecord(make([]byte, 0, ackEntryLen*(len(a.set.r)+1)), &a.set, a.log.mark)
}

// TrimBelow forgets the settled ranges below offset, once the log start
// has moved there. The file keeps them until it is next rewritten; a
// queue opened with them trims them too.
func (a *AckRecord) TrimBelow(offset int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.set.trimBelow(offset)
}

// Sync makes what was applied durable.
func (a *AckRecord) Sync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return os.ErrClosed
	}
	return a.syncLocked()
}

func (a *AckRecord) syncLocked() error {
	if a.log.stale {
		return a.rewriteLocked() // fsyncs
	}
	return a.log.f.Sync()
}

// Close syncs and closes the file. Closing a closed AckRecord returns nil.
func (a *AckRecord) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	err := a.syncLocked()
	return errors.Join(err, a.log.f.Close())
}
