package amqp

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/meta"
)

// TestFromBroker: every core error kind becomes the reply code RabbitMQ
// answers with, its text reads as RabbitMQ's ("NOT_FOUND - no queue ..."),
// and anything unexpected (a storage failure among them) is a 541 that
// closes the connection, with the failure's text.
func TestFromBroker(t *testing.T) {
	cases := []struct {
		err      error
		code     uint16
		text     string
		hardness bool
	}{
		{fmt.Errorf("%w: no queue 'q' in vhost '/'", broker.ErrNotFound), wire.NotFound, "NOT_FOUND - no queue 'q' in vhost '/'", false},
		{fmt.Errorf("%w: inequivalent arg 'durable' for queue 'q' in vhost '/'", broker.ErrPreconditionFailed), wire.PreconditionFailed,
			"PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/'", false},
		{fmt.Errorf("%w: cannot obtain exclusive access to locked queue 'q' in vhost '/'", broker.ErrResourceLocked), wire.ResourceLocked,
			"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'", false},
		{fmt.Errorf("%w: queue name 'amq.x' contains reserved prefix 'amq.*'", broker.ErrAccessRefused), wire.AccessRefused,
			"ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'", false},
		{queue.ErrExclusiveConsumer, wire.AccessRefused, "ACCESS_REFUSED - " + queue.ErrExclusiveConsumer.Error(), false},
		{fmt.Errorf("basic.consume: %w", queue.ErrDeleted), wire.NotFound, "NOT_FOUND - basic.consume: " + queue.ErrDeleted.Error(), false},
		{fmt.Errorf("%w: unknown exchange type 'x'", broker.ErrCommandInvalid), wire.CommandInvalid, "COMMAND_INVALID - unknown exchange type 'x'", true},
		{fmt.Errorf("%w: mkdir /data/queues/ab: no space left on device", broker.ErrStorage), wire.InternalError,
			"INTERNAL_ERROR - broker: storage error: mkdir /data/queues/ab: no space left on device", true},
		{fmt.Errorf("%w: fsync: input/output error", meta.ErrStoreFailed), wire.InternalError,
			"INTERNAL_ERROR - meta: metadata log failed: fsync: input/output error", true},
		{errors.New("something else"), wire.InternalError, "INTERNAL_ERROR - something else", true},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			e := fromBroker(c.err)
			if e.code != c.code || e.text != c.text {
				t.Fatalf("%d %q, want %d %q", e.code, e.text, c.code, c.text)
			}
			if e.hard() != c.hardness {
				t.Fatalf("hard %v, want %v (a hard error closes the connection)", e.hard(), c.hardness)
			}
		})
	}
	// An exception already made passes through as it is.
	pre := errorf(wire.NotAllowed, "vhost '/x' not found")
	if got := fromBroker(fmt.Errorf("wrapped: %w", pre)); got != pre {
		t.Fatalf("an amqpError was rebuilt: %v", got)
	}
}
