package amqp

import (
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// The registry: each connection adds itself to the core's registry of
// connections (broker.Connections) once its handshake is done, which is
// how the management API lists connections, their channels and consumers,
// and closes one. Every listing is a snapshot taken under the
// connection's and channels' locks.

// Protocol is how the registry and the management API name AMQP.
const Protocol = "AMQP 0-9-1"

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
	mechanism   string
	clientProps fieldtable.Table
	frameMax    uint32
	channelMax  uint16
	heartbeat   time.Duration
}

// opened records the finished handshake and registers the connection.
func (c *conn) opened(mechanism string, clientProps fieldtable.Table) {
	info := &connInfo{
		name:        ConnectionName(c.nc.RemoteAddr(), c.nc.LocalAddr()),
		connectedAt: time.Now(),
		user:        c.user, vhost: c.vhost, mechanism: mechanism,
		clientProps: clientProps,
		frameMax:    c.frameMax, channelMax: c.channelMax, heartbeat: c.heartbeat,
	}
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()
	c.s.opts.Connections.Add(info.name, c)
}

// unregister takes the connection out of the registry, if it was in.
func (c *conn) unregister() {
	c.mu.Lock()
	info := c.info
	c.mu.Unlock()
	if info != nil {
		c.s.opts.Connections.Remove(info.name, c)
	}
}

// ConnectionName is RabbitMQ's connection name: "peer -> local".
func ConnectionName(remote, local net.Addr) string {
	return remote.String() + " -> " + local.String()
}

func splitHostPort(a net.Addr) (string, int) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// Info describes the connection for the registry (broker.Conn). It is
// registered only once its handshake is done, so info is set.
func (c *conn) Info() broker.ConnInfo {
	c.mu.Lock()
	info := c.info
	chans := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chans = append(chans, ch)
	}
	c.mu.Unlock()
	ci := broker.ConnInfo{
		Name: info.name, Protocol: Protocol, AuthMechanism: info.mechanism,
		User: info.user, Vhost: info.vhost,
		ConnectedAt: info.connectedAt, ClientProperties: info.clientProps,
		FrameMax: info.frameMax, ChannelMax: info.channelMax, Heartbeat: info.heartbeat,
		State: "running",
	}
	if c.inFlow() {
		ci.State = "flow"
	}
	ci.Stats = c.stats.Totals()
	ci.TLS = c.tlsInfo()
	ci.PeerHost, ci.PeerPort = splitHostPort(c.nc.RemoteAddr())
	ci.Host, ci.Port = splitHostPort(c.nc.LocalAddr())
	for _, ch := range chans {
		ci.Channels = append(ci.Channels, ch.describe())
	}
	sort.Slice(ci.Channels, func(i, j int) bool { return ci.Channels[i].Number < ci.Channels[j].Number })
	return ci
}

func (ch *channel) describe() broker.ChannelInfo {
	mode := ch.mode.Load()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	info := broker.ChannelInfo{
		Number: ch.id, Prefetch: ch.prefetch, GlobalPrefetch: ch.globalPrefetch,
		Unacked: len(ch.unacked), Confirm: mode == modeConfirm, Tx: mode == modeTx,
		Stats: ch.stats.Totals(),
	}
	for _, cs := range ch.consumers {
		info.Consumers = append(info.Consumers, broker.ConsumerInfo{
			Tag: cs.tag, Queue: cs.qname, AckRequired: !cs.noAck, Prefetch: cs.prefetch, Unacked: cs.unacked,
		})
	}
	sort.Slice(info.Consumers, func(i, j int) bool { return info.Consumers[i].Tag < info.Consumers[j].Tag })
	return info
}

// Close closes the connection with 320 CONNECTION_FORCED and reason as
// the reply text, as RabbitMQ's management API does (broker.Conn).
func (c *conn) Close(reason string) {
	c.closeWith(errorf(wire.ConnectionForced, "%s", reason))
	// Give the client a moment to answer close-ok, then stop reading.
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
}
