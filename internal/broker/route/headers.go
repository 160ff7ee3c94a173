package route

import (
	"fmt"
	"strings"
)

// NewHeaders returns a matcher for a headers exchange. The routing key is
// ignored; each binding's arguments are compared with the message headers
// according to the binding's "x-match" argument:
//
//   - "all" (also the default, and what any unrecognised value means, as
//     in RabbitMQ; see ValidateHeadersArgs to refuse such bindings): every
//     compared argument must be present in the headers with an equal value.
//     A binding with nothing to compare matches every message.
//   - "any": at least one compared argument must be present with an equal
//     value. A binding with nothing to compare matches no message.
//   - "all-with-x", "any-with-x": as "all" and "any", but arguments whose
//     names start with "x-" are compared too.
//
// "x-match" itself is never compared, and without the -with-x variants
// neither is any other argument starting with "x-". An argument whose
// value is nil (AMQP void) only requires the header to be present, with
// any value. Values are equal when they are the same number, whatever the
// Go types (int8(1), uint64(1) and float64(1) are equal, as Erlang's ==
// has it); the same bytes (a string equals a []byte); the same instant
// (time.Time); or tables and arrays of equal elements, named map and
// slice types such as a field-table type included.
//
// Matching costs time linear in the number of bindings, as in RabbitMQ.
func NewHeaders[D comparable]() Matcher[D] {
	return &headersMatcher[D]{byDest: make(map[D][]*headersBinding)}
}

type headersMatcher[D comparable] struct {
	// byDest groups bindings by destination so that a destination is
	// visited once without a per-message set: stop at its first match.
	byDest map[D][]*headersBinding
	n      int
}

type headersBinding struct {
	fp       string
	matchAny bool
	args     []headerArg // only the compared ones
}

type headerArg struct {
	name     string
	value    any  // normalized; unused when presence is set
	presence bool // the binding value was void: presence is enough
}

// xMatch is the binding's match mode.
type xMatch struct {
	matchAny, withX bool
}

// parseXMatch reads the "x-match" argument. ok is false for a present
// value that is not one of the four modes.
func parseXMatch(args map[string]any) (mode xMatch, ok bool) {
	v, present := args["x-match"]
	if !present {
		return xMatch{}, true
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return xMatch{}, false
	}
	switch s {
	case "all":
		return xMatch{}, true
	case "any":
		return xMatch{matchAny: true}, true
	case "all-with-x":
		return xMatch{withX: true}, true
	case "any-with-x":
		return xMatch{matchAny: true, withX: true}, true
	}
	return xMatch{}, false
}

// ValidateHeadersArgs reports whether the arguments of a headers-exchange
// binding are acceptable, as RabbitMQ checks them at queue.bind: "x-match",
// if present, must be a string naming one of the four modes. Add accepts
// anything (treating an unknown mode as "all"), so the broker should call
// this first and refuse the binding with the error.
func ValidateHeadersArgs(args map[string]any) error {
	if _, ok := parseXMatch(args); !ok {
		return fmt.Errorf("invalid x-match field value %v; expected all, any, all-with-x, or any-with-x", args["x-match"])
	}
	return nil
}

func newHeadersBinding(key string, args map[string]any) *headersBinding {
	mode, _ := parseXMatch(args)
	b := &headersBinding{fp: keyFingerprint(key, args), matchAny: mode.matchAny}
	for name, v := range args {
		if name == "x-match" || (!mode.withX && strings.HasPrefix(name, "x-")) {
			continue
		}
		b.args = append(b.args, headerArg{name: name, value: normalize(v), presence: v == nil})
	}
	return b
}

func (b *headersBinding) matches(headers map[string]any) bool {
	if b.matchAny {
		for _, a := range b.args {
			if v, ok := headers[a.name]; ok && (a.presence || equalValues(a.value, v)) {
				return true
			}
		}
		return false
	}
	for _, a := range b.args {
		v, ok := headers[a.name]
		if !ok || (!a.presence && !equalValues(a.value, v)) {
			return false
		}
	}
	return true
}

func (m *headersMatcher[D]) Add(key string, args map[string]any, d D) {
	fp := keyFingerprint(key, args)
	bs := m.byDest[d]
	for _, b := range bs {
		if b.fp == fp {
			return
		}
	}
	m.byDest[d] = append(bs, newHeadersBinding(key, args))
	m.n++
}

func (m *headersMatcher[D]) Remove(key string, args map[string]any, d D) bool {
	fp := keyFingerprint(key, args)
	bs := m.byDest[d]
	for i, b := range bs {
		if b.fp != fp {
			continue
		}
		if len(bs) == 1 {
			delete(m.byDest, d)
		} else {
			m.byDest[d] = append(bs[:i:i], bs[i+1:]...)
		}
		m.n--
		return true
	}
	return false
}

func (m *headersMatcher[D]) Match(_ string, headers map[string]any, visit func(D)) {
	for d, bs := range m.byDest {
		for _, b := range bs {
			if b.matches(headers) {
				visit(d)
				break
			}
		}
	}
}

func (m *headersMatcher[D]) Len() int { return m.n }
