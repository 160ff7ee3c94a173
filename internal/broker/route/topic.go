package route

import (
	"slices"
	"strings"
)

// NewTopic returns a matcher for a topic exchange. Binding keys are
// patterns of '.'-separated words where "*" stands for exactly one word and
// "#" for zero or more; any other word, including an empty one and words
// such as "a*" or "##", must equal the routing key's word. Splitting
// follows RabbitMQ: "" has zero words, "a." has two ("a" and "").
func NewTopic[D comparable]() Matcher[D] {
	return &topic[D]{root: &topicNode[D]{}}
}

type topic[D comparable] struct {
	root *topicNode[D]
	n    int
}

// topicNode is one pattern prefix. Wildcard edges are kept apart from
// literal words so that a literal "*" in a routing key cannot be mistaken
// for one.
type topicNode[D comparable] struct {
	words  map[string]*topicNode[D]
	star   *topicNode[D]
	hash   *topicNode[D]
	isHash bool       // reached through a "#" edge: may absorb further words
	dests  destSet[D] // bindings whose pattern ends here
}

func (n *topicNode[D]) child(word string) *topicNode[D] {
	switch word {
	case "*":
		return n.star
	case "#":
		return n.hash
	}
	return n.words[word]
}

func (n *topicNode[D]) addChild(word string) *topicNode[D] {
	c := &topicNode[D]{isHash: word == "#"}
	switch word {
	case "*":
		n.star = c
	case "#":
		n.hash = c
	default:
		if n.words == nil {
			n.words = make(map[string]*topicNode[D])
		}
		n.words[word] = c
	}
	return c
}

func (n *topicNode[D]) removeChild(word string) {
	switch word {
	case "*":
		n.star = nil
	case "#":
		n.hash = nil
	default:
		delete(n.words, word)
		if len(n.words) == 0 {
			n.words = nil
		}
	}
}

// unused reports whether the node leads to no binding and can be pruned.
func (n *topicNode[D]) unused() bool {
	return len(n.dests) == 0 && len(n.words) == 0 && n.star == nil && n.hash == nil
}

// splitTopic splits a routing or binding key into words as RabbitMQ does.
func splitTopic(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}

func (m *topic[D]) Add(key string, args map[string]any, d D) {
	n := m.root
	for _, w := range splitTopic(key) {
		c := n.child(w)
		if c == nil {
			c = n.addChild(w)
		}
		n = c
	}
	if n.dests == nil {
		n.dests = make(destSet[D], 1)
	}
	if n.dests.add(d, fingerprint(args)) {
		m.n++
	}
}

func (m *topic[D]) Remove(key string, args map[string]any, d D) bool {
	words := splitTopic(key)
	path := make([]*topicNode[D], 0, len(words)+1) // path[i] is reached by words[:i]
	n := m.root
	path = append(path, n)
	for _, w := range words {
		if n = n.child(w); n == nil {
			return false
		}
		path = append(path, n)
	}
	if !n.dests.remove(d, fingerprint(args)) {
		return false
	}
	if len(n.dests) == 0 {
		n.dests = nil
	}
	m.n--
	// Prune from the leaf up; the root stays.
	for i := len(words); i > 0 && path[i].unused(); i-- {
		path[i-1].removeChild(words[i-1])
	}
	return true
}

// smallStates is how many live trie nodes Match tracks with a linear
// search before it switches to a map; the common case needs a handful.
const smallStates = 32

// states is a set of trie nodes, the positions of a simulated NFA. Its
// methods take and return it by value so that the list can stay in a
// caller's stack buffer.
type states[D comparable] struct {
	list []*topicNode[D]
	seen map[*topicNode[D]]struct{} // nil until list outgrows smallStates
}

func (s states[D]) reset() states[D] {
	s.list = s.list[:0]
	if s.seen != nil {
		clear(s.seen)
	}
	return s
}

// addClosure adds n and the nodes reachable from it by matching "#"
// against zero words.
func (s states[D]) addClosure(n *topicNode[D]) states[D] {
	for ; n != nil; n = n.hash {
		s = s.add(n)
	}
	return s
}

func (s states[D]) add(n *topicNode[D]) states[D] {
	if s.seen == nil {
		if slices.Contains(s.list, n) {
			return s
		}
		s.list = append(s.list, n)
		if len(s.list) > smallStates {
			s.seen = make(map[*topicNode[D]]struct{}, 2*len(s.list))
			for _, x := range s.list {
				s.seen[x] = struct{}{}
			}
		}
		return s
	}
	if _, ok := s.seen[n]; !ok {
		s.seen[n] = struct{}{}
		s.list = append(s.list, n)
	}
	return s
}

// Match runs the pattern trie as a nondeterministic automaton over the
// routing key's words, keeping each live node once per position. That keeps
// patterns with several "#" from the exponential blow-up of naive
// backtracking, and leaves bindings that share no prefix with the key
// untouched.
func (m *topic[D]) Match(routingKey string, _ map[string]any, visit func(D)) {
	var buf1, buf2 [8]*topicNode[D]
	cur := states[D]{list: buf1[:0]}.addClosure(m.root)
	next := states[D]{list: buf2[:0]}
	if routingKey != "" {
		rest := routingKey
		for more := true; more && len(cur.list) > 0; {
			var w string
			w, rest, more = strings.Cut(rest, ".")
			next = next.reset()
			for _, n := range cur.list {
				if c := n.words[w]; c != nil {
					next = next.addClosure(c)
				}
				if n.star != nil {
					next = next.addClosure(n.star)
				}
				if n.isHash {
					next = next.addClosure(n)
				}
			}
			cur, next = next, cur
		}
	}

	var hit *topicNode[D]
	var seen map[D]struct{}
	for _, n := range cur.list {
		if len(n.dests) == 0 {
			continue
		}
		if hit == nil {
			hit = n
			continue
		}
		if seen == nil {
			seen = make(map[D]struct{}, len(hit.dests)+len(n.dests))
			for d := range hit.dests {
				seen[d] = struct{}{}
				visit(d)
			}
		}
		for d := range n.dests {
			if _, ok := seen[d]; !ok {
				seen[d] = struct{}{}
				visit(d)
			}
		}
	}
	if hit != nil && seen == nil {
		for d := range hit.dests {
			visit(d)
		}
	}
}

func (m *topic[D]) Len() int { return m.n }
