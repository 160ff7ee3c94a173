package kafka

// Flow control on resource alarms (internal/broker/alarm).
//
// While an alarm is raised, a Produce request is held before any of its
// records are appended: the read loop waits, so later requests on the
// connection wait behind it, as they would behind a slow request in Kafka
// (one request in flight per connection). When every alarm clears the
// request is appended and answered as usual. If the request's timeout_ms
// passes first, every partition is answered REQUEST_TIMED_OUT, which
// clients treat as retriable, with throttle_time_ms set so they back off
// before retrying; nothing was appended, so the retry cannot duplicate.
// acks=0 requests have no answer to give and are held until the alarm
// clears. Fetch and every other request on other connections go on.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FlowControl tells the server when producers must be held:
// internal/broker/alarm's Monitor.
type FlowControl interface {
	// Blocked returns why producers must wait ("" when they need not)
	// and a channel closed when that answer next changes.
	Blocked() (reason string, changed <-chan struct{})
}

// blockedThrottle is the throttle_time_ms given with a produce answered
// REQUEST_TIMED_OUT because an alarm outlasted the request's timeout.
const blockedThrottle = time.Second

// minProduceHold bounds how soon a held produce with a tiny or zero
// timeout_ms is answered, so such a client cannot spin on the broker.
const minProduceHold = 100 * time.Millisecond

// holdProduce waits while a resource alarm is raised. It returns false if
// the request's timeout passed (or the connection ended) first.
func (c *conn) holdProduce(req *kmsg.ProduceRequest) bool {
	if c.s.opts.Flow == nil {
		return true
	}
	reason, changed := c.s.opts.Flow.Blocked()
	if reason == "" {
		return true
	}
	c.log.Debug("produce held by resource alarm", "reason", reason, "timeout_ms", req.TimeoutMillis)
	var timeout <-chan time.Time
	if req.Acks != 0 {
		t := time.NewTimer(max(millis(req.TimeoutMillis), minProduceHold))
		defer t.Stop()
		timeout = t.C
	}
	for reason != "" {
		select {
		case <-changed:
		case <-timeout:
			return false
		case <-c.ctx.Done():
			return false
		}
		reason, changed = c.s.opts.Flow.Blocked()
	}
	return true
}

// produceHeldTooLong is the answer to a produce whose timeout passed while
// an alarm held it.
func produceHeldTooLong(req *kmsg.ProduceRequest) func() (kmsg.Response, error) {
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.ThrottleMillis = int32(blockedThrottle / time.Millisecond)
		return produceAllFailed(req, resp, kerr.RequestTimedOut.Code), nil
	}
}
