package broker

import (
	"fmt"
	"sort"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
)

// QueueStatus is a queue's definition with its live counts, for the
// management API.
type QueueStatus struct {
	meta.Queue
	Args      fieldtable.Table // decoded arguments
	Type      string           // x-queue-type as declared ("" means classic)
	Ready     int64
	Unacked   int64
	Consumers int
	// Exclusive queues only: the owning connection's id.
	Owner string
	// Totals are the queue's running totals, nil for a queue type that
	// keeps none (streams).
	Totals *queue.Totals
	// Policy is what the vhost's policies give the queue.
	Policy AppliedPolicy
	// Memory estimates the bytes the queue keeps in RAM (its messages on
	// disk not counted); -1 if its type does not say.
	Memory int64
	// Feeds are where the feeds of a queue bound to topics stand, by
	// topic and partition (QueueStatus only; feed.go).
	Feeds []FeedStatus
	// Remote: the queue lives on another node (Queue.Node), whose counts
	// these are (RemoteQueueStatuses); Down: that node did not answer,
	// and the counts are zero.
	Remote, Down bool
	// Quorum queues on a cluster: the leader as this node knows it (0
	// during an election), the members, and those the transport hears
	// from (this node counts).
	Leader  uint64
	Members []uint64
	Online  []uint64
}

// QueueStatuses lists the queues of vhost vh, sorted by name.
func (r *Router) QueueStatuses(vh string) ([]QueueStatus, error) {
	r.openLazyQueues(vh, "")
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return nil, fmt.Errorf("%w: no vhost '%s'", ErrNotFound, vh)
	}
	out := make([]QueueStatus, 0, len(v.queues))
	for _, qe := range v.queues {
		out = append(out, queueStatus(qe))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// QueueStatus reports one queue, ignoring exclusivity.
func (r *Router) QueueStatus(vh, name string) (QueueStatus, error) {
	r.openLazyQueues(vh, name)
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return QueueStatus{}, fmt.Errorf("%w: no vhost '%s'", ErrNotFound, vh)
	}
	qe, ok := v.queues[name]
	if !ok {
		return QueueStatus{}, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	st := queueStatus(qe)
	st.Feeds = r.queueFeeds(vh, name, qe.def.ID)
	return st, nil
}

func queueStatus(qe *queueEntry) QueueStatus {
	ready, unacked, consumers := qe.q.Counts()
	s := QueueStatus{Queue: qe.def, Args: qe.args, Type: qe.qa.queueType, Ready: ready, Unacked: unacked, Consumers: consumers,
		Policy: qe.applied.export()}
	if h, ok := qe.q.(*quorumHandle); ok {
		s.Leader, s.Members, s.Online = h.status()
	}
	if qe.def.Exclusive {
		s.Owner = qe.owner
	}
	if q, ok := qe.q.(interface{ Totals() queue.Totals }); ok {
		t := q.Totals()
		s.Totals = &t
	}
	s.Memory = -1
	if q, ok := qe.q.(interface{ MemoryBytes() int64 }); ok {
		s.Memory = q.MemoryBytes()
	}
	return s
}

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
// Queues not opened yet after a start are opened first, side by side.
func (r *Router) QueueRefs() []QueueRef {
	r.mu.RLock()
	vhosts := make([]string, 0, len(r.vhosts))
	for name := range r.vhosts {
		vhosts = append(vhosts, name)
	}
	r.mu.RUnlock()
	for _, vh := range vhosts {
		r.openLazyQueues(vh, "")
	}
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

// VhostStats returns vhost vh's message totals, for a front end to count
// into (as the parent of its connections' MessageStats) and the
// management API to read; nil if the vhost does not exist (counting into
// nil counts nothing). A vhost deleted and declared again starts from
// zero.
func (r *Router) VhostStats(vh string) *MessageStats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if v, ok := r.vhosts[vh]; ok {
		return &v.stats
	}
	return nil
}

// ExchangeStats returns the running totals of vhost vh's exchanges, by
// name ("" for the default exchange).
func (r *Router) ExchangeStats(vh string) (map[string]ExchangeTotals, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return nil, fmt.Errorf("%w: no vhost '%s'", ErrNotFound, vh)
	}
	out := make(map[string]ExchangeTotals, len(v.exchanges))
	for name, x := range v.exchanges {
		out[name] = ExchangeTotals{PublishIn: x.stats.in.Load(), PublishOut: x.stats.out.Load()}
	}
	return out, nil
}
