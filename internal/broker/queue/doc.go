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
// The mark is written ahead: a dispatch round that moves the cursor writes
// it (to the page cache, without fsync) before its deliveries go out, so a
// killed process never forgets one; Close writes the exact cursor.
//
// # Core and runtime
//
// A queue is two halves, split as etcd raft splits Step from Ready and
// Advance:
//
//   - the core (core.go) holds every decision: the cursor, the requeued
//     offsets, the unacked ones and their delivery counts, the settled
//     set, the counters behind the length limits, the consumers (priority,
//     round robin, single active consumer, exclusivity) and a read-ahead of
//     messages at the head. It does no I/O, starts no goroutine and never
//     reads the clock: the time and the log's readable end come in with
//     the commands. Its tests (core_test.go) drive it with a simulated
//     log, clock and dead-letter exchange, without sleeping.
//   - the runtime (Queue, queue.go) owns the log, the ack record, the
//     dispatcher goroutine and its timer. It runs a command under the
//     queue's lock, takes the effects the command decided (takeReadyLocked)
//     and performs them after unlocking (perform).
//
// Commands: admitPublish and enqueued (a publish, before and after its
// append), dispatch (hand out what consumers have credit for), get
// (basic.get), ack, requeue (nack, reject or recover with requeue, a closed
// channel), discard (reject without requeue), trimHead (a priority queue's
// drop-head), purge, addConsumer and removeConsumer, and the results of
// effects coming back: readDone and unreadable for reads, deadLettered for
// dead-letter publishes. restore sets the state recovered at open.
//
// Effects (ready): reads of the log (the core decides nothing about a head
// it has not been given; reads happen without the lock and their results
// come back as readDone), deliveries for Consumer.Deliver, dead letters for
// Options.DeadLetter (the originals stay unacked, marked dying, until the
// copy is durable, then deadLettered settles them; a failed copy puts them
// back in line, and expired or over-limit heads then wait a second before
// the core dead-letters again, rather than retrying in a loop), ranges to append to the ack record and a request to write
// it, the next wake-up for an expiring head, and running totals.
//
// Expiry follows RabbitMQ: a message past its TTL is dropped or
// dead-lettered when it reaches the head; the core asks to be woken when
// the head expires (and, with a TTL, within a second when nothing is
// visible), so a queue without consumers still shrinks. Length limits count
// ready messages; drop-head settles from the head, reject-publish refuses,
// reject-publish-dlx refuses and dead-letters the refused message. A
// message requeued more times than x-delivery-limit is dead-lettered
// (reason delivery_limit). A priority queue (priority.go) is one Queue,
// with its own core, per level; it counts its limits over all levels
// (priority_limits.go). Dead-lettering calls Options.DeadLetter (the broker
// routes the copy through the dead-letter exchange, with x-death).
//
// # Tail mode
//
// A quorum queue's log is appended by Raft's apply on every replica, and
// its ack record is replicated as Raft entries. On the leader a Queue runs
// over that log in tail mode (Options.Tail, tail.go): it opens no files,
// starts from the replicated settled set and delivered mark (Tail.Acks),
// and before each dispatch (and each basic.get) enqueues what the owner
// appended up to the log's high watermark, counting each message as
// Publish would (Publish itself refuses with ErrTail; the leader asks
// Admit before it proposes a publish). The core decides as for any queue,
// and never past what has been enqueued. The entries a classic queue
// would write to its ack file go, byte for byte and in order, to
// Tail.Record; a move of the log start becomes a request,
// Tail.DeleteBefore; segment compaction does not run, and closing or
// deleting the queue leaves the log to its owner. Every replica applies
// the replicated entries to an AckRecord (ackrecord.go), whose Entries
// the next leader's queue starts from.
//
// # Locking
//
// Queue.ackMu, then Queue.mu; nothing takes ackMu while holding mu.
//
// Queue.mu guards the core and the runtime's state (the ack record's
// buffer, the flush and compaction flags). Under it: the core's commands,
// which call Consumer.Reserve (quick, never calling back into this queue;
// a priority lane's Reserve takes the Counts lock of higher lanes only, so
// lane locks are taken upwards), and the log's Append (a hand-off to its
// writer, no fsync). Without it: every read of the log (the head's
// read-ahead, a rejected message read for dead-lettering, basic.get),
// Consumer.Deliver, Options.DeadLetter, every fsync wait, moving the log
// start, and segment compaction.
//
// Queue.ackMu guards the ack record's file: flush takes the buffered
// entries (or a copy of the settled set, to rewrite the file whole) under
// mu, then writes them holding only ackMu; compaction writes and fsyncs
// what its job took under ackMu before it rewrites a segment; Close writes
// the rest. In tail mode the same holds for Tail.Record, which takes the
// place of the file's writes, and for Tail.DeleteBefore: both are called
// holding ackMu only, so neither runs concurrently with itself.
package queue
