package broker

import "github.com/sluice-mq/sluice/internal/meta"

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

// QueueCount returns the number of queues in vhost vh and whether one of
// them is named name.
func (r *Router) QueueCount(vh, name string) (n int, exists bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := r.vhosts[vh]
	if v == nil {
		return 0, false
	}
	_, exists = v.queues[name]
	return len(v.queues), exists
}
