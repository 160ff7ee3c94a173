package broker

import (
	"errors"
	"fmt"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Kind says what went wrong, in the core's words. It is the core's one
// error vocabulary: every error the core returns has a kind (KindOf), and
// each front end maps kinds to its protocol's codes in one table (amqp's
// replyCodes, kafka's errorCodes, mgmt's HTTP statuses). Where a protocol
// tells apart errors of one kind (Kafka has TOPIC_ALREADY_EXISTS and
// NON_EMPTY_GROUP, both conflicts), its table names the specific error
// first and falls back to the kind.
type Kind uint8

const (
	// KindInternal is anything the core did not classify: a bug, or a
	// failure nobody named. Front ends answer it as their internal error.
	KindInternal Kind = iota
	// KindNotFound: no such queue, exchange, topic, partition.
	KindNotFound
	// KindExists: the thing to create is there already.
	KindExists
	// KindInvalid: the request's arguments are not acceptable (a bad
	// name, a negative limit, an unknown config).
	KindInvalid
	// KindConflict: the request does not fit the object's state: an
	// inequivalent redeclaration, in use, not empty.
	KindConflict
	// KindAccessRefused: not permitted on this object (reserved names,
	// the default exchange, an exclusive consumer).
	KindAccessRefused
	// KindLocked: owned by another connection (an exclusive queue).
	KindLocked
	// KindNotAllowed: the vhost is not there or not open to the caller.
	KindNotAllowed
	// KindInvalidCommand: the operation makes no sense here (an unknown
	// exchange type).
	KindInvalidCommand
	// KindNotImplemented: a feature the core does not have yet.
	KindNotImplemented
	// KindTooLarge: a message or batch over its limit.
	KindTooLarge
	// KindCorrupt: records that fail their checks.
	KindCorrupt
	// KindOutOfRange: an offset outside the log.
	KindOutOfRange
	// KindOutOfOrder: an idempotent producer's sequence skipped.
	KindOutOfOrder
	// KindFenced: a producer epoch older than the current one.
	KindFenced
	// KindRejected: a full queue refuses the message (reject-publish).
	KindRejected
	// KindStorage: a write, fsync or read of the disk failed; nothing was
	// acknowledged.
	KindStorage
	// KindUnavailable: closed or shutting down; try again elsewhere or
	// later.
	KindUnavailable
)

var kindNames = [...]string{
	KindInternal: "internal", KindNotFound: "not found", KindExists: "exists", KindInvalid: "invalid",
	KindConflict: "conflict", KindAccessRefused: "access refused", KindLocked: "locked",
	KindNotAllowed: "not allowed", KindInvalidCommand: "invalid command", KindNotImplemented: "not implemented",
	KindTooLarge: "too large", KindCorrupt: "corrupt", KindOutOfRange: "out of range",
	KindOutOfOrder: "out of order", KindFenced: "fenced", KindRejected: "rejected",
	KindStorage: "storage", KindUnavailable: "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is a core error of a kind. The core's sentinel errors below are
// Errors; the core wraps them with the details ("%w: no queue 'q' in
// vhost '/'"), so errors.Is finds the sentinel and KindOf its kind.
type Error struct {
	kind Kind
	text string
}

func newError(k Kind, text string) *Error { return &Error{kind: k, text: text} }

func (e *Error) Error() string { return e.text }

// Kind is the error's kind.
func (e *Error) Kind() Kind { return e.kind }

// KindOf returns the kind of err: that of the first core Error in its
// chain, else that of a known error of a package below the core (queues,
// metadata, storage), else KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.kind
	}
	for _, b := range below {
		if errors.Is(err, b.err) {
			return b.kind
		}
	}
	return KindInternal
}

// below gives the errors of the packages under the core their kinds, for
// those that reach a front end unwrapped.
var below = []struct {
	err  error
	kind Kind
}{
	{queue.ErrExclusiveConsumer, KindAccessRefused},
	{queue.ErrRejected, KindRejected},
	{queue.ErrDeleted, KindNotFound},
	{meta.ErrStoreFailed, KindStorage},
	{meta.ErrUnknownPolicy, KindNotFound},
	{meta.ErrClosed, KindUnavailable},
	{storage.ErrOffsetOutOfRange, KindOutOfRange},
	{storage.ErrBatchTooLarge, KindTooLarge},
	{storage.ErrCorruptBatch, KindCorrupt},
	{storage.ErrClosed, KindUnavailable},
}

// The core's errors. The front ends map them to protocol error codes
// through their kinds.
var (
	// Messaging (vhosts, exchanges, queues, bindings). Their texts lead
	// the details the core adds; a front end drops them in favour of its
	// own names (AMQP's "NOT_FOUND - no queue ...").
	ErrNotFound           = newError(KindNotFound, "not found")
	ErrPreconditionFailed = newError(KindConflict, "precondition failed")
	ErrAccessRefused      = newError(KindAccessRefused, "access refused")
	ErrResourceLocked     = newError(KindLocked, "resource locked")
	ErrCommandInvalid     = newError(KindInvalidCommand, "command invalid")
	ErrNotAllowed         = newError(KindNotAllowed, "not allowed")
	ErrNotImplemented     = newError(KindNotImplemented, "not implemented")
	// ErrInvalidPolicy: a policy's pattern, apply-to or definition is
	// not acceptable.
	ErrInvalidPolicy = newError(KindInvalid, "invalid policy")

	// Topics and partitions.
	ErrUnknownTopic      = newError(KindNotFound, "broker: unknown topic")
	ErrUnknownPartition  = newError(KindNotFound, "broker: unknown partition")
	ErrTopicExists       = newError(KindExists, "broker: topic already exists")
	ErrInvalidTopic      = newError(KindInvalid, "broker: invalid topic name")
	ErrInvalidPartitions = newError(KindInvalid, "broker: invalid partition count")
	ErrInvalidConfig     = newError(KindInvalid, "broker: invalid config")
	// ErrInvalidReplicaAssignment: a client's placement names no
	// registered node, or does not cover the partitions once each.
	ErrInvalidReplicaAssignment = newError(KindInvalid, "broker: invalid replica assignment")
	// ErrInvalidReplicationFactor: more than one replica a partition,
	// which the cluster cannot give until partitions are replicated.
	ErrInvalidReplicationFactor = newError(KindInvalid, "broker: invalid replication factor (more than one replica needs a cluster, and at most its registered nodes)")
	ErrMessageTooLarge          = newError(KindTooLarge, "broker: record batch larger than max.message.bytes")
	ErrCorruptMessage           = newError(KindCorrupt, "broker: corrupt record batch")
	ErrOutOfOrderSequence       = newError(KindOutOfOrder, "broker: out of order sequence number")
	ErrInvalidProducerEpoch     = newError(KindFenced, "broker: producer epoch is stale")
	ErrOffsetOutOfRange         = newError(KindOutOfRange, "broker: offset out of range")
	// ErrControlBatch: a client produced a control batch; only the
	// transaction coordinator writes them.
	ErrControlBatch = newError(KindCorrupt, "broker: control batches are written by the broker only")
	// ErrInternalTopic: an internal topic (__consumer_offsets) is written,
	// created, deleted or reconfigured only by the broker itself.
	ErrInternalTopic = newError(KindInvalid, "broker: internal topics are read-only")

	// ErrMetaUnavailable: in a cluster, the metadata group has no leader
	// (an election, or this node cut off from a majority) or did not
	// commit a change in time: retry later.
	ErrMetaUnavailable = newError(KindUnavailable, "broker: the cluster's metadata is not available")

	// Both halves.
	ErrStorage = newError(KindStorage, "broker: storage error")
	ErrClosed  = newError(KindUnavailable, "broker: closed")
)

// coreError gives an error of a partition's log its meaning in the core.
// The log's own error stays in the chain, so errors.Is matches both the
// core's sentinel and the storage one. Anything the core has no name for
// is a storage failure (a failed write, fsync or read).
func coreError(err error) error {
	var core error
	var known *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &known):
		return err // a log of the core's own (an internal topic's view)
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		core = ErrOffsetOutOfRange
	case errors.Is(err, storage.ErrBatchTooLarge):
		core = ErrMessageTooLarge
	case errors.Is(err, storage.ErrCorruptBatch):
		core = ErrCorruptMessage
	case errors.Is(err, storage.ErrClosed):
		core = ErrClosed
	default:
		core = ErrStorage
	}
	return fmt.Errorf("%w: %w", core, err)
}
