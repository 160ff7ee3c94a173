// Package amqp is Sluice's AMQP 0-9-1 front end: it accepts connections
// from RabbitMQ clients, runs the handshake (PLAIN and AMQPLAIN, tune,
// heartbeats), and turns channel methods into calls on the broker core
// (broker.Router and the queues it owns). It never touches files, and
// reaches nothing past the core: users and permissions come from a
// broker.Accounts, and each open connection joins the core's registry of
// connections (broker.Connections), through which the management API
// lists and closes it.
//
// # Connections and goroutines
//
// Each connection has a reader goroutine, which reads frames and handles
// every method in order, and a writer goroutine, which owns the socket's
// write side: frames are appended, encoded, to the connection's output
// buffer (conn.send; deliveries are encoded straight into it, beginOut and
// endOut) and the writer takes the whole buffer and writes it with one
// system call, in the order appended, with heartbeats when the connection
// is otherwise quiet. Queue dispatcher goroutines deliver to consumers
// through the same buffer, which holds at most maxOut bytes, so a slow
// client pushes back on the queue instead of growing a buffer. A busy
// publisher's reader reads with a 64 KiB buffer (FrameReader.Grow).
//
// A channel in confirm mode has a goroutine that waits, in publish order,
// until each published message is durable in every queue it was routed to
// (fsync'd under the default policy) and only then sends basic.ack —
// coalesced with multiple=true when several are ready — or basic.nack when
// a queue refused it or the write failed.
//
// # Errors
//
// A method that breaks a rule gets the specification's reply code: soft
// codes (403, 404, 405, 406) close the channel with channel.close, hard
// codes (501-541) close the connection with connection.close, which waits
// briefly for close-ok. Texts follow RabbitMQ's ("NOT_FOUND - no queue 'q'
// in vhost '/'"). A malformed frame closes only its own connection.
//
// # Lock order
//
// queue.Queue.mu (held while the queue calls consumer.Reserve), then
// channel.mu. channel.sendMu (held across assigning a delivery tag and
// appending the frames to the output) is taken before channel.mu and never
// while a queue lock is held; the output's lock (outBuf.mu) is taken last
// and held only while frames are appended or taken. The reader never holds
// channel.mu while calling into a queue.
package amqp
