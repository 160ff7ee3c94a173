// Package benchclient is a minimal AMQP 0-9-1 client for load generation,
// used by `sluice bench amqp --client lean`. It exists so that a benchmark
// measures the broker rather than the client: a general-purpose client such
// as amqp091-go makes one write system call per publish and per ack and
// hands every frame through goroutines and channels, which on a small
// machine costs about as much CPU as the broker spends serving it.
//
// # What it does
//
// A Conn is one TCP connection with one channel (channel 1). Dial runs the
// handshake: protocol header, connection.start / start-ok (PLAIN, with the
// user, password and vhost of the amqp:// URL; client properties carry the
// connection name and the capabilities publisher_confirms, basic.nack,
// connection.blocked, consumer_cancel_notify and
// authentication_failure_close), tune / tune-ok (the server's channel-max
// and frame-max are honoured, the frame-max capped at 128 KiB; heartbeats
// are off, heartbeat 0, so a connection idle behind a NAT may be dropped —
// irrelevant on loopback), open / open-ok and channel.open / open-ok.
//
// Setup calls are synchronous request/response and must all be made before
// ReadLoop starts: QueueDeclare, QueueDeclarePassive, QueuePurge, Qos,
// ConfirmSelect and Consume.
//
// Then the connection is pipelined. Publish and Ack only append frames to an
// in-memory write buffer; Flush writes the whole buffer in one write call.
// The caller decides when to flush, which is the point: a publisher flushes
// once per batch (or per message when paced), a consumer's ReadLoop flushes
// its acks only when it is about to block waiting for input
// (Handler.FlushBeforeRead), so acks go out in batches under load and at once
// when idle. A mutex guards the write buffer and the socket's write side, as
// both the ReadLoop goroutine (acks, close-ok replies) and a user goroutine
// (publishes, Close) may write.
//
// ReadLoop reads frames in the calling goroutine and calls the Handler's
// callbacks directly from it, with no channel hand-off: Confirm for
// basic.ack and basic.nack (with the multiple flag as received; the caller
// expands it), Deliver for each complete delivery, Blocked for
// connection.blocked and connection.unblocked (publishing is not stopped:
// the broker simply stops reading). The body passed to Deliver aliases a
// buffer reused for the next delivery: copy it to keep it. A server-sent
// connection.close or channel.close is answered with close-ok and ends
// ReadLoop with an *Error carrying the reply code and text; the client is
// then finished (only Close remains).
//
// # Limits
//
// It is a load generator, not a general client: one channel, no
// heartbeats, no TLS (amqps), no reconnection, no basic.get, no returns
// (publishes are never mandatory), no transactions, no flow control beyond
// TCP's, PLAIN authentication only, and every delivery is handed over
// without its properties. The write buffer grows with whatever is published
// and not flushed; bounding it is the caller's job.
//
// # Hostile servers
//
// Every frame is read through wire.FrameReader with the negotiated
// frame-max, so no frame larger than that is ever buffered; a content header
// announcing more than Config.MaxBodySize, a body frame going past the size
// its header announced, a frame out of place or a malformed method ends
// ReadLoop with an error and never panics. FuzzClientReadLoop feeds
// arbitrary bytes after a valid handshake to check that.
package benchclient
