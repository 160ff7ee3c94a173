package amqp

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/accept"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/version"
)

// Options configure the AMQP front end. Zero values take the defaults.
type Options struct {
	// Heartbeat is the interval the server suggests in connection.tune.
	// Default 60s; the client's answer decides (0 disables).
	Heartbeat time.Duration
	// FrameMax is the largest frame the server accepts, suggested in tune.
	// Default 131072 (RabbitMQ's).
	FrameMax uint32
	// ChannelMax is the highest channel number. Default 2047.
	ChannelMax uint16
	// MaxMessageBytes caps a published message body. Default 16 MiB.
	MaxMessageBytes int
	// LoopbackUsers may only log in from a loopback address. Default
	// ["guest"], as RabbitMQ's loopback_users.
	LoopbackUsers []string
	// LoginLimiter holds the answer to repeated failed logins from one
	// address (auth.FailureLimiter); nil does not.
	LoginLimiter *auth.FailureLimiter
	// HandshakeTimeout bounds the connection handshake. Default 10s.
	HandshakeTimeout time.Duration
	// MaxConnections caps the open connections (handshaking ones
	// included); one accepted past it is closed at once, before the
	// protocol header. 0: unlimited (default).
	MaxConnections int
	// WriteTimeout closes a connection whose client takes no bytes for
	// this long while frames wait for it (RabbitMQ's send_timeout); its
	// unacked deliveries return to their queues. Default 15s.
	WriteTimeout time.Duration
	// FrameTimeout bounds how long a frame may take to arrive once its
	// header has (slowloris). Default 30s.
	FrameTimeout time.Duration
	// Limits, when set, are the vhost and user limits to enforce
	// (limits.go). Default none.
	Limits broker.Limits
	// ConnCounts counts the connections the max-connections limits
	// apply to; share one with the Kafka front end so that a user's
	// limit counts both. Default: the server's own.
	ConnCounts *broker.ConnCounts
	// Version is the "version" server property. Default: Sluice's own
	// (package version).
	Version string
	Logger  *slog.Logger
	// Hooks receive connection, channel, byte and latency measurements.
	// Default none.
	Hooks Hooks

	// Flow, when set, holds publishers while a resource alarm is raised
	// (see flow.go).
	Flow FlowControl
	// Connections is the registry each connection joins once its
	// handshake is done, for the management API. Default a registry of
	// the server's own.
	Connections *broker.Connections

	// Authorizer, when set, adds the Kafka DENY ACLs of a topic to the
	// permission checks on the topic's AMQP views (its super stream
	// exchange and partition stream queues in the Kafka vhost); see
	// channel.allowed. Default none.
	Authorizer *broker.Authorizer
}

func (o Options) withDefaults() Options {
	if o.ConnCounts == nil {
		o.ConnCounts = new(broker.ConnCounts)
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 60 * time.Second
	}
	if o.FrameMax == 0 {
		o.FrameMax = 131072
	}
	if o.ChannelMax == 0 {
		o.ChannelMax = 2047
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = 16 << 20
	}
	if o.LoopbackUsers == nil {
		o.LoopbackUsers = []string{"guest"}
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 15 * time.Second
	}
	if o.FrameTimeout == 0 {
		o.FrameTimeout = 30 * time.Second
	}
	if o.Version == "" {
		o.Version = version.Get().Version
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hooks == nil {
		o.Hooks = noHooks{}
	}
	if o.Connections == nil {
		o.Connections = new(broker.Connections)
	}
	return o
}

// Server serves AMQP 0-9-1 connections.
type Server struct {
	opts    Options
	router  *broker.Router
	accts   broker.Accounts
	checker *auth.Checker
	log     *slog.Logger

	nextConn atomic.Uint64
	mu       sync.Mutex
	lns      []net.Listener
	conns    map[*conn]struct{}
	// limitCounts are what the vhost and user limits count (limits.go).
	limitCounts limitCounts
	closed      bool
	wg          sync.WaitGroup
	replyTo     sync.Map // direct reply-to token -> *channel

	done chan struct{} // closed by Close
}

// NewServer returns a server routing through r and authenticating and
// authorising clients with the users and permissions in accts.
func NewServer(opts Options, r *broker.Router, accts broker.Accounts) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts, router: r, accts: accts, checker: auth.NewChecker(0), log: opts.Logger, conns: map[*conn]struct{}{}, done: make(chan struct{})}
	if opts.Flow != nil {
		go s.watchFlow()
	}
	return s
}

// Serve accepts connections on ln until Close. A failure that passes (out
// of file descriptors, say) is retried with backoff (package accept); any
// other ends Serve with the error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	bo := accept.Backoff{Log: s.log, Listener: "amqp"}
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if bo.Wait(err, s.done) {
				continue
			}
			select {
			case <-s.done:
				return nil
			default:
			}
			return err
		}
		bo.Accepted()
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		if max := s.opts.MaxConnections; max > 0 && len(s.conns) >= max {
			s.mu.Unlock()
			s.refused(nc, "max_connections")
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.opts.Hooks.ConnOpened()
			defer s.opts.Hooks.ConnClosed()
			c.serve()
			c.leave()
			c.unregister()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// OpenConnections is the number of open client connections, those the
// MaxConnections cap counts.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, closes every connection with 320
// CONNECTION_FORCED, and waits for them to finish.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	s.wg.Wait()
}

// refused closes a connection a limit does not let in: at once, before
// the protocol header, as RabbitMQ does at its connection_max.
func (s *Server) refused(nc net.Conn, reason string) {
	s.log.Warn("amqp connection refused", "reason", reason, "remote", nc.RemoteAddr().String(), "max_connections", s.opts.MaxConnections)
	nc.Close()
	_, overTLS := nc.(*tls.Conn)
	limitRefused(s.opts.Hooks, overTLS, reason)
}

// dropped reports a connection closed by a limit or timeout.
func (c *conn) dropped(reason string) {
	limitDropped(c.s.opts.Hooks, c.overTLS, reason)
}

// ConnectionCount is the number of open connections.
func (s *Server) ConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
