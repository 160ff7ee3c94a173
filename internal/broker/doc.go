// Package broker is Sluice's protocol-neutral core. It knows no wire
// format: the front ends translate frames into calls here and map the
// core's errors to their own codes by kind (errors.go: every core error
// has a Kind, and each front end keeps one table from kinds to codes).
//
// Its subsystems know each other:
//
//   - topics (broker.go, partition*.go, topicconfig.go): topics and their
//     partitions, topic configuration (every Kafka topic config, with the
//     broker's dynamic configs as defaults, admin.go), retention, and
//     (package groups) consumer group membership, (package share,
//     shares.go) share groups (KIP-932). A Partition owns
//     everything a front end may know of its log: it validates appended
//     batches, stores them as the topic's compression.type and
//     message.timestamp.type say (partition_rewrite.go), keeps
//     idempotent-producer sequence state, reports its offsets (log start,
//     high watermark, last stable offset), decides what a read at each
//     isolation level returns, wakes long-polling readers (Watch) and maps
//     timestamps to records (records.go decodes batches). The log cleaner
//     (cleaner*.go) compacts the partitions of cleanup.policy=compact
//     topics in the background, through the storage's segment rewrite. It is written
//     against the narrow PartitionLog interface (partition_log.go), which
//     a storage.Log implements today and a replicated log is to implement
//     next;
//   - messaging (router*.go, stream_args.go): vhosts, exchanges and
//     routing (package route), queues (package queue: work queues,
//     priority queues, streams, the delayed-message store), bindings and
//     dead-lettering, and policies (policy.go, router_policy.go), which
//     reconfigure live queues through queue SetConfig, a command to the
//     queue's core that does no I/O. After a start, durable queues open
//     on first use and in a background warm-up (router_lazy.go), so a
//     broker with many queues serves at once.
//
// They meet in routing: whatever a binding can lead to implements
// Destination (destination.go), a queue of any type or a topic, so an
// exchange can feed a topic (a binding of kind DestTopic) as it feeds a
// queue; the message is stored as the record a Kafka consumer reads, in
// the partition Kafka's default partitioner picks for its routing key.
// They also meet in views (superstream.go, docs/bridge.md): in the Kafka
// vhost every topic is a super stream, an exchange that publishes into the
// topic and one stream queue per partition reading the partition's log
// (queue.OpenStreamView), derived from the topic whenever it changes; and
// a stream queue declared there is a one-partition topic it views.
//
// Definitions (topics, configs, producer ids; vhosts, exchanges, queues,
// bindings) change only through internal/meta; message data lives in
// internal/storage; consumer groups' committed offsets live in package
// offsets (DataDir/offsets), which the Broker opens, checks commits for and
// closes. The record mapping between the protocols is package message.
//
// What the front ends need besides routing and topics they find here too,
// so that they import the core only: the definitions they pass or read
// (Binding, User, Vhost, Permission) and Accounts, the users and
// permissions that authenticate and authorise a client (access.go);
// Limits, RabbitMQ's vhost and user limits, and the Kafka client quotas
// (limits.go, quotas.go); and Connections, the registry of open client
// connections of every protocol that the management API lists and closes
// (connections.go).
//
// When a write or fsync fails, the log refuses writes until it is reopened
// from what is durable; Recovery (recovery.go) finds failed partitions,
// queues and the metadata log and reopens them, with backoff, once the disk
// takes writes again (docs/storage-format.md, "When a write fails").
//
// Lock order, across the core (no lock is taken while a later one in the
// list is held):
//
//	Router.vhostDefs > vhost.defs > Router.mu > Broker.mu > queue locks,
//	Partition.mu > the PartitionLog's own (a storage.Log's) locks
//	a transactional id's lock (txn.go) > Broker.mu
//	Shares.mu > a share group's lock > Broker.mu, Partition.mu (shares.go)
//	a topic's name reservation (Broker.changing) > vhost.defs
//
// The last because the Broker tells the router of a topic's change while
// the name is reserved (superstream.go: topicChanged takes the Kafka
// vhost's defs); so nothing holding a vhost's defs waits for a topic's
// reservation (deleting a topic-backed stream queue lets go of the defs
// before it deletes the topic).
//
// A transactional id's lock is held across its metadata writes and its
// markers' fsync: only that id's producer waits on it.
//
// Router.mu (which every publish takes to route) and Broker.mu (which
// produce and fetch take to find a topic) are never held across a disk
// write or fsync. A definition change checks under them, writes its
// storage and its metadata command without them, then installs the
// result under them: a queue declaration and each topic change reserve
// their name (vhost.declaring, Broker.changing) so that changes of one
// name take turns while others run side by side; the other messaging
// changes of a vhost (exchanges, bindings, queue deletions) take turns
// under vhost.defs, and vhosts under Router.vhostDefs, locks no publish
// takes. Routing to a topic reads Broker.mu under Router.mu.
package broker
