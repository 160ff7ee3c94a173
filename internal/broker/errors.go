package broker

import "errors"

// Errors the front ends map to protocol error codes.
var (
	ErrUnknownTopic         = errors.New("broker: unknown topic")
	ErrUnknownPartition     = errors.New("broker: unknown partition")
	ErrTopicExists          = errors.New("broker: topic already exists")
	ErrInvalidTopic         = errors.New("broker: invalid topic name")
	ErrInvalidPartitions    = errors.New("broker: invalid partition count")
	ErrInvalidConfig        = errors.New("broker: invalid config")
	ErrMessageTooLarge      = errors.New("broker: record batch larger than max.message.bytes")
	ErrCorruptMessage       = errors.New("broker: corrupt record batch")
	ErrOutOfOrderSequence   = errors.New("broker: out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("broker: producer epoch is stale")
	ErrOffsetOutOfRange     = errors.New("broker: offset out of range")
	ErrStorage              = errors.New("broker: storage error")
	ErrClosed               = errors.New("broker: closed")
)
