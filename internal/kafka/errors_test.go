package kafka

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestErrorCode: core errors reach Kafka clients as the codes Kafka's own
// broker answers, the precise ones where Kafka tells errors of one kind
// apart, and the coordinators answer COORDINATOR_NOT_AVAILABLE while
// their log is down so that clients retry.
func TestErrorCode(t *testing.T) {
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{fmt.Errorf("produce: %w", broker.ErrUnknownTopic), kerr.UnknownTopicOrPartition},
		{broker.ErrTopicExists, kerr.TopicAlreadyExists},
		{broker.ErrInvalidTopic, kerr.InvalidTopicException},
		{broker.ErrInvalidPartitions, kerr.InvalidPartitions},
		{fmt.Errorf("%w: retention.ms=x", broker.ErrInvalidConfig), kerr.InvalidConfig},
		{broker.ErrMessageTooLarge, kerr.MessageTooLarge},
		{broker.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{broker.ErrControlBatch, kerr.InvalidRecord},
		{fmt.Errorf("%w: fsync: EIO", broker.ErrStorage), kerr.KafkaStorageError},
		{broker.ErrClosed, kerr.NotLeaderForPartition},
		{groups.ErrRebalanceInProgress, kerr.RebalanceInProgress},
		{errors.New("something else"), kerr.UnknownServerError},
	}
	for _, c := range cases {
		if got := errorCode(c.err); got != c.want.Code {
			t.Errorf("errorCode(%v) = %v, want %v", c.err, kerr.ErrorForCode(got), c.want)
		}
	}
	if errorCode(nil) != 0 {
		t.Error("errorCode(nil) is not 0")
	}
	if got := coordinatorErrorCode(fmt.Errorf("%w: fsync", broker.ErrStorage)); got != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("a coordinator's storage failure: %v", kerr.ErrorForCode(got))
	}
}
