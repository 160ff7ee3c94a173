package auth

import (
	"net"
	"net/netip"
	"slices"
)

// The user a fresh node creates, as in RabbitMQ.
const (
	DefaultUser     = "guest"
	DefaultPassword = "guest"
	DefaultVHost    = "/"
)

// IsLoopback reports whether addr, a connection's remote address, is on
// this host: in 127.0.0.0/8, ::1, or an IPv4-mapped IPv6 form of those
// (::ffff:127.0.0.1). A Unix domain socket peer is local too. Addresses of
// other types are parsed from their String form ("host:port" or a bare
// IP); host names are not resolved and count as remote.
func IsLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case nil:
		return false
	case *net.TCPAddr:
		return a != nil && ipIsLoopback(a.IP)
	case *net.UDPAddr:
		return a != nil && ipIsLoopback(a.IP)
	case *net.IPAddr:
		return a != nil && ipIsLoopback(a.IP)
	case *net.UnixAddr:
		return a != nil
	}
	s := addr.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return false
}

func ipIsLoopback(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return ok && a.Unmap().IsLoopback()
}

// LoginAllowedFrom applies RabbitMQ's loopback_users rule: the users in
// loopbackUsers may connect only from a loopback address, everyone else
// from anywhere. RabbitMQ's default list is just DefaultUser; an empty
// list lifts the restriction.
func LoginAllowedFrom(user string, addr net.Addr, loopbackUsers []string) bool {
	return !slices.Contains(loopbackUsers, user) || IsLoopback(addr)
}
