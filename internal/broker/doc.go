// Package broker is Sluice's protocol-neutral core: topics and their
// partitions (each a storage.Log), topic configuration, idempotent-producer
// sequence state, retention, and (in package groups) consumer group
// membership. It knows no wire format: the Kafka front end (and later the
// AMQP one) translate frames into calls here and map the errors below to
// their own codes.
//
// Definitions (topics, partition counts, configs, committed offsets,
// producer ids) change only through internal/meta; partition data lives in
// internal/storage.
//
// Lock order: Broker.mu, then Partition.mu, then the storage.Log's own
// locks. Broker.mu guards the topic map only; it is never held while waiting
// for an fsync.
package broker
