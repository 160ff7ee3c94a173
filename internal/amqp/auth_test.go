package amqp

import (
	"net"
	"strings"
	"testing"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
)

// accounts is an in-memory broker.Accounts.
type accounts struct {
	users map[string]broker.User
	perms map[[2]string]broker.Permission // by user, vhost
}

func (a accounts) User(name string) (broker.User, bool) {
	u, ok := a.users[name]
	return u, ok
}

func (a accounts) Permission(user, vhost string) (broker.Permission, bool) {
	p, ok := a.perms[[2]string{user, vhost}]
	return p, ok
}

// peerConn is a net.Conn that only knows its peer's address, which is all
// authentication looks at.
type peerConn struct {
	net.Conn
	peer net.Addr
}

func (c peerConn) RemoteAddr() net.Addr { return c.peer }

// TestAuthenticate: a login is checked against the users the core's
// Accounts holds, with the password hash and RabbitMQ's loopback rule,
// and every refusal is 403 ACCESS_REFUSED on connection.start-ok.
func TestAuthenticate(t *testing.T) {
	hash := func(pw string) string {
		h, err := auth.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	accts := accounts{users: map[string]broker.User{
		"alice":          {Name: "alice", PasswordHash: hash("s3cret")},
		auth.DefaultUser: {Name: auth.DefaultUser, PasswordHash: hash(auth.DefaultPassword)},
		"nopassword":     {Name: "nopassword"},
	}}
	s := NewServer(Options{}, nil, accts)
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 50000}
	cases := []struct {
		name, user, pass string
		from             net.Addr
		refused          string // part of the reply text; "" if the login succeeds
	}{
		{"right password", "alice", "s3cret", remote, ""},
		{"wrong password", "alice", "guess", remote, "Login was refused using authentication mechanism PLAIN"},
		{"unknown user", "mallory", "s3cret", remote, "Login was refused"},
		{"user without a password", "nopassword", "", remote, "Login was refused"},
		{"guest from loopback", auth.DefaultUser, auth.DefaultPassword, local, ""},
		{"guest from afar", auth.DefaultUser, auth.DefaultPassword, remote, "user 'guest' can only connect via localhost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn(s, peerConn{peer: tc.from})
			err := c.authenticate(tc.user, tc.pass, "PLAIN")
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.user != tc.user {
					t.Errorf("conn.user = %q, want %q", c.user, tc.user)
				}
				return
			}
			ae, ok := err.(*amqpError)
			if !ok {
				t.Fatalf("err = %v, want a connection error", err)
			}
			if ae.code != wire.AccessRefused || ae.classID != 10 || ae.methodID != 11 || !strings.Contains(ae.text, tc.refused) {
				t.Errorf("refusal %d %q on %d.%d, want 403 containing %q on 10.11", ae.code, ae.text, ae.classID, ae.methodID, tc.refused)
			}
			if c.user != "" {
				t.Errorf("a refused login set conn.user = %q", c.user)
			}
		})
	}
}
