package kafka

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps a core error to its Kafka error code (0 for nil).
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{errTransactionsUnsupported, kerr.InvalidRecord},
	{broker.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{broker.ErrUnknownPartition, kerr.UnknownTopicOrPartition},
	{broker.ErrTopicExists, kerr.TopicAlreadyExists},
	{broker.ErrInvalidTopic, kerr.InvalidTopicException},
	{broker.ErrInvalidPartitions, kerr.InvalidPartitions},
	{broker.ErrInvalidConfig, kerr.InvalidConfig},
	{broker.ErrMessageTooLarge, kerr.MessageTooLarge},
	{broker.ErrCorruptMessage, kerr.CorruptMessage},
	{broker.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{broker.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{broker.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{broker.ErrClosed, kerr.NotLeaderForPartition},
	{broker.ErrStorage, kerr.KafkaStorageError},
	{storage.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{storage.ErrBatchTooLarge, kerr.MessageTooLarge},
	{storage.ErrCorruptBatch, kerr.CorruptMessage},
	{storage.ErrClosed, kerr.NotLeaderForPartition},
	{groups.ErrUnknownMemberID, kerr.UnknownMemberID},
	{groups.ErrIllegalGeneration, kerr.IllegalGeneration},
	{groups.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{groups.ErrMemberIDRequired, kerr.MemberIDRequired},
	{groups.ErrFencedInstanceID, kerr.FencedInstanceID},
	{groups.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol},
	{groups.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{groups.ErrGroupNotFound, kerr.GroupIDNotFound},
	{groups.ErrInvalidGroupID, kerr.InvalidGroupID},
	{groups.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{groups.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
}

// storageFailure reports whether err is a disk-level failure (as opposed
// to a request problem): such errors become KAFKA_STORAGE_ERROR.
func storageFailure(err error) bool {
	return err != nil && errorCode(err) == kerr.UnknownServerError.Code
}

// writeErrorCode is errorCode for paths that write (produce, delete
// records), where an unexpected error is a failed write or fsync.
func writeErrorCode(err error) int16 {
	if storageFailure(err) {
		return kerr.KafkaStorageError.Code
	}
	return errorCode(err)
}

// coordinatorErrorCode is errorCode for the coordinators' answers (offset
// commits and deletes, producer ids, group deletion): while their log
// cannot be written (broker.ErrStorage) they answer
// COORDINATOR_NOT_AVAILABLE, as Kafka's coordinators do while their log is
// unavailable, so that clients look the coordinator up again and retry
// instead of failing.
func coordinatorErrorCode(err error) int16 {
	if errors.Is(err, broker.ErrStorage) || errors.Is(err, broker.ErrClosed) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return errorCode(err)
}

var errTransactionsUnsupported = errors.New("kafka: transactional produce is not supported")
