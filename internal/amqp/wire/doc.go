// Package wire is the AMQP 0-9-1 wire format: frames, the protocol header,
// method codecs and content headers. It does no I/O beyond reading frames
// from an io.Reader and knows nothing of connections, channels or the broker.
//
// # Generated code
//
// methods_gen.go is generated from RabbitMQ's JSON specification
// (../shared/spec/amqp-rabbitmq-0.9.1.json relative to the repository root)
// by ./gen, and checked in. Regenerate it with go generate; a test fails when
// the checked-in file differs from what the generator produces. It holds one
// struct per method, named class then method in CamelCase (basic.publish is
// BasicPublish, connection.start-ok is ConnectionStartOk), with one field per
// argument (routing-key is RoutingKey, no-ack is NoAck, nowait is NoWait).
// Argument fields keep "Id" (ConnectionClose.ClassId, MethodId) because
// ClassID and MethodID are already methods of every method struct; the
// content Properties use Go initialisms (MessageID, UserID). It also holds
// the frame and reply-code constants, IsHardError and the class ids.
// Arguments map to Go types by their base type: octet uint8, short uint16,
// long uint32, longlong uint64, bit bool, shortstr and longstr string
// (binary-safe), timestamp time.Time (whole seconds, UTC), table
// fieldtable.Table. Consecutive bit arguments share one octet, the first bit
// in the lowest position.
//
// # Encoding
//
// Encoders append to a caller-owned []byte and never fail, so a frame is
// built without intermediate buffers. Their inputs must therefore be
// encodable: a short string longer than 255 bytes is truncated to 255
// (callers validate names; only free text such as reply-text is long), and a
// table holding a value fieldtable cannot encode makes the encoder panic, as
// it is a programming error — tables decoded from the wire always encode, and
// tables built elsewhere can be checked with fieldtable.Validate first.
//
// # Decoding
//
// Decoders read a length-checked []byte through a Reader whose error is
// sticky and checked once, never trust a length prefix beyond the bytes
// present, and never panic. DecodeMethod and DecodeContentHeader reject
// trailing bytes. Their errors are *MethodError values wrapping
// ErrUnknownMethod (answer 540 NOT_IMPLEMENTED) or ErrMalformed (answer 502
// SYNTAX_ERROR); MethodError.ReplyCode gives the code. Decoded strings,
// byte arrays and tables never alias the payload, so frame buffers can be
// reused at once.
//
// # Frames
//
// FrameReader reads frames, checking the announced size against the
// negotiated frame-max before reading or allocating anything. The returned
// payload aliases the reader's buffer and is valid only until the next call.
// A peer that opens with anything but ProtocolHeader is answered with
// ProtocolHeader and disconnected (ReadProtocolHeader reports
// ErrBadProtocolHeader).
package wire

//go:generate go run ./gen -spec ../../../../shared/spec/amqp-rabbitmq-0.9.1.json -o methods_gen.go
