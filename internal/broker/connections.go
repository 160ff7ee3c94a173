package broker

import (
	"sort"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// Connections is the registry of open client connections, whatever their
// protocol: the front ends add a connection once its handshake is done
// and remove it when it ends; the management API lists them and closes
// one on request without knowing which front end serves it. The zero
// value is an empty registry. It is safe for concurrent use.
//
// The registry holds its lock only around its map: Info and Close are
// called on the connections with no registry lock held, so a connection
// may take its own locks there (and may Remove itself from the registry
// meanwhile).
type Connections struct {
	mu    sync.Mutex
	conns map[string]Conn // by name
}

// Conn is an open connection as the registry sees it.
type Conn interface {
	// Info describes the connection as it is now.
	Info() ConnInfo
	// Close closes the connection at an operator's request, with reason
	// as the text the client is shown (AMQP: 320 CONNECTION_FORCED). It
	// must not wait for the client.
	Close(reason string)
}

// ConnInfo describes one connection. The fields a protocol lacks are zero
// (a Kafka connection has no vhost, channels or heartbeat).
type ConnInfo struct {
	// Name identifies the connection among the open ones; RabbitMQ's
	// form "peer -> local" ("127.0.0.1:50000 -> 127.0.0.1:5672").
	Name string
	// Protocol is the protocol and version as RabbitMQ reports it
	// ("AMQP 0-9-1").
	Protocol string
	// AuthMechanism is the SASL mechanism the client logged in with
	// ("PLAIN", "AMQPLAIN").
	AuthMechanism    string
	PeerHost, Host   string
	PeerPort, Port   int
	User, Vhost      string
	ConnectedAt      time.Time
	ClientProperties fieldtable.Table
	FrameMax         uint32
	ChannelMax       uint16
	Heartbeat        time.Duration // 0: none
	// State is RabbitMQ's connection state: "running", or "flow" while
	// the connection's reads are held by credit flow.
	State    string
	Channels []ChannelInfo // by number
	// Stats are the connection's message totals, its channels' (open and
	// closed) summed.
	Stats MessageTotals
	// TLS describes the connection's TLS session; nil for plain TCP.
	TLS *ConnTLS
}

// ConnTLS is a connection's TLS session, as the management API reports
// it (RabbitMQ's ssl_protocol, ssl_cipher, peer_cert_subject,
// peer_cert_issuer).
type ConnTLS struct {
	Version, Cipher         string // "TLS 1.3", "TLS_AES_128_GCM_SHA256"
	PeerSubject, PeerIssuer string // of the client certificate; "" if none
}

// ChannelInfo describes one AMQP channel.
type ChannelInfo struct {
	Number         uint16
	Prefetch       uint16 // per consumer (basic.qos global=false)
	GlobalPrefetch uint16
	Unacked        int
	Confirm, Tx    bool
	Consumers      []ConsumerInfo // by tag
	Stats          MessageTotals  // the channel's message totals
}

// ConsumerInfo describes one consumer on a channel.
type ConsumerInfo struct {
	Tag         string
	Queue       string
	AckRequired bool
	Prefetch    uint16
	Unacked     int
}

// Add registers c under name, which must be Info().Name and unique among
// the open connections; a connection already registered under name is
// replaced.
func (cs *Connections) Add(name string, c Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.conns == nil {
		cs.conns = make(map[string]Conn)
	}
	cs.conns[name] = c
}

// Remove unregisters c. It does nothing if name is registered to another
// connection (one that replaced c) or to none.
func (cs *Connections) Remove(name string, c Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.conns[name] == c {
		delete(cs.conns, name)
	}
}

// Len is the number of registered connections.
func (cs *Connections) Len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// List describes every registered connection, sorted by name.
func (cs *Connections) List() []ConnInfo {
	cs.mu.Lock()
	conns := make([]Conn, 0, len(cs.conns))
	for _, c := range cs.conns {
		conns = append(conns, c)
	}
	cs.mu.Unlock()
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close closes the named connection with reason and reports whether it
// was registered.
func (cs *Connections) Close(name, reason string) bool {
	cs.mu.Lock()
	c, ok := cs.conns[name]
	cs.mu.Unlock()
	if !ok {
		return false
	}
	c.Close(reason)
	return true
}
