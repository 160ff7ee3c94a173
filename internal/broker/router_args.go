package broker

import (
	"fmt"
	"math"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// Queue types a declare may ask for (x-queue-type). Every type is a log
// underneath; stream queues are read by offset instead of being consumed.
const (
	QueueTypeClassic = "classic"
	QueueTypeQuorum  = "quorum"
	QueueTypeStream  = "stream"
)

// queueArgs are a queue's x-arguments, checked.
type queueArgs struct {
	cfg       queue.Config
	expires   time.Duration // x-expires; < 0: none
	queueType string
	maxPrio   int                // x-max-priority; 0: none
	stream    queue.StreamConfig // retention of a stream queue (stream_args.go)
}

// DefaultQuorumDeliveryLimit is a quorum queue's x-delivery-limit when
// it declares none, as in RabbitMQ 4: a message returned more often is
// dead-lettered (or dropped); -1 asks for no limit.
const DefaultQuorumDeliveryLimit = 20

// IntArg reads an integer-valued argument or header of any AMQP integer type.
func IntArg(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func stringArg(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

// parseQueueArgs checks a declare's arguments as RabbitMQ does: a known
// argument of the wrong type or out of range is PRECONDITION_FAILED.
func parseQueueArgs(args fieldtable.Table, durable, exclusive, autoDelete bool) (queueArgs, error) {
	if t, _ := stringArg(args["x-queue-type"]); t == QueueTypeStream {
		return parseStreamArgs(args, durable, exclusive, autoDelete)
	}
	qa := queueArgs{cfg: queue.NoLimits(), expires: -1, queueType: QueueTypeClassic}
	bad := func(k string, v any, why string) (queueArgs, error) {
		return queueArgs{}, fmt.Errorf("%w: invalid arg '%s' for queue: %v (%s)", ErrPreconditionFailed, k, v, why)
	}
	nonNeg := func(k string, v any) (int64, error) {
		n, ok := IntArg(v)
		if !ok {
			_, err := bad(k, v, "not an integer")
			return 0, err
		}
		if n < 0 {
			_, err := bad(k, v, "negative")
			return 0, err
		}
		return n, nil
	}
	for k, v := range args {
		var err error
		var n int64
		switch k {
		case "x-message-ttl":
			if n, err = nonNeg(k, v); err == nil {
				qa.cfg.MessageTTL = time.Duration(n) * time.Millisecond
			}
		case "x-expires":
			if n, err = nonNeg(k, v); err == nil {
				if n == 0 {
					return bad(k, v, "must be positive")
				}
				qa.expires = time.Duration(n) * time.Millisecond
			}
		case "x-max-length":
			if n, err = nonNeg(k, v); err == nil {
				qa.cfg.MaxLength = n
			}
		case "x-max-length-bytes":
			if n, err = nonNeg(k, v); err == nil {
				qa.cfg.MaxLengthBytes = n
			}
		case "x-delivery-limit":
			if n, ok := IntArg(v); ok && n == -1 {
				qa.cfg.DeliveryLimit = -1 // RabbitMQ 4's way to ask for no limit
			} else if n, err = nonNeg(k, v); err == nil {
				qa.cfg.DeliveryLimit = n
			}
		case "x-quorum-initial-group-size": // used by quorumPlacement
			if n, err = nonNeg(k, v); err == nil && n == 0 {
				return bad(k, v, "must be positive")
			}
		case "x-max-priority":
			if n, err = nonNeg(k, v); err == nil {
				if n > 255 {
					return bad(k, v, "above 255")
				}
				qa.maxPrio = int(n)
			}
		case "x-overflow":
			s, _ := stringArg(v)
			switch s {
			case "drop-head":
				qa.cfg.Overflow = queue.DropHead
			case "reject-publish":
				qa.cfg.Overflow = queue.RejectPublish
			case "reject-publish-dlx":
				qa.cfg.Overflow = queue.RejectPublishDLX
			default:
				return bad(k, v, "expected drop-head, reject-publish or reject-publish-dlx")
			}
		case "x-dead-letter-exchange":
			s, ok := stringArg(v)
			if !ok {
				return bad(k, v, "not a string")
			}
			qa.cfg.DeadLetter, qa.cfg.DeadLetterExchange = true, s
		case "x-dead-letter-routing-key":
			s, ok := stringArg(v)
			if !ok {
				return bad(k, v, "not a string")
			}
			qa.cfg.DeadLetterRoutingKey = &s
		case "x-single-active-consumer":
			b, ok := v.(bool)
			if !ok {
				return bad(k, v, "not a boolean")
			}
			qa.cfg.SingleActiveConsumer = b
		case "x-queue-type":
			s, _ := stringArg(v)
			switch s {
			case QueueTypeClassic, QueueTypeQuorum, QueueTypeStream:
				qa.queueType = s
			default:
				return bad(k, v, "unknown queue type")
			}
		}
		if err != nil {
			return queueArgs{}, err
		}
	}
	if _, set := args["x-delivery-limit"]; !set && qa.queueType == QueueTypeQuorum {
		// RabbitMQ 4 limits a quorum queue's redeliveries by default.
		qa.cfg.DeliveryLimit = DefaultQuorumDeliveryLimit
	}
	if qa.queueType != QueueTypeClassic && (!durable || exclusive) {
		return queueArgs{}, fmt.Errorf("%w: %s queues must be durable and not exclusive", ErrPreconditionFailed, qa.queueType)
	}
	return qa, nil
}

// equivalenceArgs are the arguments RabbitMQ compares on a redeclare.
var equivalenceArgs = []string{
	"x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-overflow",
	"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-priority",
	"x-queue-type", "x-single-active-consumer", "x-delivery-limit",
}

// argsEquivalent compares the arguments a redeclare must repeat exactly.
func argsEquivalent(a, b fieldtable.Table, keys []string) (string, bool) {
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if k == "x-queue-type" {
			// An absent type means classic.
			if !oka {
				va, oka = QueueTypeClassic, true
			}
			if !okb {
				vb, okb = QueueTypeClassic, true
			}
		}
		if oka != okb || (oka && !fieldtable.Equal(va, vb)) {
			return k, false
		}
	}
	return "", true
}
