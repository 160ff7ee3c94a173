package route

// Exchange types understood by New, spelled as in exchange.declare.
const (
	TypeDirect  = "direct"
	TypeFanout  = "fanout"
	TypeTopic   = "topic"
	TypeHeaders = "headers"
)

// Matcher holds the bindings of one exchange.
type Matcher[D comparable] interface {
	// Add binds d with the binding key and arguments. Adding a binding
	// that already exists (same key, equal arguments, same d) does
	// nothing. The matcher keeps its own copy of args.
	Add(key string, args map[string]any, d D)
	// Remove unbinds the binding that Add created with the same key,
	// equal arguments and d, and reports whether there was one.
	Remove(key string, args map[string]any, d D) bool
	// Match calls visit once for each destination that a message with
	// this routing key and these headers goes to, even if several of the
	// destination's bindings match. visit must not call Add or Remove.
	Match(routingKey string, headers map[string]any, visit func(D))
	// Len is the number of bindings.
	Len() int
}

// New returns an empty matcher for the exchange type, or false if the type
// is not one of TypeDirect, TypeFanout, TypeTopic or TypeHeaders.
func New[D comparable](exchangeType string) (Matcher[D], bool) {
	switch exchangeType {
	case TypeDirect:
		return NewDirect[D](), true
	case TypeFanout:
		return NewFanout[D](), true
	case TypeTopic:
		return NewTopic[D](), true
	case TypeHeaders:
		return NewHeaders[D](), true
	}
	return nil, false
}

// destSet holds the bindings that end at one place (a routing key, a trie
// node, a fanout exchange): for each destination, the fingerprints of the
// argument tables it was bound with there. Usually there is one, so a
// slice beats a map.
type destSet[D comparable] map[D][]string

// add reports whether the binding is new.
func (s destSet[D]) add(d D, fp string) bool {
	fps := s[d]
	for _, f := range fps {
		if f == fp {
			return false
		}
	}
	s[d] = append(fps, fp)
	return true
}

// remove reports whether the binding existed.
func (s destSet[D]) remove(d D, fp string) bool {
	fps := s[d]
	for i, f := range fps {
		if f == fp {
			if len(fps) == 1 {
				delete(s, d)
			} else {
				s[d] = append(fps[:i:i], fps[i+1:]...)
			}
			return true
		}
	}
	return false
}
