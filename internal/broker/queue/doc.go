// Package queue is a work queue on a log: the broker core's AMQP queue.
//
// A queue's messages are appended, one record per batch, to a
// storage.Log in arrival order. Delivery state is small and mostly in
// memory:
//
//   - a cursor, the next offset never delivered;
//   - the requeued offsets (returned by a nack, a reject with requeue, or a
//     closed channel), redelivered before anything at the cursor, in offset
//     order, flagged redelivered;
//   - the unacked offsets, bounded by what consumers' prefetch allows;
//   - the settled set: offsets acked, expired, dead-lettered, dropped or
//     purged, kept as ranges (see intervals) and recorded durably in the
//     ack log (acklog.go), which is replayed on open.
//
// Nothing per message lives in memory except what is in flight, so a queue
// with ten million messages costs segments on disk. The log start is moved
// past the lowest unsettled offset from time to time (storage's
// DeleteRecordsBefore), which deletes every segment wholly below it; closed
// segments behind the cursor that are mostly settled are compacted to
// their live messages (compact.go), so one stuck message does not pin the
// segments after it.
//
// Durability: Publish returns the log's Appended; the front end confirms a
// publish only after Appended.Wait, that is after fsync under the default
// policy. A message becomes deliverable once written, while its fsync is
// under way (storage's ReadBeforeSync), as in RabbitMQ, whose classic
// queues deliver before their store syncs: if the machine dies first, the
// message is lost with its confirm never sent, so the publisher sends it
// again, and any ack recorded for it is dropped at recovery (settled
// offsets at or above the recovered high watermark). Acks are recorded
// without waiting for fsync: a crash can forget an ack, which means a
// redelivery (allowed by AMQP), never a loss. After a restart every
// unsettled message is ready again; those below the delivered mark kept in
// the ack record (they may have been delivered) are flagged redelivered.
//
// Each queue runs one dispatcher goroutine that hands ready messages to
// consumers with credit (Consumer.Reserve) whenever the log's readable
// end moves, credit returns (Kick) or a head message's TTL runs out.
// Expiry follows RabbitMQ: a message past its TTL is dropped or
// dead-lettered when it reaches the head. Length limits count ready
// messages; drop-head settles from the head, reject-publish refuses.
// A priority queue (priority.go) counts its limits over all levels
// (priority_limits.go). Dead-lettering calls Options.DeadLetter (the broker routes the copy
// through the dead-letter exchange) and settles the original only after
// the copy is durable.
//
// Locking: Queue.mu guards all state. Consumer.Reserve is called with it
// held; Consumer.Deliver, Options.DeadLetter and log fsync waits happen
// without it.
package queue
