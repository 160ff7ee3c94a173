package meta

import "errors"

// Errors returned by Store methods and [State.Apply]. Test with errors.Is:
// some are wrapped with detail.
var (
	// ErrTopicExists: CreateTopic named a topic that exists.
	ErrTopicExists = errors.New("meta: topic already exists")
	// ErrUnknownTopic: the named topic does not exist.
	ErrUnknownTopic = errors.New("meta: unknown topic")
	// ErrUnknownPartition: an offset commit named a partition the topic
	// does not have.
	ErrUnknownPartition = errors.New("meta: unknown partition")
	// ErrInvalidPartitions: a partition count that is not positive, or a
	// CreatePartitions total that does not grow the topic.
	ErrInvalidPartitions = errors.New("meta: invalid partition count")
	// ErrInvalidTopicName: an empty topic name. (Kafka's naming rules are the
	// broker's to enforce; meta only refuses what it cannot store.)
	ErrInvalidTopicName = errors.New("meta: invalid topic name")
	// ErrUnknownVhost: the named vhost does not exist.
	ErrUnknownVhost = errors.New("meta: unknown vhost")
	// ErrUnknownUser: the named user does not exist.
	ErrUnknownUser = errors.New("meta: unknown user")
	// ErrExchangeExists: DeclareExchange named an exchange that exists. The
	// broker checks a re-declaration for equivalence before proposing.
	ErrExchangeExists = errors.New("meta: exchange already exists")
	// ErrUnknownExchange: the named exchange does not exist.
	ErrUnknownExchange = errors.New("meta: unknown exchange")
	// ErrQueueExists: DeclareQueue named a queue that exists, or gave an id
	// another queue has.
	ErrQueueExists = errors.New("meta: queue already exists")
	// ErrUnknownQueue: the named queue does not exist.
	ErrUnknownQueue = errors.New("meta: unknown queue")
	// ErrUnknownPolicy: the named policy (or operator policy) does not
	// exist.
	ErrUnknownPolicy = errors.New("meta: unknown policy")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("meta: store closed")
	// ErrStoreFailed wraps the write or fsync error that failed the store.
	// It lasts until Store.Recover succeeds (or the store is reopened).
	ErrStoreFailed = errors.New("meta: metadata log failed")
	// ErrCommandTooLarge: the encoded command exceeds MaxRecordSize.
	ErrCommandTooLarge = errors.New("meta: command too large")
	// ErrInvalidCommand: a command that is malformed (unknown type, missing
	// payload, zero id, an empty vhost, user or queue name, a queue id that
	// is not lowercase hex, an unknown binding destination kind, a string
	// in an AMQP definition that is not valid UTF-8). Replay refuses to start on one, since it means the
	// log was written by a newer or broken version rather than torn.
	ErrInvalidCommand = errors.New("meta: invalid command")
	// ErrStaleProducer: a transaction change names a producer id or epoch
	// that is no longer the transactional id's (it was fenced).
	ErrStaleProducer = errors.New("meta: stale transactional producer")
)
