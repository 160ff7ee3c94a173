package groups

import "errors"

// Errors the Kafka front end maps to error codes. Each names its Kafka code.
// A context error (context.Canceled, context.DeadlineExceeded) returned in a
// JoinResult or SyncResult means the caller gave up; there is no response to
// send.
var (
	ErrUnknownMemberID         = errors.New("groups: unknown member id")                    // UNKNOWN_MEMBER_ID
	ErrIllegalGeneration       = errors.New("groups: illegal generation")                   // ILLEGAL_GENERATION
	ErrRebalanceInProgress     = errors.New("groups: rebalance in progress")                // REBALANCE_IN_PROGRESS
	ErrMemberIDRequired        = errors.New("groups: member id required")                   // MEMBER_ID_REQUIRED
	ErrFencedInstanceID        = errors.New("groups: instance id fenced by a newer member") // FENCED_INSTANCE_ID
	ErrInconsistentProtocol    = errors.New("groups: inconsistent group protocol")          // INCONSISTENT_GROUP_PROTOCOL
	ErrNonEmptyGroup           = errors.New("groups: group is not empty")                   // NON_EMPTY_GROUP
	ErrGroupNotFound           = errors.New("groups: group not found")                      // GROUP_ID_NOT_FOUND
	ErrInvalidSessionTimeout   = errors.New("groups: session timeout out of range")         // INVALID_SESSION_TIMEOUT
	ErrInvalidGroupID          = errors.New("groups: invalid group id")                     // INVALID_GROUP_ID
	ErrCoordinatorNotAvailable = errors.New("groups: coordinator not available (closed)")   // COORDINATOR_NOT_AVAILABLE
)
