package broker

import (
	"fmt"

	"github.com/sluice-mq/sluice/internal/meta"
)

// Vhost and user limits (RabbitMQ's), stored as metadata commands
// (internal/meta limits.go); the AMQP front end enforces them.
type Limit = meta.Limit

// Limit kinds.
const (
	LimitVhost = meta.LimitVhost
	LimitUser  = meta.LimitUser
)

// Limits reads the limits in force.
type Limits interface {
	// Limit returns the value of one limit (kind LimitVhost or LimitUser,
	// the vhost's or user's name, a key such as "max-connections"); ok
	// is false when none is set or it is negative (no limit).
	Limit(kind, name, key string) (value int64, ok bool)
}

var _ Limits = (*meta.Store)(nil)

// queueLimitError is the refusal of a queue past its vhost's max-queues
// (DeclareQueue, every front end): RabbitMQ's text, a precondition
// failure (AMQP 406, HTTP 400).
func queueLimitError(name, vh string, max int64) error {
	return fmt.Errorf("%w: cannot declare queue '%s': queue limit in vhost '%s' (%d) is reached", ErrPreconditionFailed, name, vh, max)
}
