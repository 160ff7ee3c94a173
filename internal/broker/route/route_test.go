package route

import (
	"slices"
	"testing"
)

// matched returns the destinations Match visits, sorted, failing the test
// if one is visited twice.
func matched(t testing.TB, m Matcher[string], key string, headers map[string]any) []string {
	t.Helper()
	var got []string
	m.Match(key, headers, func(d string) {
		if slices.Contains(got, d) {
			t.Errorf("Match(%q, %v) visited %q twice", key, headers, d)
		}
		got = append(got, d)
	})
	slices.Sort(got)
	return got
}

func TestNew(t *testing.T) {
	for _, typ := range []string{TypeDirect, TypeFanout, TypeTopic, TypeHeaders} {
		m, ok := New[string](typ)
		if !ok || m == nil || m.Len() != 0 {
			t.Errorf("New(%q) = %v, %v; want an empty matcher", typ, m, ok)
		}
	}
	for _, typ := range []string{"", "Direct", "x-consistent-hash", "match"} {
		if m, ok := New[string](typ); ok || m != nil {
			t.Errorf("New(%q) = %v, %v; want nil, false", typ, m, ok)
		}
	}
}

// Bindings are (key, args, destination) triples, for every type.
func TestBindingIdentity(t *testing.T) {
	for _, typ := range []string{TypeDirect, TypeFanout, TypeTopic, TypeHeaders} {
		t.Run(typ, func(t *testing.T) {
			m, _ := New[string](typ)
			headers := map[string]any{"a": int32(1), "b": "x"} // matches both bindings below
			m.Add("k", nil, "q")
			m.Add("k", map[string]any{}, "q") // nil and empty args are the same table
			if m.Len() != 1 {
				t.Fatalf("Len = %d after adding the same binding twice, want 1", m.Len())
			}
			m.Add("k", map[string]any{"a": int32(1), "b": "x"}, "q")
			m.Add("k", map[string]any{"b": "x", "a": int32(1)}, "q")
			if m.Len() != 2 {
				t.Fatalf("Len = %d, want 2: different args make a second binding", m.Len())
			}
			if got := matched(t, m, "k", headers); !slices.Equal(got, []string{"q"}) {
				t.Fatalf("Match = %v, want [q] once", got)
			}
			if m.Remove("k", map[string]any{"a": int32(2), "b": "x"}, "q") {
				t.Fatal("Remove of a binding with other args succeeded")
			}
			if m.Remove("k", nil, "other") {
				t.Fatal("Remove of another destination's binding succeeded")
			}
			if !m.Remove("k", nil, "q") {
				t.Fatal("Remove(k, nil, q) = false")
			}
			if m.Remove("k", nil, "q") {
				t.Fatal("second Remove(k, nil, q) = true")
			}
			if got := matched(t, m, "k", headers); !slices.Equal(got, []string{"q"}) {
				t.Fatalf("Match = %v after removing one of two bindings, want [q]", got)
			}
			if !m.Remove("k", map[string]any{"a": int32(1), "b": "x"}, "q") || m.Len() != 0 {
				t.Fatalf("Remove of the last binding: Len = %d", m.Len())
			}
			if got := matched(t, m, "k", headers); len(got) != 0 {
				t.Fatalf("Match = %v with no bindings", got)
			}
		})
	}
}

// The matcher keeps its own copy of the arguments.
func TestArgsCopied(t *testing.T) {
	for _, typ := range []string{TypeDirect, TypeFanout, TypeTopic, TypeHeaders} {
		m, _ := New[string](typ)
		args := map[string]any{"h": "v", "x-match": "any"}
		m.Add("k", args, "q")
		args["h"] = "changed"
		if !m.Remove("k", map[string]any{"h": "v", "x-match": "any"}, "q") {
			t.Errorf("%s: binding changed when the caller's args map did", typ)
		}
	}
}

func TestDirect(t *testing.T) {
	m := NewDirect[string]()
	m.Add("a", nil, "q1")
	m.Add("a", nil, "q2")
	m.Add("b", nil, "q2")
	m.Add("", nil, "q3")
	tests := []struct {
		key  string
		want []string
	}{
		{"a", []string{"q1", "q2"}},
		{"b", []string{"q2"}},
		{"", []string{"q3"}},
		{"A", nil},
		{"a.b", nil},
		{"#", nil},
	}
	for _, tt := range tests {
		if got := matched(t, m, tt.key, nil); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	m.Remove("a", nil, "q1")
	m.Remove("a", nil, "q2")
	if _, ok := m.(*direct[string]).keys["a"]; ok {
		t.Error("key with no bindings left is still held")
	}
}

func TestFanout(t *testing.T) {
	m := NewFanout[string]()
	m.Add("", nil, "q1")
	m.Add("ignored", nil, "q2")
	m.Add("other", nil, "q2") // a second binding to q2
	for _, key := range []string{"", "x", "a.b.c"} {
		if got := matched(t, m, key, nil); !slices.Equal(got, []string{"q1", "q2"}) {
			t.Errorf("Match(%q) = %v, want [q1 q2]", key, got)
		}
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want 3", m.Len())
	}
	m.Remove("ignored", nil, "q2")
	if got := matched(t, m, "", nil); !slices.Equal(got, []string{"q1", "q2"}) {
		t.Errorf("Match = %v, want [q1 q2]: q2 still has a binding", got)
	}
}
