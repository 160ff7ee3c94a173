// Package share is the state machine of Kafka share groups (KIP-932):
// queues over a topic's partitions, where the members of a group take
// records one by one, each under an acquisition lock, and settle them
// with accept, release or reject instead of committing an offset.
//
// It does no I/O and reads no clock: the broker's runtime (shares.go in
// package broker) reads the partitions' logs, passes the time in, and
// persists the State a group returns after every change it must keep.
//
// A share-partition (Partition) is the window of a topic partition between
// its start offset (SPSO: every record below it is settled) and its end
// offset (SPEO: no record at or past it was handed out yet). Inside the
// window only the records still to settle are kept, each available or
// acquired by one member until its lock's deadline, with its delivery
// count:
//
//	            acquire (count+1)
//	available ───────────────────▶ acquired ──accept / reject / gap──▶ settled
//	    ▲                              │
//	    └──── release, lock timeout ───┘  (settled instead, "archived",
//	                                       once count reaches the limit)
//
// A settled record is simply forgotten: what is absent from the window is
// settled (acknowledged, archived, or never a record: a transaction
// marker, an aborted batch). So memory holds at most the records in
// flight and those released, never a backlog.
//
// Membership (Group) works like the consumer group protocol's (KIP-848)
// without its reconciliation: every member is assigned every partition of
// every topic it subscribes to, so the assignment of a member changes only
// with its subscription or a topic's partition count, and nothing is ever
// revoked. Sharing is what the locks are for.
package share
