package broker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TestKindOf: every error the core hands a front end has a kind, found
// through wrapping, and what the core does not know is internal.
func TestKindOf(t *testing.T) {
	cases := []struct {
		err  error
		want Kind
	}{
		{fmt.Errorf("%w: no queue 'q' in vhost '/'", ErrNotFound), KindNotFound},
		{fmt.Errorf("%w: inequivalent arg 'durable'", ErrPreconditionFailed), KindConflict},
		{fmt.Errorf("%w: unknown exchange type 'x'", ErrCommandInvalid), KindInvalidCommand},
		{ErrUnknownTopic, KindNotFound},
		{ErrTopicExists, KindExists},
		{ErrInvalidConfig, KindInvalid},
		{ErrInvalidProducerEpoch, KindFenced},
		{ErrControlBatch, KindCorrupt},
		{fmt.Errorf("declare: %w", fmt.Errorf("%w: mkdir: no space left on device", ErrStorage)), KindStorage},
		{coreError(fmt.Errorf("read: %w", storage.ErrOffsetOutOfRange)), KindOutOfRange},
		{coreError(errors.New("fsync: input/output error")), KindStorage},
		{coreError(storage.ErrClosed), KindUnavailable},
		{queue.ErrExclusiveConsumer, KindAccessRefused},
		{queue.ErrRejected, KindRejected},
		{fmt.Errorf("%w: fsync", meta.ErrStoreFailed), KindStorage},
		{meta.ErrClosed, KindUnavailable},
		{errors.New("something else"), KindInternal},
		{nil, KindInternal},
	}
	for _, c := range cases {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	// The core's wrapping keeps the sentinel findable, and its kind wins
	// over a wrapped storage error's.
	err := coreError(storage.ErrBatchTooLarge)
	if !errors.Is(err, ErrMessageTooLarge) || !errors.Is(err, storage.ErrBatchTooLarge) || KindOf(err) != KindTooLarge {
		t.Fatalf("coreError(ErrBatchTooLarge) = %v (kind %v)", err, KindOf(err))
	}
}
