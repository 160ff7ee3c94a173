package broker

import (
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// Dead-letter cycles, as RabbitMQ stops them: a dead-lettered message that
// would reach a queue it has already died in is dropped for that queue
// when nothing in the cycle was a client's doing, that is when no death
// from the latest one back to (and including) the earlier death in that
// queue was a rejection. Without the rule, a queue whose dead-letter
// exchange routes back to itself (the default exchange without a
// dead-letter routing key, say) and a TTL would circulate its messages
// forever. A message a client rejects can cycle: the client chose to.
//
// The x-death header (recordDeath) lists one entry per queue and reason,
// the latest first, so the cycle is read from its front.

// dropDeadLetterCycles returns ds without the queues m would reach in an
// automatic cycle (a topic is never part of one: nothing dies in it). m's
// x-death already records the death that sends it.
func dropDeadLetterCycles(ds []Destination, m *message.Message, reason queue.Reason) (kept []Destination, dropped []string) {
	if reason == queue.Rejected || len(ds) == 0 {
		return ds, nil
	}
	deaths, _ := m.Properties.Headers["x-death"].([]any)
	if len(deaths) == 0 {
		return ds, nil
	}
	kept = ds[:0:0]
	for _, d := range ds {
		if qd, ok := d.(*queueDestination); ok && isDeadLetterCycle(deaths, qd.q.Name()) {
			dropped = append(dropped, qd.q.Name())
			continue
		}
		kept = append(kept, d)
	}
	return kept, dropped
}

// isDeadLetterCycle reports whether the deaths (latest first) show that a
// message sent to qname now would close a cycle with no rejection in it.
func isDeadLetterCycle(deaths []any, qname string) bool {
	for _, d := range deaths {
		t, ok := asTable(d)
		if !ok {
			continue
		}
		if t["reason"] == string(queue.Rejected) {
			return false
		}
		if t["queue"] == qname {
			return true
		}
	}
	return false
}
