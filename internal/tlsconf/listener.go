package tlsconf

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/accept"
)

// HandshakeTimeout bounds one TLS handshake, from accept to done.
const HandshakeTimeout = 10 * time.Second

// MaxPendingHandshakes bounds the handshakes one listener runs at once;
// past it the listener stops accepting (the kernel's backlog holds new
// connections) until one ends.
const MaxPendingHandshakes = 1024

// Listen returns a listener whose Accept returns the connections of ln as
// *tls.Conn with their handshake done under cfg. name labels its logs and
// its handshake failure count ("amqps", "kafka_tls", "https"). Closing
// it closes ln and every connection still in its handshake.
func Listen(ln net.Listener, cfg *tls.Config, name string, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		inner: ln, cfg: cfg, name: name, log: log,
		ctx: ctx, cancel: cancel,
		ready:   make(chan net.Conn),
		ended:   make(chan struct{}),
		pending: make(chan struct{}, MaxPendingHandshakes),
	}
	go l.acceptLoop()
	return l
}

// IsListener reports whether ln is a TLS listener Listen made.
func IsListener(ln net.Listener) bool {
	_, ok := ln.(*listener)
	return ok
}

type listener struct {
	inner  net.Listener
	cfg    *tls.Config
	name   string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	ready   chan net.Conn // handshakes done, waiting for Accept
	ended   chan struct{} // closed when the accept loop ends; err says why
	err     error
	pending chan struct{} // one token per handshake running
	once    sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ended:
		if l.ctx.Err() != nil {
			return nil, net.ErrClosed
		}
		return nil, l.err
	}
}

func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.inner.Close()
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// acceptLoop accepts connections and starts their handshakes; failures
// that pass are retried with backoff, as the front ends' loops do.
func (l *listener) acceptLoop() {
	defer close(l.ended)
	bo := accept.Backoff{Log: l.log, Listener: l.name}
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			if l.ctx.Err() == nil && bo.Wait(err, l.ctx.Done()) {
				continue
			}
			l.err = err
			return
		}
		bo.Accepted()
		select {
		case l.pending <- struct{}{}:
		case <-l.ctx.Done():
			nc.Close()
			l.err = net.ErrClosed
			return
		}
		go l.handshake(nc)
	}
}

func (l *listener) handshake(nc net.Conn) {
	defer func() { <-l.pending }()
	tc := tls.Server(nc, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		if l.ctx.Err() != nil {
			return // closing: not the client's failure
		}
		countFailure(l.name)
		l.log.Info("TLS handshake failed", "listener", l.name, "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		nc.Close()
	}
}

// failures counts failed handshakes by listener over the process's life.
var failures sync.Map // listener name → *atomic.Int64

func countFailure(name string) {
	c, ok := failures.Load(name)
	if !ok {
		c, _ = failures.LoadOrStore(name, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// HandshakeFailures reports how many TLS handshakes failed on the named
// listener since the process started.
func HandshakeFailures(name string) int64 {
	if c, ok := failures.Load(name); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Listener names, the label values of the handshake failure count.
const (
	ListenerAMQPS = "amqps"
	ListenerKafka = "kafka_tls"
	ListenerHTTPS = "https"
)

// PeerUser is the user a verified client certificate names: the common
// name of its subject. ok is false when the connection is not TLS, or
// presented no certificate that was verified against the CA.
func PeerUser(nc net.Conn) (user string, ok bool) {
	tc, isTLS := nc.(*tls.Conn)
	if !isTLS {
		return "", false
	}
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", false
	}
	cn := cs.PeerCertificates[0].Subject.CommonName
	return cn, cn != ""
}
