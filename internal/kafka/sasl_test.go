package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
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

// usersFake is a UserStore in memory.
type usersFake map[string]broker.User

func (u usersFake) User(name string) (broker.User, bool) { v, ok := u[name]; return v, ok }
func (u usersFake) Users() []broker.User {
	var out []broker.User
	for _, v := range u {
		out = append(out, v)
	}
	return out
}
func (u usersFake) PutUser(v broker.User) error { u[v.Name] = v; return nil }

// saslConn is a connection that must log in, with the user u / "pw".
func saslConn(t testing.TB) *conn {
	u, err := broker.UserWithPassword("u", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: Options{Users: usersFake{"u": u}, Hooks: noHooks{}}, ctx: context.Background()}
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return &conn{s: s, nc: nc, ctx: context.Background(), log: slog.New(slog.DiscardHandler)}
}

// FuzzSaslTokens feeds arbitrary tokens to each mechanism, in both
// framings: never a panic, and never a login without the password.
func FuzzSaslTokens(f *testing.F) {
	f.Add(uint8(0), []byte("\x00u\x00pw"), []byte(nil))
	f.Add(uint8(1), []byte("n,,n=u,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add(uint8(2), []byte("n,a=u,n=u,r=x,tokenauth=true"), []byte("c=bixx"))
	f.Fuzz(func(t *testing.T, mech uint8, first, second []byte) {
		c := saslConn(t)
		c.sasl.mechanism = saslMechanisms[int(mech)%len(saslMechanisms)]
		_, done, err := c.saslStep(first)
		if err == nil && !done && c.sasl.mechanism != "PLAIN" {
			_, done, err = c.saslStep(second)
		}
		if done {
			if c.sasl.mechanism != "" || c.user != "u" || !c.sasl.authenticated {
				t.Fatalf("login left state %+v, user %q", c.sasl, c.user)
			}
			if !bytes.HasSuffix(first, []byte("\x00u\x00pw")) {
				t.Fatalf("logged in with %q / %q", first, second)
			}
		} else if err == nil && c.sasl.authenticated {
			t.Fatal("authenticated without a completed exchange")
		}
	})
}
