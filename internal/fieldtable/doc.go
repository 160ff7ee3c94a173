// Package fieldtable is the AMQP 0-9-1 field-table value model and its binary
// codec. It is a neutral data format: the broker core stores message headers
// and declaration arguments as a Table, and the AMQP wire package encodes
// tables inside frames. Nothing here knows about connections or frames.
//
// # Value model
//
// After decoding, every value has one of these Go types, chosen by the type
// letter on the wire (RabbitMQ's errata of the 0-9-1 letters, which is what
// every real client speaks):
//
//	't' bool        'b' int8     'B' uint8    's' int16   'u' uint16
//	'I' int32       'i' uint32   'l' int64    'f' float32 'd' float64
//	'D' Decimal     'S' string   'x' []byte   'A' []any   'T' time.Time
//	'F' Table       'V' nil
//
// A decoded time.Time is in UTC with whole seconds; a decoded string or
// []byte never aliases the input buffer, so callers may reuse that buffer.
//
// Encoding accepts those types and, for convenience, also int and uint
// ('I' when the value fits in int32, otherwise 'l'), uint64 ('l', at most
// math.MaxInt64) and map[string]any (as 'F'). Any other Go type, a key longer
// than 255 bytes or nesting deeper than MaxDepth is an error; Validate reports
// the same errors without encoding. Keys are written in sorted order, so the
// encoding of a table is deterministic.
//
// # Decoding contract
//
// Read, ReadArray and ReadValue never panic and never trust a length prefix
// beyond the bytes actually present; memory allocated is proportional to the
// input size. Every decoding failure wraps ErrMalformed (the AMQP layer
// answers it with 502 SYNTAX_ERROR). A table holding the same key twice keeps
// the last value. Anything that decodes successfully encodes again.
//
// # Equality
//
// Equal compares values the way the headers exchange and the
// argument-equivalence checks need: integers of different Go types compare
// by numeric value, floats by value (a NaN equals a NaN, so a decoded table
// always equals itself), tables and arrays recursively, []byte by content,
// times by the instant. Values of different kinds (an integer and a float, a
// string and a []byte) are never equal.
package fieldtable
