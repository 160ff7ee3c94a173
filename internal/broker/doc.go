// Package broker is Sluice's protocol-neutral core. It knows no wire
// format: the front ends translate frames into calls here and map the
// errors in errors.go to their own codes.
//
// Today it holds two halves that are still to be joined into one core
// (issue 10):
//
//   - the Kafka side (broker.go, partition*.go, topicconfig.go): topics
//     and their partitions, topic configuration, retention, and (package
//     groups) consumer group membership. A Partition owns everything a
//     front end may know of its log: it validates appended batches, keeps
//     idempotent-producer sequence state, reports its offsets (log start,
//     high watermark, last stable offset), decides what a read at each
//     isolation level returns, wakes long-polling readers (Watch) and maps
//     timestamps to records (records.go decodes batches). It is written
//     against the narrow PartitionLog interface (partition_log.go), which
//     a storage.Log implements today and a replicated log is to implement
//     next;
//   - the AMQP side (router*.go, stream_args.go): vhosts, exchanges and
//     routing (package route), queues (package queue: work queues,
//     priority queues, streams, the delayed-message store), bindings and
//     dead-lettering.
//
// Definitions (topics, configs, offsets, producer ids; vhosts, exchanges,
// queues, bindings) change only through internal/meta; message data lives
// in internal/storage. The record mapping between the protocols is package
// message.
//
// What the front ends need besides routing and topics they find here too,
// so that they import the core only: the definitions they pass or read
// (Binding, User, Vhost, Permission) and Accounts, the users and
// permissions that authenticate and authorise a client (access.go); and
// Connections, the registry of open client connections of every protocol
// that the management API lists and closes (connections.go).
//
// When a write or fsync fails, the log refuses writes until it is reopened
// from what is durable; Recovery (recovery.go) finds failed partitions,
// queues and the metadata log and reopens them, with backoff, once the disk
// takes writes again (docs/storage-format.md, "When a write fails").
//
// Lock order: Router.mu, then a queue's lock; Broker.mu, then Partition.mu,
// then the PartitionLog's own locks (a storage.Log's). Router.mu and Broker.mu are held neither
// while a queue is declared nor while a topic is created (the name is
// reserved, the storage and definition written without the lock, then
// installed), so that publishes and produces never wait for those fsyncs.
// Other definition changes (deleting a queue or topic, bindings, exchanges,
// partition counts, configs) still hold them across their metadata fsync.
package broker
