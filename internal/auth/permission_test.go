package auth

import (
	"fmt"
	"sync"
	"testing"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		pattern, resource string
		want              bool
	}{
		{".*", "orders", true},
		{".*", "", true},
		{"", "orders", false},
		{"", "", false}, // RabbitMQ's "^$" would allow "", but no resource is named ""
		{"^$", "amq.default", false},
		{"orders", "eu.orders.v1", true}, // unanchored
		{"^orders$", "eu.orders.v1", false},
		{"^orders$", "orders", true},
		{"^amq\\.gen-", "amq.gen-JzTY20BRgKO-HjmUJj0wLg", true},
		{"^amq\\.gen-", "amq.genx", false},
		{"^(a|b)$", "b", true},
		{"^(a|b)$", "ab", false},
		{"^amq\\.default$", ExchangeResource(""), true},
		{"(", "(", false},             // does not compile
		{"^(?!secret).*", "x", false}, // PCRE look-ahead: not RE2, denies
		{"^a$", "a\n", false},         // RE2 "$" is end of text only
	}
	var c Checker
	for _, tt := range tests {
		for range 2 { // second time from the cache
			if got := c.Allowed(tt.pattern, tt.resource); got != tt.want {
				t.Errorf("Allowed(%q, %q) = %v, want %v", tt.pattern, tt.resource, got, tt.want)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	p := Permission{Configure: "^q\\.", Write: "^amq\\.default$|^ex$", Read: ""}
	c := NewChecker(0)
	tests := []struct {
		a        Access
		resource string
		want     bool
	}{
		{AccessConfigure, "q.one", true},
		{AccessConfigure, "ex", false},
		{AccessWrite, ExchangeResource(""), true},
		{AccessWrite, ExchangeResource("ex"), true},
		{AccessWrite, "q.one", false},
		{AccessRead, "q.one", false},
		{Access(0), "q.one", false},
		{Access(9), "q.one", false},
	}
	for _, tt := range tests {
		if got := c.Check(p, tt.a, tt.resource); got != tt.want {
			t.Errorf("Check(%v, %q) = %v, want %v", tt.a, tt.resource, got, tt.want)
		}
	}
	full := Permission{AllowAll, AllowAll, AllowAll}
	for _, a := range []Access{AccessConfigure, AccessWrite, AccessRead} {
		if !c.Check(full, a, "anything") {
			t.Errorf("AllowAll does not allow %v", a)
		}
	}
	if AccessRead.String() != "read" || Access(0).String() != "unknown" {
		t.Error("Access.String")
	}
}

func TestCheckerCacheBounded(t *testing.T) {
	c := NewChecker(4)
	for i := range 100 {
		p := fmt.Sprintf("^r%d$", i)
		if !c.Allowed(p, fmt.Sprintf("r%d", i)) {
			t.Fatalf("Allowed(%q) = false", p)
		}
		if n := len(c.cache); n > 4 {
			t.Fatalf("cache holds %d patterns, limit 4", n)
		}
	}
	// An evicted pattern still works: it is compiled again.
	if !c.Allowed("^r0$", "r0") {
		t.Error("evicted pattern no longer matches")
	}
}

func TestCheckerConcurrent(t *testing.T) {
	c := NewChecker(8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				p := fmt.Sprintf("^r%d", (i+g)%16)
				if !c.Allowed(p, fmt.Sprintf("r%d.x", (i+g)%16)) {
					t.Errorf("Allowed(%q) = false", p)
					return
				}
			}
		})
	}
	wg.Wait()
}
