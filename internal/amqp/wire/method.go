package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped by errors for input that breaks the format: a
	// truncated or over-long field, a bad table, trailing bytes. A method
	// that fails so is answered with 502 SYNTAX_ERROR.
	ErrMalformed = errors.New("wire: malformed")
	// ErrUnknownMethod is wrapped when a method frame names a class and
	// method this package does not know; it is answered with 540
	// NOT_IMPLEMENTED.
	ErrUnknownMethod = errors.New("wire: unknown method")
)

// Method is one AMQP method with its arguments. Every generated method
// struct implements it through a pointer receiver.
type Method interface {
	ClassID() uint16
	MethodID() uint16
	// Name is the specification's name, such as "basic.publish".
	Name() string
	// HasContent reports whether a content header and body follow the
	// method (basic.publish, basic.return, basic.deliver, basic.get-ok).
	HasContent() bool
	// Synchronous reports whether the method expects a reply method.
	Synchronous() bool
	// Append appends the encoded arguments, without class and method ids.
	Append(dst []byte) []byte
	// Decode reads the arguments from r, leaving any error in r.
	Decode(r *Reader)
}

// MethodError is the error DecodeMethod returns. ClassID and MethodID are
// those the payload announced (zero when it was too short to hold them), as
// connection.close and channel.close report them back to the peer.
type MethodError struct {
	ClassID, MethodID uint16
	Err               error // wraps ErrMalformed or ErrUnknownMethod
}

func (e *MethodError) Error() string {
	return fmt.Sprintf("method %d.%d: %v", e.ClassID, e.MethodID, e.Err)
}

func (e *MethodError) Unwrap() error { return e.Err }

// ReplyCode is the reply code to close with: NotImplemented for an unknown
// method, SyntaxError otherwise.
func (e *MethodError) ReplyCode() uint16 {
	if errors.Is(e.Err, ErrUnknownMethod) {
		return NotImplemented
	}
	return SyntaxError
}

// AppendMethod appends a method frame payload: class id, method id and the
// arguments.
func AppendMethod(dst []byte, m Method) []byte {
	dst = binary.BigEndian.AppendUint16(dst, m.ClassID())
	dst = binary.BigEndian.AppendUint16(dst, m.MethodID())
	return m.Append(dst)
}

// NewMethod returns a zero method struct for the class and method ids, or
// nil when they name no known method.
func NewMethod(classID, methodID uint16) Method {
	if f := methodRegistry[uint32(classID)<<16|uint32(methodID)]; f != nil {
		return f()
	}
	return nil
}

// DecodeMethod decodes a method frame payload. Trailing bytes after the
// last argument are rejected: a peer that sends more than the method holds
// is speaking a different protocol. Errors are *MethodError.
func DecodeMethod(payload []byte) (Method, error) {
	return new(MethodDecoder).Decode(payload)
}

// MethodDecoder is DecodeMethod with a Reader kept from one call to the
// next, so that a connection decoding method after method does not
// allocate one each time. It is not safe for concurrent use.
type MethodDecoder struct{ r Reader }

// Decode is DecodeMethod.
func (d *MethodDecoder) Decode(payload []byte) (Method, error) {
	if len(payload) < 4 {
		return nil, &MethodError{Err: fmt.Errorf("%w: method payload of %d bytes", ErrMalformed, len(payload))}
	}
	classID := binary.BigEndian.Uint16(payload)
	methodID := binary.BigEndian.Uint16(payload[2:])
	m := NewMethod(classID, methodID)
	if m == nil {
		return nil, &MethodError{ClassID: classID, MethodID: methodID, Err: ErrUnknownMethod}
	}
	d.r = Reader{b: payload[4:]}
	r := &d.r
	m.Decode(r)
	if err := r.Complete(); err != nil {
		return nil, &MethodError{ClassID: classID, MethodID: methodID, Err: fmt.Errorf("%s: %w", m.Name(), err)}
	}
	return m, nil
}
