package amqp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
)

// amqpError is a channel or connection exception: a reply code from the
// specification (its hardness decides which of the two closes), the text
// sent with it, and the method that caused it.
type amqpError struct {
	code              uint16
	text              string
	classID, methodID uint16
}

func (e *amqpError) Error() string { return fmt.Sprintf("%d %s", e.code, e.text) }

func (e *amqpError) hard() bool { return wire.IsHardError(e.code) }

// replyNames are the names RabbitMQ puts in front of a reply text.
var replyNames = map[uint16]string{
	wire.ContentTooLarge: "CONTENT_TOO_LARGE", wire.NoRoute: "NO_ROUTE", wire.NoConsumers: "NO_CONSUMERS",
	wire.AccessRefused: "ACCESS_REFUSED", wire.NotFound: "NOT_FOUND", wire.ResourceLocked: "RESOURCE_LOCKED",
	wire.PreconditionFailed: "PRECONDITION_FAILED", wire.ConnectionForced: "CONNECTION_FORCED",
	wire.InvalidPath: "INVALID_PATH", wire.FrameError: "FRAME_ERROR", wire.SyntaxError: "SYNTAX_ERROR",
	wire.CommandInvalid: "COMMAND_INVALID", wire.ChannelError: "CHANNEL_ERROR", wire.UnexpectedFrame: "UNEXPECTED_FRAME",
	wire.ResourceError: "RESOURCE_ERROR", wire.NotAllowed: "NOT_ALLOWED", wire.NotImplemented: "NOT_IMPLEMENTED",
	wire.InternalError: "INTERNAL_ERROR",
}

// errorf builds an exception whose text reads as RabbitMQ's do:
// "NOT_FOUND - no queue 'q' in vhost '/'".
func errorf(code uint16, format string, args ...any) *amqpError {
	return &amqpError{code: code, text: replyNames[code] + " - " + fmt.Sprintf(format, args...)}
}

// replyCodes maps the core's error kinds to reply codes. A kind not
// listed (a storage failure, anything unexpected) is a 541 INTERNAL_ERROR,
// which closes the connection.
var replyCodes = map[broker.Kind]uint16{
	broker.KindNotFound:       wire.NotFound,
	broker.KindExists:         wire.PreconditionFailed,
	broker.KindInvalid:        wire.PreconditionFailed, // RabbitMQ: "invalid arg ..." is 406
	broker.KindConflict:       wire.PreconditionFailed,
	broker.KindAccessRefused:  wire.AccessRefused,
	broker.KindLocked:         wire.ResourceLocked,
	broker.KindNotAllowed:     wire.NotAllowed,
	broker.KindInvalidCommand: wire.CommandInvalid,
	broker.KindNotImplemented: wire.NotImplemented,
}

// fromBroker turns a core error into the exception it means, its text
// the core's details after RabbitMQ's name for the code.
func fromBroker(err error) *amqpError {
	var ae *amqpError
	if errors.As(err, &ae) {
		return ae
	}
	code, ok := replyCodes[broker.KindOf(err)]
	if !ok {
		return errorf(wire.InternalError, "%v", err)
	}
	text := err.Error()
	var ce *broker.Error
	if errors.As(err, &ce) {
		text = strings.TrimPrefix(text, ce.Error()+": ")
	}
	return errorf(code, "%s", text)
}
