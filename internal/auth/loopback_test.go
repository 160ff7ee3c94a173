package auth

import (
	"net"
	"testing"
)

// addr is a net.Addr of a type IsLoopback does not know.
type addr string

func (a addr) Network() string { return "test" }
func (a addr) String() string  { return string(a) }

func tcp(s string) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 5672} }

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want bool
	}{
		{"127.0.0.1", tcp("127.0.0.1"), true},
		{"127/8", tcp("127.200.3.4"), true},
		{"::1", tcp("::1"), true},
		{"IPv4-mapped loopback", tcp("::ffff:127.0.0.1"), true},
		{"4-byte IP", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1).To4()}, true},
		{"UDP", &net.UDPAddr{IP: net.ParseIP("::1")}, true},
		{"IPAddr", &net.IPAddr{IP: net.ParseIP("127.0.0.1")}, true},
		{"unix socket", &net.UnixAddr{Name: "/run/sluice.sock", Net: "unix"}, true},
		{"private", tcp("10.0.0.1"), false},
		{"128.0.0.1", tcp("128.0.0.1"), false},
		{"IPv4-mapped private", tcp("::ffff:10.0.0.1"), false},
		{"IPv4-compatible, not mapped", tcp("::127.0.0.1"), false},
		{"unspecified", tcp("0.0.0.0"), false},
		{"::", tcp("::"), false},
		{"no IP", &net.TCPAddr{}, false},
		{"nil interface", nil, false},
		{"nil *TCPAddr", (*net.TCPAddr)(nil), false},
		{"nil *UnixAddr", (*net.UnixAddr)(nil), false},
		{"other type host:port", addr("127.0.0.1:5672"), true},
		{"other type [::1]:port", addr("[::1]:5672"), true},
		{"other type bare IP", addr("::ffff:127.0.0.2"), true},
		{"other type remote", addr("192.0.2.1:5672"), false},
		{"host names are not resolved", addr("localhost:5672"), false},
		{"garbage", addr("not an address"), false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.addr); got != tt.want {
			t.Errorf("%s: IsLoopback(%v) = %v, want %v", tt.name, tt.addr, got, tt.want)
		}
	}
}

func TestLoginAllowedFrom(t *testing.T) {
	local, remote := tcp("127.0.0.1"), tcp("192.0.2.7")
	loopbackUsers := []string{DefaultUser}
	tests := []struct {
		user  string
		addr  net.Addr
		users []string
		want  bool
	}{
		{DefaultUser, local, loopbackUsers, true},
		{DefaultUser, remote, loopbackUsers, false},
		{"alice", remote, loopbackUsers, true},
		{DefaultUser, remote, nil, true}, // loopback_users = none
		{"alice", remote, []string{"alice", DefaultUser}, false},
	}
	for _, tt := range tests {
		if got := LoginAllowedFrom(tt.user, tt.addr, tt.users); got != tt.want {
			t.Errorf("LoginAllowedFrom(%q, %v, %q) = %v, want %v", tt.user, tt.addr, tt.users, got, tt.want)
		}
	}
	if !CheckPassword(HashPasswordWithSalt(DefaultPassword, [4]byte{9, 9, 9, 9}), "guest") || DefaultVHost != "/" {
		t.Error("default user constants")
	}
}
