package kafka

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps a core error to its Kafka error code (0 for nil): the
// specific errors Kafka tells apart within a kind first (errorCodes), then
// the kind (kindCodes); anything else is UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var re *requestError // a handler's own answer, such as an authorization refusal
	if errors.As(err, &re) {
		return re.code.Code
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	if c, ok := kindCodes[broker.KindOf(err)]; ok {
		return c.Code
	}
	return kerr.UnknownServerError.Code
}

// kindCodes gives each kind of core error its Kafka code.
var kindCodes = map[broker.Kind]*kerr.Error{
	broker.KindNotFound:    kerr.UnknownTopicOrPartition,
	broker.KindExists:      kerr.TopicAlreadyExists,
	broker.KindInvalid:     kerr.InvalidRequest,
	broker.KindTooLarge:    kerr.MessageTooLarge,
	broker.KindCorrupt:     kerr.CorruptMessage,
	broker.KindOutOfRange:  kerr.OffsetOutOfRange,
	broker.KindOutOfOrder:  kerr.OutOfOrderSequenceNumber,
	broker.KindFenced:      kerr.InvalidProducerEpoch,
	broker.KindStorage:     kerr.KafkaStorageError,
	broker.KindUnavailable: kerr.NotLeaderForPartition,
}

// errorCodes are the errors Kafka answers more precisely than their kind:
// the core's own, and the group coordinator's (package groups, which
// imports nothing of the core and so has no kinds).
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{broker.ErrControlBatch, kerr.InvalidRecord},
	{broker.ErrTransactionalWithoutID, kerr.InvalidRecord},
	{broker.ErrProducerFenced, kerr.ProducerFenced},
	{broker.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{broker.ErrInvalidTxnState, kerr.InvalidTxnState},
	{broker.ErrConcurrentTransactions, kerr.ConcurrentTransactions},
	{broker.ErrInvalidTopic, kerr.InvalidTopicException},
	{broker.ErrInternalTopic, kerr.InvalidTopicException}, // Kafka: "Cannot append to internal topic"
	{broker.ErrInvalidPartitions, kerr.InvalidPartitions},
	{broker.ErrInvalidConfig, kerr.InvalidConfig},
	{broker.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{broker.ErrMetaUnavailable, kerr.NotController}, // retriable: the admin client looks the controller up again
	{broker.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{broker.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{broker.ErrReplicationTimeout, kerr.RequestTimedOut},
	{broker.ErrNoReassignmentInProgress, kerr.NoReassignmentInProgress},
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
	{groups.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{groups.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{groups.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{groups.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{groups.ErrInvalidRegex, kerr.InvalidRegularExpression},
	{groups.ErrInvalidRequest, kerr.InvalidRequest},
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
// instead of failing; likewise while a cluster's metadata group has no
// leader (broker.ErrMetaUnavailable).
// txnErrorCode is coordinatorErrorCode for the transaction APIs, where a
// partition's failed marker write is the coordinator's failure too.
func txnErrorCode(err error) int16 {
	if err != nil && storageFailure(err) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return coordinatorErrorCode(err)
}

func coordinatorErrorCode(err error) int16 {
	if errors.Is(err, broker.ErrStorage) || errors.Is(err, broker.ErrClosed) || errors.Is(err, broker.ErrMetaUnavailable) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return errorCode(err)
}
