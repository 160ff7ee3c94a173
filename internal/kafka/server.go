package kafka

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/sluice-mq/sluice/internal/iocount"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/accept"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/tlsconf"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NodeID is the id this single-node broker gives itself.
const NodeID = 1

// Options configure the Kafka front end.
type Options struct {
	// AdvertisedAddr (host:port) is what Metadata tells clients.
	AdvertisedAddr string
	// ClusterID is reported in Metadata and DescribeCluster.
	ClusterID string
	// MaxRequestBytes caps one request frame; bigger frames close the
	// connection.
	MaxRequestBytes int
	// Cluster tells which brokers there are and who leads what
	// (cluster.go). Default (nil) SingleNode{}: this broker alone.
	Cluster Cluster
	// DataDir is reported by DescribeLogDirs.
	DataDir string
	Logger  *slog.Logger
	// Hooks receive connection, byte and request-latency measurements.
	// Default none.
	Hooks Hooks

	// FetchSessionCacheSlots bounds the fetch sessions kept (KIP-227,
	// fetch_session.go); negative keeps none. Default (0) 1000.
	FetchSessionCacheSlots int

	// Flow, when set, holds produce requests while a resource alarm is
	// raised (see flow.go).
	Flow FlowControl

	// ZeroCopy sends the records of Fetch answers from the segment files
	// with sendfile instead of reading them into memory and writing them
	// (01_fetch.go), on plain TCP connections on Linux; others (the TLS
	// listener's, another platform's) copy as when it is off. Default off
	// here; the server's kafka_zero_copy setting turns it on.
	ZeroCopy bool

	// TransactionVersion is the level ApiVersions finalizes the
	// transaction.version feature at: 2 lets clients run KIP-890 part 2
	// transactions (txn_v2 in 00_produce.go, 26_end_txn.go), 1 keeps
	// every client on the classic protocol. Default (0) 2.
	TransactionVersion int16

	// MaxConnections caps the open connections: while that many are
	// open the listener accepts no more (they wait in the kernel's
	// backlog) until one closes, as Kafka's max.connections does. 0:
	// unlimited (default).
	MaxConnections int
	// IdleTimeout closes a connection that sends no request for this
	// long (Kafka's connections.max.idle.ms). Default (0) 10 minutes.
	IdleTimeout time.Duration
	// FrameTimeout bounds how long a request may take to arrive once its
	// size has: the whole of a small request, each frameStep (1 MiB) of a
	// large one. A slower client (slowloris) is disconnected. Default (0)
	// 30s.
	FrameTimeout time.Duration
	// WriteTimeout closes a connection whose client takes no bytes of a
	// response for this long. Default (0) 60s.
	WriteTimeout time.Duration

	// Authorizer decides what an authenticated principal may do (authz.go);
	// nil allows everything, as does the anonymous principal.
	Authorizer *broker.Authorizer

	// SASL (sasl.go). Users are the users SASL logs in and the SCRAM
	// credential APIs change; nil means no login succeeds. Anonymous is
	// who may skip authentication (default loopback only).
	// SASLSessionLifetime is the session_lifetime_ms given at login
	// (KIP-368); 0, the default, never expires. LoginLimiter slows
	// failed logins per address; nil does not limit.
	Users               UserStore
	Anonymous           AnonymousAccess
	SASLSessionLifetime time.Duration
	LoginLimiter        *auth.FailureLimiter
	// LoopbackUsers may log in only from a loopback address, as over
	// AMQP (RabbitMQ's loopback_users). Default (nil) guest.
	LoopbackUsers []string

	// Limits are RabbitMQ's vhost and user limits; their max-connections
	// count Kafka connections as connections to Vhost (the Kafka vhost,
	// default "/") in ConnCounts, shared with the AMQP front end
	// (connlimits.go). nil Limits: none; nil ConnCounts: the server's own.
	Limits     broker.Limits
	ConnCounts *broker.ConnCounts
	Vhost      string
}

// SendfileHooks, when the Hooks implement it too, count the record bytes
// of Fetch answers sent from segment files by sendfile, which BytesWritten
// counts as well.
type SendfileHooks interface {
	BytesSentFromFile(n int)
}

// Server serves Kafka clients.
type Server struct {
	opts   Options
	broker *broker.Broker
	groups *groups.Coordinator
	log    *slog.Logger
	host   string
	port   int32

	// cluster answers who the brokers are and who leads what; self is
	// its Self(). single: it is SingleNode, whose answers the produce
	// path need not ask for.
	cluster Cluster
	self    int32
	single  bool

	mu    sync.Mutex
	lns   []net.Listener
	conns map[*conn]struct{}
	// slotWake, when not nil, is closed when a connection ends (for an
	// accept loop waiting under MaxConnections).
	slotWake chan struct{}
	// sessions are the fetch sessions of all connections.
	sessions *sessionCache
	// quotas measures clients against their quotas (quota.go).
	quotas *quotaManager
	// scramSecret salts the made-up SCRAM salts of unknown users.
	scramSecret []byte
	wg          sync.WaitGroup
	ctx         context.Context
	stop        context.CancelFunc
}

// NewServer builds a server on a broker and a group coordinator.
func NewServer(opts Options, b *broker.Broker, g *groups.Coordinator) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 100 << 20
	}
	if opts.ConnCounts == nil {
		opts.ConnCounts = new(broker.ConnCounts)
	}
	if opts.Vhost == "" {
		opts.Vhost = "/"
	}
	if opts.Hooks == nil {
		opts.Hooks = noHooks{}
	}
	if opts.LoopbackUsers == nil {
		opts.LoopbackUsers = []string{auth.DefaultUser}
	}
	adv, err := parseAdvertised(opts.AdvertisedAddr)
	if err != nil {
		return nil, err
	}
	if opts.FetchSessionCacheSlots == 0 {
		opts.FetchSessionCacheSlots = 1000
	}
	if opts.TransactionVersion == 0 {
		opts.TransactionVersion = 2
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	if opts.FrameTimeout <= 0 {
		opts.FrameTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 60 * time.Second
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	if opts.Cluster == nil {
		opts.Cluster = SingleNode{}
	}
	_, single := opts.Cluster.(SingleNode)
	ctx, stop := context.WithCancel(context.Background())
	return &Server{
		cluster: opts.Cluster, self: opts.Cluster.Self(), single: single,
		opts: opts, broker: b, groups: g, log: opts.Logger,
		host: adv.host, port: adv.port,
		conns: make(map[*conn]struct{}), ctx: ctx, stop: stop,
		sessions:    newSessionCache(opts.FetchSessionCacheSlots),
		quotas:      newQuotaManager(b.ClientQuotas),
		scramSecret: secret,
	}, nil
}

// Serve accepts connections on ln until Close; Metadata tells their
// clients Options.AdvertisedAddr. A failure that passes (out of file
// descriptors, say) is retried with backoff (package accept); any other
// ends Serve with the error.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, advertised{s.host, s.port})
}

// ServeAdvertised is Serve for another listener, a TLS one say, whose
// clients Metadata, FindCoordinator and DescribeCluster tell addr
// (host:port): each client learns the address of the listener it
// connected to, as with Kafka's listeners.
func (s *Server) ServeAdvertised(ln net.Listener, addr string) error {
	adv, err := parseAdvertised(addr)
	if err != nil {
		return err
	}
	return s.serve(ln, adv)
}

// advertised is the broker address told to a listener's clients.
type advertised struct {
	host string
	port int32
}

// advertised is the broker address told to the connection's client: its
// listener's, or the server's (a connection made without a listener).
func (c *conn) advertised() (string, int32) {
	if c.adv.host == "" {
		return c.s.host, c.s.port
	}
	return c.adv.host, c.adv.port
}

func parseAdvertised(addr string) (advertised, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return advertised{}, fmt.Errorf("advertised address: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return advertised{}, fmt.Errorf("advertised port: %w", err)
	}
	return advertised{host, int32(port)}, nil
}

func (s *Server) serve(ln net.Listener, adv advertised) error {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	bo := accept.Backoff{Log: s.log, Listener: "kafka"}
	overTLS := tlsconf.IsListener(ln)
	for {
		if !s.waitForSlot(overTLS) {
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if bo.Wait(err, s.ctx.Done()) {
				continue
			}
			if s.ctx.Err() != nil {
				return nil
			}
			return err
		}
		bo.Accepted()
		c := newConn(s, nc)
		c.adv = adv
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.opts.Hooks.ConnOpened()
			defer s.opts.Hooks.ConnClosed()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.slotFreed()
		}()
	}
}

// waitForSlot returns once fewer than MaxConnections connections are open
// (at once when there is no cap), false if the server closes meanwhile.
// overTLS: the listener waiting is a TLS one (for the metrics). The cap
// counts the connections of every listener together.
// While it waits, new clients queue in the kernel's backlog, as with
// Kafka's max.connections: they are served in turn as connections close,
// not refused.
func (s *Server) waitForSlot(overTLS bool) bool {
	if s.opts.MaxConnections <= 0 {
		return true
	}
	counted := false
	for {
		s.mu.Lock()
		if len(s.conns) < s.opts.MaxConnections {
			s.mu.Unlock()
			return true
		}
		if s.slotWake == nil {
			s.slotWake = make(chan struct{})
		}
		wake := s.slotWake
		s.mu.Unlock()
		if !counted {
			counted = true
			s.log.Warn("kafka listener at max connections, accepting no more until one closes", "max_connections", s.opts.MaxConnections)
			limitRefused(s.opts.Hooks, overTLS, "max_connections")
		}
		select {
		case <-wake:
		case <-s.ctx.Done():
			return false
		}
	}
}

// slotFreed wakes an accept loop waiting for a connection slot.
func (s *Server) slotFreed() {
	s.mu.Lock()
	if s.slotWake != nil {
		close(s.slotWake)
		s.slotWake = nil
	}
	s.mu.Unlock()
}

// dropped reports a connection closed by a limit or timeout.
func (c *conn) dropped(reason string) {
	limitDropped(c.s.opts.Hooks, c.overTLS, reason)
}

// OpenConnections is the number of open client connections, those the
// MaxConnections cap counts.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, closes every connection and waits for them.
func (s *Server) Close() error {
	s.stop()
	s.mu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// conn is one client connection.
type conn struct {
	s        *Server
	nc       net.Conn
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	pending  chan pendingResp
	clientID string
	// user is the principal this connection acts as: the user name a SASL
	// login (SaslAuthenticate) or a client certificate (mutual TLS)
	// established; "" before either, the anonymous principal, which is
	// allowed only where the listener permits unauthenticated access.
	// Read-loop state, set before the requests it governs are read.
	user string
	// adv is the broker address told to this connection's client: its
	// listener's advertised address.
	adv advertised
	// sasl is the connection's authentication state (sasl.go); read-loop
	// state.
	sasl saslState
	// sawRequest is read-loop state: whether clientID is set.
	sawRequest bool
	// tcp is nc when it is a plain TCP connection; zeroCopy is whether
	// Fetch answers on it are sent from the files (Options.ZeroCopy).
	tcp      *net.TCPConn
	zeroCopy bool
	// shareSessions are the share sessions (group, member) opened on this
	// connection, closed with it (share.go). Write-loop state.
	shareSessions map[[2]string]bool
	// mutedUntil (unix nanoseconds) is when the read loop may read again
	// after a quota throttle (quota.go).
	mutedUntil atomic.Int64
	// counted is what the max-connections limits count the connection
	// as (connlimits.go); read-loop state.
	counted connCounted
	// overTLS: the connection came through a TLS listener (its limit
	// refusals and drops are counted apart, TLSLimitHooks).
	overTLS bool
}

// pendingResp is a request whose response the write loop must produce.
type pendingResp struct {
	corr    int32
	req     kmsg.Request
	respond func() (kmsg.Response, error)
	start   time.Time // when the request frame was read
	// user is the connection's principal when the request was read;
	// throttle, a quota throttle due for it (quota.go).
	user     string
	throttle time.Duration
	// raw, when not nil, is a bare SASL token to send as a
	// length-prefixed frame (after a v0 SaslHandshake); req is nil.
	raw []byte
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		s: s, nc: nc, ctx: ctx, cancel: cancel,
		log:     s.log.With("remote", nc.RemoteAddr().String()),
		pending: make(chan pendingResp, 64),
	}
	c.sasl.authenticated = anonymousAllowed(s.opts.Anonymous, nc.RemoteAddr())
	c.tcp, _ = nc.(*net.TCPConn)
	_, c.overTLS = nc.(*tls.Conn)
	c.zeroCopy = s.opts.ZeroCopy && sendfileSupported && c.tcp != nil
	return c
}

func (c *conn) serve() {
	defer c.nc.Close()
	if err := c.certificateUser(); err != nil {
		c.log.Info("kafka connection refused", "err", err)
		return
	}
	defer c.uncountConn()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.writeLoop(); err != nil {
			c.log.Debug("kafka connection write ended", "err", err)
		}
		c.cancel()
		c.nc.Close() // unblock the reader
	}()
	err := c.readLoop()
	if err != nil && !errors.Is(err, io.EOF) && c.ctx.Err() == nil {
		c.log.Info("kafka connection closed", "err", err)
	}
	close(c.pending)
	<-done
	c.cancel()
	c.closeShareSessions()
}

// errDropConn wraps reasons for closing a connection.
var errDropConn = errors.New("kafka: closing connection")

func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(iocount.Reader{R: c.nc, H: c.s.opts.Hooks}, 64<<10)
	var sizeBuf [4]byte
	for {
		if !c.waitMuted() { // a quota throttle
			return c.ctx.Err()
		}
		// The idle timeout runs until a request's size has arrived; the
		// frame timeout from then on (readRequest).
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if isTimeout(err) {
				c.dropped("idle_timeout")
				return fmt.Errorf("%w: no request for %v", errDropConn, c.s.opts.IdleTimeout)
			}
			return err
		}
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.FrameTimeout))
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if c.sasl.raw {
			if size < 0 || size > maxSaslFrame {
				return fmt.Errorf("%w: SASL token size %d", errDropConn, size)
			}
			p, err := c.readRawSaslToken(br, int(size))
			if err != nil {
				return err
			}
			if err := c.queue(p); err != nil {
				return err
			}
			continue
		}
		if size < 8 {
			return fmt.Errorf("%w: request size %d", errDropConn, size)
		}
		key, err := br.Peek(2)
		if err != nil {
			return err
		}
		if !c.counted.counted && c.sasl.authenticated {
			if err := c.countServed(int16(binary.BigEndian.Uint16(key))); err != nil {
				return err
			}
		}
		limit := c.s.frameLimit(int16(binary.BigEndian.Uint16(key)))
		if !c.sasl.authenticated || c.sasl.mechanism != "" {
			limit = min(limit, maxSaslFrame)
		}
		if int(size) > limit {
			c.dropped("frame_too_large")
			return fmt.Errorf("%w: request size %d over %d", errDropConn, size, limit)
		}
		p, err := c.readRequest(br, int(size))
		if err != nil {
			if isTimeout(err) {
				c.dropped("frame_timeout")
				return fmt.Errorf("%w: request not complete within %v", errDropConn, c.s.opts.FrameTimeout)
			}
			return err
		}
		if err := c.queue(p); err != nil {
			return err
		}
	}
}

// queue hands p to the write loop. It returns an error when the
// connection is to close once p is answered (a failed SASL login).
func (c *conn) queue(p pendingResp) error {
	select {
	case c.pending <- p:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	if why := c.sasl.closeAfter; why != "" {
		return fmt.Errorf("%w: %s", errDropConn, why)
	}
	return nil
}

// maxOtherRequestBytes caps every request but Produce. Decoding a request
// allocates a Go struct per array element, which can be tens of times the
// bytes the element took on the wire, so only Produce, whose bulk is
// record bytes kept as they are, gets the full MaxRequestBytes.
const maxOtherRequestBytes = 8 << 20

func (s *Server) frameLimit(key int16) int {
	if key == 0 {
		return s.opts.MaxRequestBytes
	}
	return min(maxOtherRequestBytes, s.opts.MaxRequestBytes)
}

// readRequest reads a size-byte request frame from br, decodes it and
// runs its prepare step. A Produce frame is read into a pooled buffer
// that goes back to the pool once prepareProduce has appended its
// records (the logs copy them, and the request keeps no slice of the
// frame afterwards): the read loop allocates per request what the
// request decodes to, not a frame-sized buffer.
func (c *conn) readRequest(br *bufio.Reader, size int) (pendingResp, error) {
	var pooled *[]byte
	var buf []byte
	var err error
	if key, _ := br.Peek(2); len(key) == 2 && binary.BigEndian.Uint16(key) == 0 && size <= maxPooledFrame {
		pooled = framePool.Get().(*[]byte)
		buf, err = readFrameInto(br, (*pooled)[:0], size, c.frameProgress)
	} else {
		buf, err = readFrameInto(br, make([]byte, 0, min(size, frameStep)), size, c.frameProgress)
	}
	if err != nil {
		return pendingResp{}, err
	}
	start := time.Now()
	p, err := c.decode(buf)
	if pooled != nil {
		if _, ok := p.req.(*kmsg.ProduceRequest); ok || err != nil {
			*pooled = buf[:0]
			framePool.Put(pooled)
		}
	}
	if err != nil {
		return pendingResp{}, err
	}
	p.start, p.user = start, c.user
	if _, ok := p.req.(*kmsg.ProduceRequest); ok {
		p.throttle = c.s.quotas.record(quotaProduce, c.user, c.clientID, size, start)
		c.mute(p.throttle)
	}
	return p, nil
}

// maxPooledFrame is the largest Produce frame read into a pooled buffer
// (the producers' default request size, a little over 1 MiB, fits);
// larger ones get their own.
const maxPooledFrame = 2 << 20

// framePool holds Produce frame buffers (*[]byte) between requests of
// all connections. Being a sync.Pool, it is emptied by the garbage
// collector when connections go quiet, so idle connections hold none.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// readFrame reads a size-byte frame body. Memory grows with the bytes
// that actually arrive, not with the size a client claims, so a client
// announcing a large frame and sending nothing costs little.
func readFrame(r io.Reader, size int) ([]byte, error) {
	return readFrameInto(r, make([]byte, 0, min(size, frameStep)), size, nil)
}

// frameProgress gives a large request another FrameTimeout for each
// frameStep that arrived: it must make progress, not finish in one
// timeout.
func (c *conn) frameProgress() {
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.FrameTimeout))
}

// isTimeout reports a deadline having passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// frameStep is how much readFrameInto grows a buffer at a time.
const frameStep = 1 << 20

// readFrameInto is readFrame into buf (empty, its capacity reused): it
// reads frameStep at a time and, beyond its capacity, grows it as bytes
// arrive, doubling (to at most size), so that a large frame costs a copy
// of its bytes about once, not once per step, and memory at most twice
// what arrived. progress, when not nil, runs after each frameStep read but
// the last (the frame timeout restarts: a large frame must make progress).
func readFrameInto(r io.Reader, buf []byte, size int, progress func()) ([]byte, error) {
	const step = frameStep
	for len(buf) < size {
		if len(buf) > 0 && progress != nil {
			progress()
		}
		n := min(size-len(buf), step)
		if cap(buf)-len(buf) < n {
			grown := make([]byte, len(buf), min(size, max(2*cap(buf), len(buf)+n)))
			copy(grown, buf)
			buf = grown
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+n]); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}

// decode parses a request frame and runs the prepare step of its handler.
func (c *conn) decode(buf []byte) (pendingResp, error) {
	hdr, req, err := decodeRequest(buf)
	if err != nil {
		return pendingResp{}, err
	}
	if !c.sawRequest {
		// One client id per connection: set once, before the first
		// request reaches the write loop, so the loops never race on it.
		c.clientID, c.sawRequest = hdr.clientID, true
	}
	if err := c.admit(hdr.key); err != nil {
		return pendingResp{}, err
	}
	p := pendingResp{corr: hdr.corr, req: req}
	switch api := lookup(hdr.key); {
	case hdr.answer != nil:
		p.respond = hdr.answer
	case api.prepare != nil:
		p.respond = api.prepare(c, req)
	default:
		p.respond = func() (kmsg.Response, error) { return api.handle(c, req) }
	}
	return p, nil
}

// decodeRequest parses a request frame (without its size prefix) into its
// header and typed request. It has no side effects; a non-nil error means
// the connection must be closed. For an ApiVersions request that cannot be
// served as asked, hdr.answer holds the v0 error answer Kafka gives.
func decodeRequest(buf []byte) (requestHeader, kmsg.Request, error) {
	hdr, body, err := parseHeader(buf)
	if err != nil {
		return hdr, nil, err
	}
	api := lookup(hdr.key)
	if api == nil {
		return hdr, nil, fmt.Errorf("%w: unknown api key %d", errDropConn, hdr.key)
	}
	req := kmsg.RequestForKey(hdr.key)
	if hdr.version < api.min || hdr.version > api.max {
		if hdr.key == apiVersionsKey {
			// KIP-511: answer an unknown ApiVersions version at v0 with
			// UNSUPPORTED_VERSION and our list, so the client can retry.
			req.SetVersion(0)
			hdr.answer = unsupportedApiVersions
			return hdr, req, nil
		}
		return hdr, nil, fmt.Errorf("%w: %s v%d unsupported", errDropConn, kmsg.NameForKey(hdr.key), hdr.version)
	}
	req.SetVersion(hdr.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return hdr, nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		if hdr.key == apiVersionsKey {
			req.SetVersion(0)
			hdr.answer = invalidApiVersions
			return hdr, req, nil
		}
		return hdr, nil, fmt.Errorf("%w: malformed %s v%d: %v", errDropConn, kmsg.NameForKey(hdr.key), hdr.version, err)
	}
	return hdr, req, nil
}

func (c *conn) writeLoop() error {
	hooks := c.s.opts.Hooks
	bw := bufio.NewWriterSize(iocount.Writer{W: c.nc, H: hooks}, 64<<10)
	buf := make([]byte, 0, 4096)
	var send func(*broker.FileRegion) error
	if c.zeroCopy {
		fileHooks, _ := hooks.(SendfileHooks)
		send = func(r *broker.FileRegion) error {
			f, pos, ok := r.File()
			if !ok { // a log not on the real file system
				return copyRegion(bw, r)
			}
			if err := bw.Flush(); err != nil { // the framing goes first
				return err
			}
			n, err := sendFile(c.tcp, f, pos, int64(r.Len()))
			if n > 0 {
				hooks.BytesWritten(int(n))
				if fileHooks != nil {
					fileHooks.BytesSentFromFile(int(n))
				}
			}
			return err
		}
	}
	for p := range c.pending {
		if p.raw != nil {
			buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(p.raw)))
			if _, err := bw.Write(append(buf, p.raw...)); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			continue
		}
		resp, err := p.respond()
		if err != nil {
			return err
		}
		if resp == nil { // acks=0 produce: no response
			hooks.RequestDone(kmsg.NameForKey(p.req.Key()), time.Since(p.start))
			continue
		}
		c.throttle(resp, p.throttle)
		if n := fetchRecordBytes(resp); n > 0 {
			c.throttle(resp, c.s.quotas.record(quotaFetch, p.user, c.clientID, n, time.Now()))
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		if buf, err = writeResponse(bw, buf[:0], p.corr, p.req, resp, send); err != nil {
			if isTimeout(err) {
				c.dropped("write_timeout")
			}
			return err
		}
		hooks.RequestDone(kmsg.NameForKey(p.req.Key()), time.Since(p.start))
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, 4096) // do not pin a huge fetch buffer
		}
		if len(c.pending) == 0 {
			if err := bw.Flush(); err != nil {
				if isTimeout(err) {
					c.dropped("write_timeout")
				}
				return err
			}
		}
	}
	return bw.Flush()
}

// writeResponse frames resp into buf (returned for reuse) and writes it to
// w. A Fetch answer's records are written from the partitions' slices, not
// copied into buf, and its file regions through send (sendfile) or, when
// send is nil, copied (fetch_encode.go). Responses are written in request
// order by the one write loop, so a region sent from its file lands
// between its framing and the next response.
func writeResponse(w io.Writer, buf []byte, corr int32, req kmsg.Request, resp kmsg.Response, send func(*broker.FileRegion) error) ([]byte, error) {
	if fa, ok := resp.(*fetchAnswer); ok {
		fa.SetVersion(req.GetVersion())
		if testHookSendRegions != nil {
			testHookSendRegions()
		}
		if f, ok := frameFetchRegions(buf, corr, fa.FetchResponse, fa.regions); ok {
			err := f.writeTo(w, send)
			fa.release()
			return f.head, err
		}
		if err := fa.copyIn(); err != nil {
			fa.release()
			return buf, err
		}
		resp = fa.FetchResponse
	}
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		fr.SetVersion(req.GetVersion())
		if f, ok := frameFetch(buf, corr, fr); ok {
			return f.head, f.writeTo(w, nil)
		}
	}
	buf = encodeResponse(buf, corr, req, resp)
	_, err := w.Write(buf)
	return buf, err
}

// testHookSendRegions, when set (by tests), runs before a Fetch answer
// holding file regions is written.
var testHookSendRegions func()

// requestHeader is the Kafka request header (v1 or v2).
type requestHeader struct {
	key, version int16
	corr         int32
	clientID     string
	// answer, when set, replaces the handler (ApiVersions error answers).
	answer func() (kmsg.Response, error)
}

func parseHeader(buf []byte) (requestHeader, []byte, error) {
	if len(buf) < 10 {
		return requestHeader{}, nil, fmt.Errorf("%w: short request header", errDropConn)
	}
	h := requestHeader{
		key:     int16(binary.BigEndian.Uint16(buf[0:])),
		version: int16(binary.BigEndian.Uint16(buf[2:])),
		corr:    int32(binary.BigEndian.Uint32(buf[4:])),
	}
	n := int16(binary.BigEndian.Uint16(buf[8:]))
	rest := buf[10:]
	if n > 0 {
		if int(n) > len(rest) {
			return requestHeader{}, nil, fmt.Errorf("%w: client id past end of request", errDropConn)
		}
		h.clientID = string(rest[:n])
		rest = rest[n:]
	} else if n < -1 {
		return requestHeader{}, nil, fmt.Errorf("%w: bad client id length", errDropConn)
	}
	return h, rest, nil
}

// skipTags skips the tagged-field section of a flexible request header.
func skipTags(b []byte) ([]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad header tags", errDropConn)
	}
	b = b[used:]
	for i := uint64(0); i < n; i++ {
		if _, used = binary.Uvarint(b); used <= 0 {
			return nil, fmt.Errorf("%w: bad header tag", errDropConn)
		}
		b = b[used:]
		size, used := binary.Uvarint(b)
		if used <= 0 || size > uint64(len(b)-used) {
			return nil, fmt.Errorf("%w: bad header tag size", errDropConn)
		}
		b = b[used+int(size):]
	}
	return b, nil
}

// encodeResponse frames a response: size, correlation id, header tags when
// the response header is flexible (never for ApiVersions), body.
func encodeResponse(dst []byte, corr int32, req kmsg.Request, resp kmsg.Response) []byte {
	resp.SetVersion(req.GetVersion())
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}
