package broker

import "sync/atomic"

// MessageStats are running message totals, counted where the messages
// pass, for the management API's message_stats (which turns successive
// snapshots into rates). Counting is an atomic add per level and takes no
// lock, so the publish and delivery paths can afford it.
//
// Levels chain: an AMQP channel's stats have its connection's as parent,
// and a connection's have its vhost's (Router.VhostStats), so one Add
// counts at every level and a vhost's totals survive its connections. The
// zero value counts at its own level only.
type MessageStats struct {
	n      [NumMessageStats]atomic.Int64
	parent *MessageStats
}

// MessageStat names one running total. The names are RabbitMQ's
// message_stats fields (MessageStatNames).
type MessageStat int

const (
	StatPublish          MessageStat = iota // messages published by clients
	StatConfirm                             // publisher confirms (basic.ack to a publisher)
	StatReturnUnroutable                    // mandatory messages returned as unroutable
	StatDropUnroutable                      // other messages no queue took
	StatDeliver                             // deliveries to consumers that ack
	StatDeliverNoAck                        // deliveries to no-ack consumers
	StatGet                                 // basic.get answered with a message, to be acked
	StatGetNoAck                            // basic.get with no-ack answered with a message
	StatGetEmpty                            // basic.get answered get-empty
	StatAck                                 // deliveries acknowledged by clients
	StatRedeliver                           // deliveries flagged redelivered

	NumMessageStats
)

// MessageStatNames are the JSON names of the totals, by MessageStat.
var MessageStatNames = [NumMessageStats]string{
	"publish", "confirm", "return_unroutable", "drop_unroutable",
	"deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "ack", "redeliver",
}

// MessageTotals is a snapshot of MessageStats.
type MessageTotals [NumMessageStats]int64

// NewMessageStats returns stats that count into parent as well (nil: no
// parent).
func NewMessageStats(parent *MessageStats) *MessageStats {
	return &MessageStats{parent: parent}
}

// Add counts n at s's level and at every parent's. A nil s counts
// nothing.
func (s *MessageStats) Add(k MessageStat, n int64) {
	for ; s != nil; s = s.parent {
		s.n[k].Add(n)
	}
}

// Totals reads the running totals (a nil s has none).
func (s *MessageStats) Totals() MessageTotals {
	var t MessageTotals
	if s == nil {
		return t
	}
	for i := range t {
		t[i] = s.n[i].Load()
	}
	return t
}

// ExchangeTotals are an exchange's running totals, RabbitMQ's publish_in
// (messages published to it) and publish_out (of those, the ones it
// routed to at least one destination).
type ExchangeTotals struct {
	PublishIn, PublishOut int64
}

// exchangeStats count an exchange's traffic without a lock.
type exchangeStats struct {
	in, out atomic.Int64
}

func (s *exchangeStats) count(routed bool) {
	s.in.Add(1)
	if routed {
		s.out.Add(1)
	}
}
