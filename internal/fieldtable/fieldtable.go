package fieldtable

import "errors"

// Table is an AMQP field table: a map from short-string keys to values of
// the types listed in the package documentation.
type Table map[string]any

// Decimal is an AMQP decimal value ('D'): Value × 10^-Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// MaxDepth is the deepest nesting of tables and arrays that is encoded or
// decoded. A top-level table is depth 1.
const MaxDepth = 32

// MaxKeyLen is the longest table key: keys are AMQP short strings.
const MaxKeyLen = 255

var (
	// ErrMalformed is wrapped by every decoding error.
	ErrMalformed = errors.New("fieldtable: malformed field table")
	// ErrUnsupportedType is wrapped when encoding a Go value that has no
	// field-table representation.
	ErrUnsupportedType = errors.New("fieldtable: unsupported value type")
	// ErrKeyTooLong is wrapped when encoding a key longer than MaxKeyLen.
	ErrKeyTooLong = errors.New("fieldtable: key longer than 255 bytes")
	// ErrTooDeep is wrapped when encoding nests deeper than MaxDepth. On
	// decoding the same condition wraps ErrMalformed instead.
	ErrTooDeep = errors.New("fieldtable: nested deeper than MaxDepth")
	// ErrTooLarge is wrapped when a string, byte array, table or array is
	// longer than its 32-bit length prefix can express.
	ErrTooLarge = errors.New("fieldtable: value longer than 4 GiB")
)
