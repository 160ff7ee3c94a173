package amqp

import (
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// The registry: what the management API lists about open connections,
// their channels and consumers, and how it closes a connection. Every
// listing is a snapshot taken under the connection's and channels' locks.

// Channel modes, stored in channel.mode.
const (
	modeConfirm = 1
	modeTx      = 2
)

// connInfo is what a connection learned in its handshake; immutable once
// set (under conn.mu).
type connInfo struct {
	name        string
	connectedAt time.Time
	user, vhost string
	clientProps fieldtable.Table
	frameMax    uint32
	channelMax  uint16
	heartbeat   time.Duration
}

// opened records the finished handshake for the registry.
func (c *conn) opened(clientProps fieldtable.Table) {
	info := &connInfo{
		name:        ConnectionName(c.nc.RemoteAddr(), c.nc.LocalAddr()),
		connectedAt: time.Now(),
		user:        c.user, vhost: c.vhost,
		clientProps: clientProps,
		frameMax:    c.frameMax, channelMax: c.channelMax, heartbeat: c.heartbeat,
	}
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()
}

// ConnectionName is RabbitMQ's connection name: "peer -> local".
func ConnectionName(remote, local net.Addr) string {
	return remote.String() + " -> " + local.String()
}

// ConnectionInfo describes one open connection.
type ConnectionInfo struct {
	Name             string
	PeerHost         string
	PeerPort         int
	Host             string
	Port             int
	User, Vhost      string
	ConnectedAt      time.Time
	ClientProperties fieldtable.Table
	FrameMax         uint32
	ChannelMax       uint16
	Heartbeat        time.Duration
	Channels         []ChannelInfo
}

// ChannelInfo describes one channel.
type ChannelInfo struct {
	Number         uint16
	Prefetch       uint16 // per-consumer (basic.qos global=false)
	GlobalPrefetch uint16
	Unacked        int
	Confirm, Tx    bool
	Consumers      []ConsumerInfo
}

// ConsumerInfo describes one consumer.
type ConsumerInfo struct {
	Tag         string
	Queue       string
	AckRequired bool
	Prefetch    uint16
	Unacked     int
}

// Connections lists the connections that finished their handshake, sorted
// by name.
func (s *Server) Connections() []ConnectionInfo {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]ConnectionInfo, 0, len(conns))
	for _, c := range conns {
		if ci, ok := c.describe(); ok {
			out = append(out, ci)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func splitHostPort(a net.Addr) (string, int) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func (c *conn) describe() (ConnectionInfo, bool) {
	c.mu.Lock()
	info := c.info
	chans := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chans = append(chans, ch)
	}
	c.mu.Unlock()
	if info == nil {
		return ConnectionInfo{}, false
	}
	ci := ConnectionInfo{
		Name: info.name, User: info.user, Vhost: info.vhost,
		ConnectedAt: info.connectedAt, ClientProperties: info.clientProps,
		FrameMax: info.frameMax, ChannelMax: info.channelMax, Heartbeat: info.heartbeat,
	}
	ci.PeerHost, ci.PeerPort = splitHostPort(c.nc.RemoteAddr())
	ci.Host, ci.Port = splitHostPort(c.nc.LocalAddr())
	for _, ch := range chans {
		ci.Channels = append(ci.Channels, ch.describe())
	}
	sort.Slice(ci.Channels, func(i, j int) bool { return ci.Channels[i].Number < ci.Channels[j].Number })
	return ci, true
}

func (ch *channel) describe() ChannelInfo {
	mode := ch.mode.Load()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	info := ChannelInfo{
		Number: ch.id, Prefetch: ch.prefetch, GlobalPrefetch: ch.globalPrefetch,
		Unacked: len(ch.unacked), Confirm: mode == modeConfirm, Tx: mode == modeTx,
	}
	for _, cs := range ch.consumers {
		info.Consumers = append(info.Consumers, ConsumerInfo{
			Tag: cs.tag, Queue: cs.qname, AckRequired: !cs.noAck, Prefetch: cs.prefetch, Unacked: cs.unacked,
		})
	}
	sort.Slice(info.Consumers, func(i, j int) bool { return info.Consumers[i].Tag < info.Consumers[j].Tag })
	return info
}

// CloseConnection closes the named connection with 320 CONNECTION_FORCED
// and reason as the reply text, as RabbitMQ's management API does. It
// reports whether the connection was found.
func (s *Server) CloseConnection(name, reason string) bool {
	s.mu.Lock()
	var target *conn
	for c := range s.conns {
		c.mu.Lock()
		if c.info != nil && c.info.name == name {
			target = c
		}
		c.mu.Unlock()
		if target != nil {
			break
		}
	}
	s.mu.Unlock()
	if target == nil {
		return false
	}
	target.closeWith(errorf(wire.ConnectionForced, "%s", reason))
	// Give the client a moment to answer close-ok, then stop reading.
	target.nc.SetReadDeadline(time.Now().Add(time.Second))
	return true
}
