// Package broker is Sluice's protocol-neutral core. It knows no wire
// format: the front ends translate frames into calls here and map the
// errors in errors.go to their own codes.
//
// Today it holds two halves that are still to be joined into one core
// (issue 10):
//
//   - the Kafka side (broker.go, partition.go, topicconfig.go): topics and
//     their partitions, each a storage.Log, topic configuration,
//     idempotent-producer sequence state, retention, and (package groups)
//     consumer group membership;
//   - the AMQP side (router*.go, stream_args.go): vhosts, exchanges and
//     routing (package route), queues (package queue: work queues,
//     priority queues, streams, the delayed-message store), bindings and
//     dead-lettering.
//
// Definitions (topics, configs, producer ids; vhosts, exchanges, queues,
// bindings) change only through internal/meta; message data lives in
// internal/storage; consumer groups' committed offsets live in package
// offsets (DataDir/offsets), which the Broker opens, checks commits for and
// closes. The record mapping between the protocols is package message.
//
// When a write or fsync fails, the log refuses writes until it is reopened
// from what is durable; Recovery (recovery.go) finds failed partitions,
// queues and the metadata log and reopens them, with backoff, once the disk
// takes writes again (docs/storage-format.md, "When a write fails").
//
// Lock order: Router.mu, then a queue's lock; Broker.mu, then Partition.mu,
// then a storage.Log's own locks. Router.mu and Broker.mu are held neither
// while a queue is declared nor while a topic is created (the name is
// reserved, the storage and definition written without the lock, then
// installed), so that publishes and produces never wait for those fsyncs.
// Other definition changes (deleting a queue or topic, bindings, exchanges,
// partition counts, configs) still hold them across their metadata fsync.
package broker
