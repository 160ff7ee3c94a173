package route

// NewDirect returns a matcher for a direct exchange: a message goes to the
// destinations bound with a key equal to its routing key. Arguments take
// no part in matching, only in telling bindings apart.
func NewDirect[D comparable]() Matcher[D] {
	return &direct[D]{keys: make(map[string]destSet[D])}
}

type direct[D comparable] struct {
	keys map[string]destSet[D]
	n    int
}

func (m *direct[D]) Add(key string, args map[string]any, d D) {
	s := m.keys[key]
	if s == nil {
		s = make(destSet[D], 1)
		m.keys[key] = s
	}
	if s.add(d, fingerprint(args)) {
		m.n++
	}
}

func (m *direct[D]) Remove(key string, args map[string]any, d D) bool {
	s := m.keys[key]
	if s == nil || !s.remove(d, fingerprint(args)) {
		return false
	}
	if len(s) == 0 {
		delete(m.keys, key)
	}
	m.n--
	return true
}

func (m *direct[D]) Match(routingKey string, _ map[string]any, visit func(D)) {
	for d := range m.keys[routingKey] {
		visit(d)
	}
}

func (m *direct[D]) Len() int { return m.n }
