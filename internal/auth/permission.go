package auth

import (
	"regexp"
	"sync"
)

// Permission is what a user may do in one virtual host: three regular
// expressions matched, unanchored, against resource names. See the package
// documentation for the rules.
type Permission struct {
	Configure, Write, Read string
}

// AllowAll is the pattern that allows every resource.
const AllowAll = ".*"

// Access is the kind of operation being checked.
type Access uint8

// The three kinds of access, as in RabbitMQ: configure creates, deletes or
// changes a resource, write puts messages into it (publish to an exchange,
// bind a queue to it), read takes messages out (consume, get, bind from
// an exchange).
const (
	AccessConfigure Access = iota + 1
	AccessWrite
	AccessRead
)

func (a Access) String() string {
	switch a {
	case AccessConfigure:
		return "configure"
	case AccessWrite:
		return "write"
	case AccessRead:
		return "read"
	}
	return "unknown"
}

// Pattern returns the expression governing a; "" (allowing nothing) for an
// unknown Access.
func (p Permission) Pattern(a Access) string {
	switch a {
	case AccessConfigure:
		return p.Configure
	case AccessWrite:
		return p.Write
	case AccessRead:
		return p.Read
	}
	return ""
}

// DefaultExchangeResource is the name under which the default exchange
// (named "" on the wire) is checked.
const DefaultExchangeResource = "amq.default"

// ExchangeResource returns the name an exchange is checked under: its own,
// or DefaultExchangeResource for the default exchange.
func ExchangeResource(name string) string {
	if name == "" {
		return DefaultExchangeResource
	}
	return name
}

// DefaultCacheSize is how many compiled patterns a zero Checker keeps.
const DefaultCacheSize = 1024

// Checker matches permission patterns, compiling each once. The zero value
// is ready to use. It is safe for concurrent use.
type Checker struct {
	max int // 0 means DefaultCacheSize

	mu    sync.RWMutex
	cache map[string]*regexp.Regexp // nil value: the pattern does not compile
}

// NewChecker returns a Checker that keeps at most maxCached compiled
// patterns (DefaultCacheSize if maxCached <= 0). Past that, adding a
// pattern evicts an arbitrary one; patterns come from the permission
// table, which is small, so the bound is a guard rather than a tuning knob.
func NewChecker(maxCached int) *Checker {
	return &Checker{max: maxCached}
}

// Allowed reports whether resource matches pattern anywhere. The empty
// pattern and a pattern that does not compile allow nothing.
func (c *Checker) Allowed(pattern, resource string) bool {
	switch pattern {
	case "":
		return false
	case ".*": // the usual pattern, and RabbitMQ's default: skip the matcher
		return true
	}
	re := c.compile(pattern)
	return re != nil && re.MatchString(resource)
}

// Check reports whether p allows access a to the named resource. For an
// exchange, pass ExchangeResource(name).
func (c *Checker) Check(p Permission, a Access, resource string) bool {
	return c.Allowed(p.Pattern(a), resource)
}

func (c *Checker) compile(pattern string) *regexp.Regexp {
	c.mu.RLock()
	re, ok := c.cache[pattern]
	c.mu.RUnlock()
	if ok {
		return re
	}
	// Compile outside the lock; two goroutines may both compile a new
	// pattern, which is harmless.
	re, err := regexp.Compile(pattern)
	if err != nil {
		re = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = make(map[string]*regexp.Regexp)
	}
	limit := c.max
	if limit <= 0 {
		limit = DefaultCacheSize
	}
	if _, ok := c.cache[pattern]; !ok && len(c.cache) >= limit {
		for k := range c.cache { // map order makes this a random eviction
			delete(c.cache, k)
			break
		}
	}
	c.cache[pattern] = re
	return re
}
