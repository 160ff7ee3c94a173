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

// AuthHooks, when the Hooks implement it too, count refused logins by
// mechanism.
type AuthHooks interface {
	AuthFailed(mechanism string)
}
