package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Cases follow RabbitMQ: keys split on every '.', "" is zero words.
var topicCases = []struct {
	pattern, key string
	want         bool
}{
	{"", "", true},
	{"", "a", false},
	{"", ".", false},
	{"a", "", false},
	{"a", "a", true},
	{"a", "A", false},
	{"a.b", "a.b", true},
	{"a.b", "a.b.", false},
	{"a.b", "a..b", false},

	{"*", "", false},
	{"*", "a", true},
	{"*", "a.b", false},
	{"*", ".", false},
	{"*.*", ".", true},
	{"*.*", "a.b", true},
	{"*.*", "a", false},
	{"a.*", "a.", true},
	{"a.*", "a", false},
	{"a.*.*", "a.b", false},
	{"a.*.b", "a..b", true},

	{"#", "", true},
	{"#", "a", true},
	{"#", "a.b.c", true},
	{"#", ".", true},
	{"#", "a..b", true},
	{"#.#", "", true},
	{"#.#", "a.b", true},
	{"a.#", "a", true},
	{"a.#", "a.b.c", true},
	{"a.#", "b", false},
	{"a.#", "", false},
	{"a.#", "ab", false},
	{"#.a", "a", true},
	{"#.a", "x.y.a", true},
	{"#.a", "a.x", false},
	{"#.b.#", "b", true},
	{"#.b.#", "a.b.c", true},
	{"#.b.#", "a.c", false},
	{"a.#.b", "a.b", true},
	{"a.#.b", "a..b", true},
	{"a.#.b", "a.x.y.b", true},
	{"a.#.b", "a.b.c", false},
	{"a.#.#.b", "a.b", true},
	{"a.#.#.b", "a.x.y.z.b", true},
	{"*.#", "", false},
	{"*.#", "a", true},
	{"#.*", "", false},
	{"#.*", "a.b.c", true},
	{"a.*.#", "a", false},
	{"a.*.#", "a.b", true},
	{"a.*.#", "a.b.c.d", true},
	{"#.*.#", "a", true},
	{"#.*.*.#", "a", false},

	// Only whole words are wildcards.
	{"a#", "a", false},
	{"a#", "a#", true},
	{"a*", "ab", false},
	{"##", "", false},
	{"##", "##", true},
	// A literal '*' or '#' in a routing key is an ordinary word.
	{"*", "*", true},
	{"a.*", "a.#", true},
	{"a.b", "a.*", false},

	{"..", "..", true},
	{"..", ".", false},
	{"stock.usd.*", "stock.usd.nyse", true},
	{"stock.*.nyse", "stock.eur.nyse", true},
	{"stock.#", "stock.usd.nyse.ibm", true},
	{"*.orange.*", "quick.orange.rabbit", true},
	{"*.*.rabbit", "lazy.orange.elephant", false},
	{"lazy.#", "lazy.orange.male.rabbit", true},
	{"*.orange.*", "quick.orange.male.rabbit", false},
}

func TestTopicTable(t *testing.T) {
	for _, tt := range topicCases {
		m := NewTopic[string]()
		m.Add(tt.pattern, nil, "q")
		got := len(matched(t, m, tt.key, nil)) == 1
		if got != tt.want {
			t.Errorf("pattern %q, key %q: match = %v, want %v", tt.pattern, tt.key, got, tt.want)
		}
		if ref := refTopicMatch(splitTopic(tt.pattern), splitTopic(tt.key)); ref != tt.want {
			t.Errorf("pattern %q, key %q: reference matcher says %v; the table or the reference is wrong", tt.pattern, tt.key, ref)
		}
	}
}

// All the table's patterns in one trie, each bound to its own destination,
// and one destination bound by many patterns.
func TestTopicShared(t *testing.T) {
	m := NewTopic[string]()
	for i, tt := range topicCases {
		m.Add(tt.pattern, nil, fmt.Sprint(i))
		m.Add(tt.pattern, nil, "all")
	}
	keys := map[string]bool{}
	for _, tt := range topicCases {
		keys[tt.key] = true
	}
	for key := range keys {
		var want []string
		for i, tt := range topicCases {
			if refTopicMatch(splitTopic(tt.pattern), splitTopic(key)) {
				want = append(want, fmt.Sprint(i))
			}
		}
		if len(want) > 0 {
			want = append(want, "all")
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if got := matched(t, m, key, nil); !slices.Equal(got, want) {
			t.Errorf("key %q: got %v, want %v", key, got, want)
		}
	}
}

// refTopicMatch is the obvious backtracking matcher.
func refTopicMatch(pattern, key []string) bool {
	if len(pattern) == 0 {
		return len(key) == 0
	}
	switch pattern[0] {
	case "#":
		for i := 0; i <= len(key); i++ {
			if refTopicMatch(pattern[1:], key[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(key) > 0 && refTopicMatch(pattern[1:], key[1:])
	}
	return len(key) > 0 && key[0] == pattern[0] && refTopicMatch(pattern[1:], key[1:])
}

// countNodes counts the trie nodes below and including n.
func countNodes[D comparable](n *topicNode[D]) int {
	if n == nil {
		return 0
	}
	c := 1 + countNodes(n.star) + countNodes(n.hash)
	for _, child := range n.words {
		c += countNodes(child)
	}
	return c
}

func TestTopicPrunes(t *testing.T) {
	words := []string{"a", "b", "*", "#", "", "c"}
	rng := rand.New(rand.NewPCG(1, 2))
	randomPattern := func() string {
		w := make([]string, rng.IntN(6))
		for i := range w {
			w[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(w, ".")
	}
	m := NewTopic[int]()
	tm := m.(*topic[int])
	type binding struct {
		key  string
		args map[string]any
		d    int
	}
	for round := range 50 {
		var bs []binding
		for i := range 200 {
			b := binding{randomPattern(), nil, i % 7}
			if i%5 == 0 {
				b.args = map[string]any{"n": int64(i)}
			}
			bs = append(bs, b)
			m.Add(b.key, b.args, b.d)
		}
		if countNodes(tm.root) == 1 && m.Len() > 1 {
			t.Fatal("trie did not grow")
		}
		rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
		for _, b := range bs {
			m.Remove(b.key, b.args, b.d) // duplicates make some return false
		}
		if m.Len() != 0 {
			t.Fatalf("round %d: Len = %d after removing everything", round, m.Len())
		}
		if n := countNodes(tm.root); n != 1 || !tm.root.unused() {
			t.Fatalf("round %d: %d trie nodes left after removing every binding, want only the root", round, n)
		}
	}
}

func TestTopicPrunesOnlyDeadBranches(t *testing.T) {
	m := NewTopic[string]()
	tm := m.(*topic[string])
	m.Add("a.b.c", nil, "q1")
	m.Add("a.b", nil, "q2")
	m.Add("a.#", nil, "q3")
	m.Remove("a.b.c", nil, "q1")
	if got := countNodes(tm.root); got != 4 { // root, a, a.b, a.#
		t.Errorf("%d nodes after removing a.b.c, want 4", got)
	}
	if got := matched(t, m, "a.b", nil); !slices.Equal(got, []string{"q2", "q3"}) {
		t.Errorf("Match(a.b) = %v", got)
	}
	m.Remove("a.b", nil, "q2")
	m.Remove("a.#", nil, "q3")
	if got := countNodes(tm.root); got != 1 {
		t.Errorf("%d nodes left, want 1", got)
	}
}

// Many "#" must not make matching exponential.
func TestTopicManyHashes(t *testing.T) {
	m := NewTopic[string]()
	m.Add(strings.Repeat("#.", 30)+"z", nil, "q")
	key := strings.Repeat("a.", 200) + "b"
	if got := matched(t, m, key, nil); len(got) != 0 {
		t.Errorf("Match = %v, want none", got)
	}
	if got := matched(t, m, key+".z", nil); len(got) != 1 {
		t.Errorf("Match = %v, want [q]", got)
	}
}

func FuzzTopic(f *testing.F) {
	for _, tt := range topicCases {
		f.Add(tt.pattern+"\n#.a\n*", tt.key)
	}
	f.Fuzz(func(t *testing.T, patterns, key string) {
		ps := strings.Split(patterns, "\n")
		if len(ps) > 8 || len(key) > 256 {
			t.Skip()
		}
		for _, p := range ps {
			// Keep the reference matcher's backtracking cheap.
			if len(p) > 64 || strings.Count(p, "#") > 6 {
				t.Skip()
			}
		}
		m := NewTopic[int]()
		for i, p := range ps {
			m.Add(p, nil, i)
		}
		var want []int
		for i, p := range ps {
			if refTopicMatch(splitTopic(p), splitTopic(key)) {
				want = append(want, i)
			}
		}
		var got []int
		m.Match(key, nil, func(d int) { got = append(got, d) })
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("patterns %q, key %q: got %v, want %v", ps, key, got, want)
		}
		for i, p := range ps {
			if !m.Remove(p, nil, i) {
				t.Fatalf("Remove(%q) = false", p)
			}
		}
		if tm := m.(*topic[int]); countNodes(tm.root) != 1 {
			t.Fatalf("trie not pruned after removing %q", ps)
		}
	})
}

// 10,000 bindings of which a handful match; the rest share no prefix with
// the key beyond the first word or two.
func BenchmarkTopicMatch10k(b *testing.B) {
	m := NewTopic[int]()
	for i := range 10_000 {
		var p string
		switch i % 4 {
		case 0:
			p = fmt.Sprintf("region%d.service%d.*", i%100, i/100)
		case 1:
			p = fmt.Sprintf("region%d.*.level%d", i%100, i/100)
		case 2:
			p = fmt.Sprintf("region%d.service%d.#", i%100, i/100)
		case 3:
			p = fmt.Sprintf("#.tenant%d", i)
		}
		m.Add(p, nil, i)
	}
	if m.Len() != 10_000 {
		b.Fatalf("Len = %d", m.Len())
	}
	n := 0
	m.Match("region8.service8.error", nil, func(int) { n++ })
	if n == 0 {
		b.Fatal("benchmark key matches nothing")
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Match("region8.service8.error", nil, func(int) {})
	}
}
