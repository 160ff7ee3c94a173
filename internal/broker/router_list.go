package broker

import (
	"sort"

	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// QueueRef names an open queue and gives its handle, for reading its
// counts and totals (metrics, management).
type QueueRef struct {
	Vhost  string
	Name   string
	Handle queue.Handle
}

// QueueRefs lists every open queue, sorted by vhost and name. The list is a
// snapshot taken under the router's read lock; the handles are read
// without it, so a queue deleted meanwhile may still be listed once.
func (r *Router) QueueRefs() []QueueRef {
	r.mu.RLock()
	var out []QueueRef
	for _, v := range r.vhosts {
		for _, qe := range v.queues {
			out = append(out, QueueRef{Vhost: v.name, Name: qe.def.Name, Handle: qe.q})
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vhost != out[j].Vhost {
			return out[i].Vhost < out[j].Vhost
		}
		return out[i].Name < out[j].Name
	})
	return out
}
