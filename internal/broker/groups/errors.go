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

	// The consumer group protocol's (KIP-848).
	ErrFencedMemberEpoch    = errors.New("groups: member epoch fenced")                      // FENCED_MEMBER_EPOCH
	ErrStaleMemberEpoch     = errors.New("groups: stale member epoch")                       // STALE_MEMBER_EPOCH
	ErrUnsupportedAssignor  = errors.New("groups: unsupported server assignor")              // UNSUPPORTED_ASSIGNOR
	ErrUnreleasedInstanceID = errors.New("groups: instance id still held by another member") // UNRELEASED_INSTANCE_ID
	ErrInvalidRegex         = errors.New("groups: invalid subscription regex")               // INVALID_REGULAR_EXPRESSION
	ErrInvalidRequest       = errors.New("groups: invalid consumer group heartbeat")         // INVALID_REQUEST
)
