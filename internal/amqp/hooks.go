package amqp

import (
	"time"
)

// Hooks receive what the AMQP front end measures, for metrics. They are
// called from every connection's goroutines at once, so implementations
// must be safe for concurrent use, cheap and non-blocking.
type Hooks interface {
	// ConnOpened and ConnClosed bracket each accepted connection;
	// ChannelOpened and ChannelClosed each channel.
	ConnOpened()
	ConnClosed()
	ChannelOpened()
	ChannelClosed()
	// BytesRead and BytesWritten count socket bytes, per read or write
	// call.
	BytesRead(n int)
	BytesWritten(n int)
	// MethodDone reports how long the server took to handle a
	// synchronous method (method is the spec's name, "queue.declare"),
	// and for "basic.publish" the time from the method frame to the
	// message being routed and appended (not yet durable).
	MethodDone(method string, d time.Duration)
	// Confirmed reports, for a publish on a channel in confirm mode, the
	// time from its method frame to it being durable in every queue it
	// was routed to (when its basic.ack is due).
	Confirmed(d time.Duration)
	// FlowWaited reports that a publishing connection's read loop waited
	// d for a queue in credit flow (flow.go).
	FlowWaited(d time.Duration)
}

type noHooks struct{}

func (noHooks) ConnOpened()                      {}
func (noHooks) ConnClosed()                      {}
func (noHooks) ChannelOpened()                   {}
func (noHooks) ChannelClosed()                   {}
func (noHooks) BytesRead(int)                    {}
func (noHooks) BytesWritten(int)                 {}
func (noHooks) MethodDone(string, time.Duration) {}
func (noHooks) Confirmed(time.Duration)          {}
func (noHooks) FlowWaited(time.Duration)         {}

// LimitHooks, when the Hooks implement it too, count what the
// connection limits and timeouts did (docs/security.md, "Limits and
// quotas"). ConnRefused: a connection refused by a limit
// ("max_connections"). ConnDropped: an open connection closed by one
// ("handshake_timeout", "frame_timeout", "write_timeout",
// "frame_too_large").
type LimitHooks interface {
	ConnRefused(reason string)
	ConnDropped(reason string)
}

// AuthHooks, when the Hooks implement it too, count refused logins by
// mechanism.
type AuthHooks interface {
	AuthFailed(mechanism string)
}

// TLSLimitHooks, when the Hooks implement it too, take LimitHooks' counts
// for connections that came through a TLS listener, so that metrics tell
// them apart (listener "amqps").
type TLSLimitHooks interface {
	ConnRefusedTLS(reason string)
	ConnDroppedTLS(reason string)
}

// limitRefused counts a refusal by a limit (LimitHooks, TLSLimitHooks).
func limitRefused(h Hooks, overTLS bool, reason string) {
	if th, ok := h.(TLSLimitHooks); ok && overTLS {
		th.ConnRefusedTLS(reason)
	} else if lh, ok := h.(LimitHooks); ok {
		lh.ConnRefused(reason)
	}
}

// limitDropped counts a connection closed by a limit or timeout.
func limitDropped(h Hooks, overTLS bool, reason string) {
	if th, ok := h.(TLSLimitHooks); ok && overTLS {
		th.ConnDroppedTLS(reason)
	} else if lh, ok := h.(LimitHooks); ok {
		lh.ConnDropped(reason)
	}
}
