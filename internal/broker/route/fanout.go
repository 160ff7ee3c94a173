package route

// NewFanout returns a matcher for a fanout exchange: a message goes to every
// bound destination. Keys and arguments take no part in matching, only in
// telling bindings apart.
func NewFanout[D comparable]() Matcher[D] {
	return &fanout[D]{dests: make(destSet[D])}
}

type fanout[D comparable] struct {
	dests destSet[D]
	n     int
}

func (m *fanout[D]) Add(key string, args map[string]any, d D) {
	if m.dests.add(d, keyFingerprint(key, args)) {
		m.n++
	}
}

func (m *fanout[D]) Remove(key string, args map[string]any, d D) bool {
	if !m.dests.remove(d, keyFingerprint(key, args)) {
		return false
	}
	m.n--
	return true
}

func (m *fanout[D]) Match(_ string, _ map[string]any, visit func(D)) {
	for d := range m.dests {
		visit(d)
	}
}

func (m *fanout[D]) Len() int { return m.n }
