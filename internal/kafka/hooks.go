package kafka

import (
	"time"
)

// Hooks receive what the Kafka front end measures, for metrics. They are
// called from every connection's goroutines at once, so implementations
// must be safe for concurrent use, cheap and non-blocking. Byte counts are
// reported per read or write call on the socket, requests once each.
type Hooks interface {
	// ConnOpened and ConnClosed bracket each accepted connection.
	ConnOpened()
	ConnClosed()
	// BytesRead and BytesWritten count socket bytes.
	BytesRead(n int)
	BytesWritten(n int)
	// RequestDone reports a request (api is kmsg.NameForKey of its key,
	// e.g. "Produce") and the time from its frame arriving to its
	// response being written (or dropped, for acks=0 produce), waits
	// included: a Fetch long poll counts its wait, an acks=all Produce its
	// fsync.
	RequestDone(api string, d time.Duration)
}

type noHooks struct{}

func (noHooks) ConnOpened()                       {}
func (noHooks) ConnClosed()                       {}
func (noHooks) BytesRead(int)                     {}
func (noHooks) BytesWritten(int)                  {}
func (noHooks) RequestDone(string, time.Duration) {}

// LimitHooks, when the Hooks implement it too, count what the
// connection limits and timeouts did (docs/security.md, "Limits and
// quotas"). ConnRefused: a connection not served because of a limit
// (reason "max_connections": the listener stopped accepting, at its cap).
// ConnDropped: an open connection closed by one ("idle_timeout",
// "frame_timeout", "write_timeout", "frame_too_large").
type LimitHooks interface {
	ConnRefused(reason string)
	ConnDropped(reason string)
}

// TLSLimitHooks, when the Hooks implement it too, take LimitHooks' counts
// for connections that came through a TLS listener, so that metrics tell
// them apart (listener "kafka_tls").
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
