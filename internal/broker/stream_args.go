package broker

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// maxStreamSegmentBytes is the largest x-stream-max-segment-size-bytes
// RabbitMQ accepts.
const maxStreamSegmentBytes = 3_000_000_000

// streamArgs are the arguments a stream queue takes; streamRefusedArgs
// are the work-queue arguments RabbitMQ refuses on a stream. Other
// arguments are ignored, as RabbitMQ ignores unknown ones.
var streamRefusedArgs = map[string]bool{
	"x-message-ttl": true, "x-expires": true, "x-max-length": true, "x-overflow": true,
	"x-dead-letter-exchange": true, "x-dead-letter-routing-key": true, "x-max-priority": true,
	"x-single-active-consumer": true, "x-delivery-limit": true, "x-queue-mode": true,
	"x-queue-master-locator": true, "x-max-in-memory-length": true, "x-max-in-memory-bytes": true,
	"x-dead-letter-strategy": true, "x-queue-version": true,
}

// streamEquivalenceArgs are compared on a stream's redeclare besides the
// common ones.
var streamEquivalenceArgs = []string{"x-max-age", "x-stream-max-segment-size-bytes"}

// equivalenceKeys are the arguments a redeclare of a queue of type typ
// must repeat exactly.
func equivalenceKeys(typ string) []string {
	if typ == QueueTypeStream {
		return append(equivalenceArgs[:len(equivalenceArgs):len(equivalenceArgs)], streamEquivalenceArgs...)
	}
	return equivalenceArgs
}

// parseStreamArgs checks a stream declare as RabbitMQ does: a stream is
// durable, not exclusive, not auto-delete; it takes x-max-length-bytes,
// x-max-age and x-stream-max-segment-size-bytes (and, ignored on one
// node, x-initial-cluster-size and x-queue-leader-locator); work-queue
// arguments are refused. Every refusal is PRECONDITION_FAILED.
func parseStreamArgs(args fieldtable.Table, durable, exclusive, autoDelete bool) (queueArgs, error) {
	qa := queueArgs{cfg: queue.NoLimits(), expires: -1, queueType: QueueTypeStream,
		stream: queue.StreamConfig{MaxBytes: -1}}
	switch {
	case autoDelete:
		return queueArgs{}, fmt.Errorf("%w: invalid property 'auto-delete' for a stream queue", ErrPreconditionFailed)
	case exclusive:
		return queueArgs{}, fmt.Errorf("%w: invalid property 'exclusive-owner' for a stream queue", ErrPreconditionFailed)
	case !durable:
		return queueArgs{}, fmt.Errorf("%w: invalid property 'non-durable' for a stream queue", ErrPreconditionFailed)
	}
	bad := func(k string, v any, why string) (queueArgs, error) {
		return queueArgs{}, fmt.Errorf("%w: invalid arg '%s' for queue: %v (%s)", ErrPreconditionFailed, k, v, why)
	}
	for k, v := range args {
		if streamRefusedArgs[k] {
			return queueArgs{}, fmt.Errorf("%w: invalid arg '%s' for queue of queue type rabbit_stream_queue", ErrPreconditionFailed, k)
		}
		switch k {
		case "x-max-length-bytes", "x-stream-max-segment-size-bytes", "x-initial-cluster-size":
			n, ok := IntArg(v)
			if !ok {
				return bad(k, v, "not an integer")
			}
			if n < 0 {
				return bad(k, v, "negative")
			}
			switch k {
			case "x-max-length-bytes":
				qa.stream.MaxBytes = n
			case "x-stream-max-segment-size-bytes":
				if n > maxStreamSegmentBytes {
					return queueArgs{}, fmt.Errorf("%w: Exceeded max value for x-stream-max-segment-size-bytes", ErrPreconditionFailed)
				}
				qa.stream.SegmentBytes = n
			}
		case "x-max-age":
			s, ok := v.(string)
			if !ok {
				return bad(k, v, "not a string")
			}
			d, err := ParseMaxAge(s)
			if err != nil {
				return bad(k, v, err.Error())
			}
			qa.stream.MaxAge = d
		case "x-queue-leader-locator":
			if _, ok := stringArg(v); !ok {
				return bad(k, v, "not a string")
			}
		}
	}
	return qa, nil
}

// maxAgeUnits are RabbitMQ's x-max-age units: years of 365 days, months
// of 30 days, days, hours, minutes, seconds.
var maxAgeUnits = map[byte]time.Duration{
	'Y': 365 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'D': 24 * time.Hour,
	'h': time.Hour, 'm': time.Minute, 's': time.Second,
}

// ParseMaxAge reads RabbitMQ's age syntax, used by x-max-age and by
// x-stream-offset intervals: a positive integer followed by one unit of
// Y, M, D, h, m or s ("7D", "12h", "30m"). Ages beyond what a
// time.Duration holds are refused.
func ParseMaxAge(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, errors.New("expected a number and a unit (Y, M, D, h, m, s)")
	}
	unit, ok := maxAgeUnits[s[len(s)-1]]
	if !ok {
		return 0, errors.New("unknown unit; expected Y, M, D, h, m or s")
	}
	digits := s[:len(s)-1]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, errors.New("not a whole number before the unit")
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, errors.New("too large")
	}
	if n <= 0 {
		return 0, errors.New("must be positive")
	}
	return time.Duration(n) * unit, nil
}

// ParseStreamOffset reads a consumer's x-stream-offset argument as
// RabbitMQ does: absent is "next"; "first", "last" and "next"; an
// integer is an offset; an AMQP timestamp starts at that second; a string
// age ("30m", "1h", "7D") starts that long before now. Anything else is
// PRECONDITION_FAILED.
func ParseStreamOffset(v any, present bool, now time.Time) (queue.StreamStart, error) {
	if !present {
		return queue.StreamStart{Kind: queue.StartNext}, nil
	}
	bad := func(why string) (queue.StreamStart, error) {
		return queue.StreamStart{}, fmt.Errorf("%w: invalid arg 'x-stream-offset' for consumer: %v (%s)", ErrPreconditionFailed, v, why)
	}
	if t, ok := v.(time.Time); ok {
		return queue.StreamStart{Kind: queue.StartTimestamp, Time: t}, nil
	}
	if s, ok := stringArg(v); ok {
		switch s {
		case "first":
			return queue.StreamStart{Kind: queue.StartFirst}, nil
		case "last":
			return queue.StreamStart{Kind: queue.StartLast}, nil
		case "next":
			return queue.StreamStart{Kind: queue.StartNext}, nil
		}
		if _, isString := v.(string); !isString {
			return bad("not first, last or next")
		}
		d, err := ParseMaxAge(s)
		if err != nil {
			return bad("not first, last, next or an interval such as 30m: " + err.Error())
		}
		return queue.StreamStart{Kind: queue.StartTimestamp, Time: now.Add(-d)}, nil
	}
	if _, isFloat := v.(float64); isFloat {
		return bad("not an integer")
	}
	if n, ok := IntArg(v); ok {
		if n < 0 {
			return bad("negative offset")
		}
		return queue.StreamStart{Kind: queue.StartOffset, Offset: n}, nil
	}
	return bad("expected first, last, next, an offset, a timestamp or an interval")
}
