package broker

import (
	"errors"
	"fmt"

	"github.com/sluice-mq/sluice/internal/storage"
)

// Errors the front ends map to protocol error codes.
var (
	ErrUnknownTopic         = errors.New("broker: unknown topic")
	ErrUnknownPartition     = errors.New("broker: unknown partition")
	ErrTopicExists          = errors.New("broker: topic already exists")
	ErrInvalidTopic         = errors.New("broker: invalid topic name")
	ErrInvalidPartitions    = errors.New("broker: invalid partition count")
	ErrInvalidConfig        = errors.New("broker: invalid config")
	ErrMessageTooLarge      = errors.New("broker: record batch larger than max.message.bytes")
	ErrCorruptMessage       = errors.New("broker: corrupt record batch")
	ErrOutOfOrderSequence   = errors.New("broker: out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("broker: producer epoch is stale")
	ErrOffsetOutOfRange     = errors.New("broker: offset out of range")
	ErrStorage              = errors.New("broker: storage error")
	ErrClosed               = errors.New("broker: closed")
	// ErrTransactionsUnsupported: a transactional batch was produced; the
	// core has no transactions yet.
	ErrTransactionsUnsupported = errors.New("broker: transactional produce is not supported")
)

// coreError gives an error of a partition's log its meaning in the core.
// The log's own error stays in the chain, so errors.Is matches both the
// core's sentinel and the storage one. Anything the core has no name for
// is a storage failure (a failed write, fsync or read).
func coreError(err error) error {
	var core error
	switch {
	case err == nil:
		return nil
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
