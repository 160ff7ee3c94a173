package kafka

import (
	"net"
	"testing"
)

func TestAnonymousAllowed(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40000}
	local6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 40000}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.9"), Port: 40000}
	tests := []struct {
		mode string
		addr net.Addr
		want bool
	}{
		{"loopback", local, true},
		{"loopback", local6, true},
		{"loopback", remote, false},
		{"", remote, false}, // the default is loopback
		{"none", local, false},
		{"none", remote, false},
		{"all", local, true},
		{"all", remote, true},
	}
	for _, tt := range tests {
		a, err := ParseAnonymousAccess(tt.mode)
		if err != nil {
			t.Fatal(err)
		}
		if got := anonymousAllowed(a, tt.addr); got != tt.want {
			t.Errorf("anonymous=%q from %v: %v, want %v", tt.mode, tt.addr, got, tt.want)
		}
	}
	if _, err := ParseAnonymousAccess("some"); err == nil {
		t.Error("ParseAnonymousAccess accepts a bad value")
	}
}

// Before a login only ApiVersions and the SASL requests are served; during
// an exchange nothing else either.
func TestAdmit(t *testing.T) {
	c := &conn{}
	for _, key := range []int16{apiVersionsKey, saslHandshakeKey, saslAuthenticateKey} {
		if err := c.admit(key); err != nil {
			t.Errorf("key %d refused before login: %v", key, err)
		}
	}
	if c.admit(0) == nil || c.admit(3) == nil {
		t.Error("Produce or Metadata served before login")
	}
	c.sasl.authenticated = true
	if err := c.admit(3); err != nil {
		t.Errorf("Metadata after login: %v", err)
	}
	c.sasl.mechanism = "PLAIN" // a re-authentication under way
	if c.admit(3) == nil {
		t.Error("Metadata served during a re-authentication")
	}
}
