package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// Options tune a Transport. Zero values take the defaults.
type Options struct {
	// Logger receives connection events and refusals. Default
	// slog.Default().
	Logger *slog.Logger
	// DialTimeout bounds a TCP connect. Default 5s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the TLS and cluster handshakes together.
	// Default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write of queued frames; a peer that does
	// not read for this long loses its connection. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout: a connection on which nothing arrives for this long
	// is taken as dead (a peer that vanished without a FIN). Default
	// 10s; it must exceed KeepAlive.
	IdleTimeout time.Duration
	// KeepAlive is how often an idle writer sends an empty frame so
	// that the other side's IdleTimeout does not fire. Default 1s.
	KeepAlive time.Duration
	// MaxQueueMessages and MaxQueueBytes bound what waits for one peer
	// (encoded bytes). Past either, new messages to the peer are
	// dropped and counted; Raft resends. Defaults 16384 and 128 MiB.
	MaxQueueMessages int
	MaxQueueBytes    int
	// MaxFrameSize bounds a frame's body, both the frames this node
	// sends and the ones it accepts; a single message larger than this
	// (a huge snapshot) is dropped. Default 64 MiB.
	MaxFrameSize int
	// MaxHandshakes bounds the connections accepted but not yet through
	// the handshake; more are closed at once, so that a flood of
	// unauthenticated connections costs bounded memory. Default 64.
	MaxHandshakes int
	// MinBackoff and MaxBackoff bound the wait between dials of a peer
	// that cannot be reached (doubling from min to max). Defaults 20ms
	// and 1s.
	MinBackoff, MaxBackoff time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 5*time.Second)
	def(&o.HandshakeTimeout, 10*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.KeepAlive, time.Second)
	def(&o.IdleTimeout, 10*time.Second)
	def(&o.MinBackoff, 20*time.Millisecond)
	def(&o.MaxBackoff, time.Second)
	if o.IdleTimeout <= o.KeepAlive {
		o.IdleTimeout = 3 * o.KeepAlive
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxQueueMessages <= 0 {
		o.MaxQueueMessages = 16384
	}
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = 128 << 20
	}
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = 64
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = 64 << 20
	}
	if o.MaxFrameSize < 1024 {
		o.MaxFrameSize = 1024
	}
	if o.MaxFrameSize > 1<<31-1 {
		o.MaxFrameSize = 1<<31 - 1
	}
}

// Transport is the node-to-node transport, a cluster.Transport. See the
// package documentation.
type Transport struct {
	cfg     cluster.Config
	opts    Options
	log     *slog.Logger
	handler func(from cluster.NodeID, envs []cluster.Envelope)

	ctx        context.Context // cancelled by Close
	handshakes chan struct{}   // a slot per accepted connection in its handshake
	lastLog    [numReasons]atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	stats      counters

	// mu guards the fields below. Lock order: Transport.mu before
	// peer.mu; neither is held across network I/O.
	mu      sync.Mutex
	peers   map[cluster.NodeID]*peer
	ln      net.Listener
	started bool
	closed  bool
	conns   map[net.Conn]struct{} // every open connection, closed by Close
}

var _ cluster.Transport = (*Transport)(nil)

// peer is the state kept for one other node.
type peer struct {
	id      cluster.NodeID
	blocked atomic.Bool // mirrors blockedLocked for the reader's hot path
	wake    chan struct{}

	mu            sync.Mutex
	addr          string
	blockedLocked bool
	dialing       bool
	conn          *conn   // the established connection, nil if none
	q             encoder // encoded messages waiting for conn's writer
}

// conn is one established connection to a peer.
type conn struct {
	nc     net.Conn
	p      *peer
	signal chan struct{} // the queue has items
	done   chan struct{}
	once   sync.Once
}

// New makes a transport for the node cfg describes. cfg must be Enabled
// and valid.
func New(cfg cluster.Config, opts Options) (*Transport, error) {
	if !cfg.Enabled() {
		return nil, errors.New("cluster transport: no node id")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if (cfg.ServerTLS == nil) != (cfg.ClientTLS == nil) {
		return nil, errors.New("cluster transport: TLS needs both a server and a client configuration")
	}
	if len(cfg.ClusterID) > maxClusterID {
		return nil, fmt.Errorf("cluster id longer than %d bytes", maxClusterID)
	}
	opts.setDefaults()
	t := &Transport{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger.With("node", cfg.NodeID),
		handler: func(cluster.NodeID, []cluster.Envelope) {},
		peers:   make(map[cluster.NodeID]*peer),
		conns:   make(map[net.Conn]struct{}),
	}
	t.handshakes = make(chan struct{}, opts.MaxHandshakes)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	for id, addr := range cfg.Peers {
		if id != cfg.NodeID {
			t.peerLocked(id).addr = addr
		}
	}
	return t, nil
}

// peerLocked returns the peer with this id, made if need be. t.mu held
// (or t not yet shared).
func (t *Transport) peerLocked(id cluster.NodeID) *peer {
	p := t.peers[id]
	if p == nil {
		p = &peer{id: id, wake: make(chan struct{}, 1)}
		p.q.from, p.q.to = t.cfg.NodeID, id
		t.peers[id] = p
	}
	return p
}

func (t *Transport) peer(id cluster.NodeID) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peers[id]
}

// SetHandler implements cluster.Transport.
func (t *Transport) SetHandler(h func(from cluster.NodeID, envs []cluster.Envelope)) {
	t.handler = h
}

// Start listens on cfg.Addr (default the node's own peer address) and
// dials the peers with higher node ids.
func (t *Transport) Start() error {
	addr := t.cfg.Addr
	if addr == "" {
		addr = t.cfg.Peers[t.cfg.NodeID]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cluster listener: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.started {
		ln.Close()
		return errors.New("cluster transport: already started or closed")
	}
	t.ln, t.started = ln, true
	t.wg.Add(1)
	go t.acceptLoop(ln)
	for _, p := range t.peers {
		t.maybeDialLocked(p)
	}
	t.log.Info("cluster transport listening", "addr", ln.Addr().String(), "tls", t.cfg.ServerTLS != nil)
	return nil
}

// maybeDialLocked starts p's dial loop if this node is the one to dial
// it (the lower id dials) and it has none yet. t.mu held.
func (t *Transport) maybeDialLocked(p *peer) {
	if !t.started || t.closed || p.id < t.cfg.NodeID {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dialing || p.addr == "" {
		return
	}
	p.dialing = true
	t.wg.Add(1)
	go t.dialLoop(p)
}

// Addr returns the address the transport listens on, "" before Start.
func (t *Transport) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// SetPeerAddr adds a peer or changes its address (a node that joined, or
// a test's port chosen at Start). A connection this node dialled to the
// old address is closed so that the next dial goes to the new one.
func (t *Transport) SetPeerAddr(id cluster.NodeID, addr string) {
	if id == t.cfg.NodeID || id == 0 {
		return
	}
	t.mu.Lock()
	p := t.peerLocked(id)
	p.mu.Lock()
	old, c := p.addr, p.conn
	p.addr = addr
	p.mu.Unlock()
	t.maybeDialLocked(p)
	t.mu.Unlock()
	if old != addr && c != nil && id > t.cfg.NodeID {
		c.close()
	}
	p.poke()
}

// poke wakes p's dial loop.
func (p *peer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Block drops everything to and from peer while blocked is true, like a
// network partition: the connection is closed, not redialled, and a
// connection from the peer is refused (ReasonBlocked). Blocking one side
// partitions both. For fault-injection tests; cheap when unused.
func (t *Transport) Block(id cluster.NodeID, blocked bool) {
	if id == t.cfg.NodeID || id == 0 {
		return
	}
	t.mu.Lock()
	p := t.peerLocked(id)
	t.mu.Unlock()
	p.mu.Lock()
	p.blockedLocked = blocked
	p.blocked.Store(blocked)
	c := p.conn
	p.mu.Unlock()
	if blocked && c != nil {
		c.close()
	}
	p.poke()
}

// Reachable implements cluster.Transport.
func (t *Transport) Reachable(to cluster.NodeID) bool {
	p := t.peer(to)
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn != nil && !p.blockedLocked
}

// Send implements cluster.Transport. It encodes envs into the peer's
// queue at once (so the caller may reuse them) and never blocks on the
// network.
func (t *Transport) Send(to cluster.NodeID, envs []cluster.Envelope) {
	if len(envs) == 0 {
		return
	}
	p := t.peer(to)
	if p == nil {
		t.stats.dropUnreachable.Add(uint64(len(envs)))
		return
	}
	p.mu.Lock()
	if p.blockedLocked {
		p.mu.Unlock()
		t.stats.dropBlocked.Add(uint64(len(envs)))
		return
	}
	c := p.conn
	if c == nil {
		p.mu.Unlock()
		t.stats.dropUnreachable.Add(uint64(len(envs)))
		return
	}
	var full, oversize, invalid uint64
	for i := range envs {
		if len(p.q.items) >= t.opts.MaxQueueMessages || len(p.q.buf) >= t.opts.MaxQueueBytes {
			full++
			continue
		}
		n, err := p.q.add(&envs[i])
		switch {
		case err != nil:
			invalid++
			t.log.Error("cluster message not sendable", "peer", to, "group", envs[i].Group, "err", err)
		case n > t.opts.MaxFrameSize-runOverhead:
			p.q.undo()
			oversize++
		case len(p.q.buf) > t.opts.MaxQueueBytes:
			p.q.undo()
			full++
		}
	}
	p.mu.Unlock()
	if full > 0 {
		t.stats.dropQueueFull.Add(full)
	}
	if oversize > 0 {
		t.stats.dropOversize.Add(oversize)
	}
	if invalid > 0 {
		t.stats.dropInvalid.Add(invalid)
	}
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// Close stops listening, closes every connection and waits for the
// transport's goroutines. The handler is not called after Close returns.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	if t.ln != nil {
		t.ln.Close()
	}
	for nc := range t.conns {
		nc.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// track registers an open connection so that Close can close it; false
// when the transport is closing (the caller closes nc).
func (t *Transport) track(nc net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[nc] = struct{}{}
	return true
}

func (t *Transport) untrack(nc net.Conn) {
	t.mu.Lock()
	delete(t.conns, nc)
	t.mu.Unlock()
}

// sleep waits d, or until p is poked; false when the transport closes.
func (t *Transport) sleep(d time.Duration, p *peer) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-p.wake:
	case <-t.ctx.Done():
		return false
	}
	return true
}

// dialLoop keeps a connection to p up while the transport runs: dial,
// handshake, serve until it fails, back off, again.
func (t *Transport) dialLoop(p *peer) {
	defer t.wg.Done()
	backoff := t.opts.MinBackoff
	for t.ctx.Err() == nil {
		p.mu.Lock()
		addr, blocked := p.addr, p.blockedLocked
		p.mu.Unlock()
		if blocked {
			if !t.sleep(time.Hour, p) {
				return
			}
			continue
		}
		c, err := t.dial(p, addr)
		if err != nil {
			t.log.Debug("cluster dial failed", "peer", p.id, "addr", addr, "err", err)
			if !t.sleep(backoff, p) {
				return
			}
			backoff = min(2*backoff, t.opts.MaxBackoff)
			continue
		}
		// A connection that fails at once (a peer that accepts and
		// drops) keeps the backoff growing; one that lived resets it.
		up := time.Now()
		t.serve(c)
		if time.Since(up) > t.opts.MaxBackoff {
			backoff = t.opts.MinBackoff
		}
		if !t.sleep(backoff, p) {
			return
		}
		backoff = min(2*backoff, t.opts.MaxBackoff)
	}
}

func (t *Transport) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Error("cluster listener failed", "err", err)
			return
		}
		select {
		case t.handshakes <- struct{}{}:
		default:
			t.log.Warn("cluster connection closed: too many handshakes under way", "remote", nc.RemoteAddr().String())
			nc.Close()
			continue
		}
		if !t.track(nc) {
			nc.Close()
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			c, err := t.accept(nc)
			<-t.handshakes
			if err != nil {
				nc.Close()
				t.untrack(nc)
				return
			}
			t.serve(c)
		}()
	}
}

// refusal is a handshake refused for a reason.
type refusal struct {
	reason Reason
	detail string
}

func (r *refusal) Error() string { return r.reason.String() + ": " + r.detail }

// refuse counts and logs a refusal, tells the other side why (best
// effort: the handshake deadline bounds it) and returns the error.
func (t *Transport) refuse(nc net.Conn, tell bool, claimed cluster.NodeID, reason Reason, detail string) error {
	t.stats.refusals[reason].Add(1)
	level := t.refusalLevel(reason)
	t.log.Log(context.Background(), level, "cluster connection refused", "reason", reason.String(),
		"remote", nc.RemoteAddr().String(), "claimed_node", claimed, "detail", detail)
	if tell {
		msg := reason.String()
		writeRecord(nc, recRefuse, []byte(msg))
	}
	return &refusal{reason, detail}
}

// refusalLogEvery is how often a refusal reason is logged at Warn: a
// misconfigured peer redials every MaxBackoff and would otherwise fill
// the log. The counters count every refusal.
const refusalLogEvery = 30 * time.Second

// refusalLevel is Warn for the first refusal of a reason in
// refusalLogEvery, Debug for the rest and for Block's refusals.
func (t *Transport) refusalLevel(r Reason) slog.Level {
	if r == ReasonBlocked {
		return slog.LevelDebug
	}
	now := time.Now().UnixNano()
	last := t.lastLog[r].Load()
	if now-last < int64(refusalLogEvery) || !t.lastLog[r].CompareAndSwap(last, now) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// peerRefused handles a refusal record from the other side.
func (t *Transport) peerRefused(nc net.Conn, body []byte) error {
	t.stats.refusals[ReasonByPeer].Add(1)
	if len(body) > maxReason {
		body = body[:maxReason]
	}
	reason := strconv.QuoteToASCII(string(body))
	t.log.Log(context.Background(), t.refusalLevel(ReasonByPeer), "cluster peer refused this node",
		"remote", nc.RemoteAddr().String(), "reason", reason)
	return &refusal{ReasonByPeer, reason}
}

// certNodePrefix is the common-name prefix that binds a certificate to
// one node: a certificate whose subject CN is "sluice-node-<id>" is
// valid for node <id> only.
const certNodePrefix = "sluice-node-"

// checkCert applies the certificate rule to a TLS connection whose peer
// claims to be node id: a certificate the peer presented must have
// verified against our CA (tls.Config's ClientCAs or RootCAs), and a
// certificate naming a node ("sluice-node-<id>") must name this one.
func checkCert(st tls.ConnectionState, id cluster.NodeID) error {
	if len(st.PeerCertificates) == 0 {
		return nil
	}
	if len(st.VerifiedChains) == 0 {
		return errors.New("certificate not verified against the CA")
	}
	return certNamesNode(st.PeerCertificates[0], id)
}

func certNamesNode(cert *x509.Certificate, id cluster.NodeID) error {
	cn := cert.Subject.CommonName
	if rest, ok := strings.CutPrefix(cn, certNodePrefix); ok && rest != strconv.FormatUint(id, 10) {
		return fmt.Errorf("certificate for %q presented by node %d", cn, id)
	}
	return nil
}

// dial connects to p at addr and runs the dialer's side of the
// handshake.
func (t *Transport) dial(p *peer, addr string) (*conn, error) {
	d := net.Dialer{Timeout: t.opts.DialTimeout}
	nc, err := d.DialContext(t.ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if !t.track(nc) {
		nc.Close()
		return nil, net.ErrClosed
	}
	c, err := t.dialHandshake(nc, p, addr)
	if err != nil {
		nc.Close()
		t.untrack(nc)
		return nil, err
	}
	return c, nil
}

func (t *Transport) dialHandshake(raw net.Conn, p *peer, addr string) (*conn, error) {
	nc := raw
	nc.SetDeadline(time.Now().Add(t.opts.HandshakeTimeout))
	if t.cfg.ClientTLS != nil {
		cfg := t.cfg.ClientTLS.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			return nil, t.refuse(nc, false, p.id, ReasonTLS, err.Error())
		}
		if err := checkCert(tc.ConnectionState(), p.id); err != nil {
			return nil, t.refuse(tc, true, p.id, ReasonCertificate, err.Error())
		}
		nc = tc
	}
	mine, err := newHello(t.cfg.NodeID, t.cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	if err := writeRecord(nc, recHello, mine.appendTo(nil)); err != nil {
		return nil, err
	}
	typ, body, err := readRecord(nc)
	if err != nil {
		return nil, err
	}
	if typ == recRefuse {
		return nil, t.peerRefused(nc, body)
	}
	if typ != recHello {
		return nil, t.refuse(nc, true, p.id, ReasonProtocol, "expected a hello")
	}
	theirs, err := decodeHello(body)
	switch {
	case err != nil:
		return nil, t.refuse(nc, true, p.id, ReasonProtocol, err.Error())
	case theirs.ClusterID != t.cfg.ClusterID:
		return nil, t.refuse(nc, true, theirs.NodeID, ReasonClusterID, fmt.Sprintf("cluster %q", theirs.ClusterID))
	case theirs.NodeID != p.id:
		return nil, t.refuse(nc, true, theirs.NodeID, ReasonUnexpected, fmt.Sprintf("dialled node %d at %s", p.id, addr))
	}
	var pr []byte
	if len(t.cfg.Secret) > 0 {
		pr = proof(t.cfg.Secret, roleDialer, t.cfg.ClusterID, &mine, &theirs)
	}
	if err := writeRecord(nc, recProof, pr); err != nil {
		return nil, err
	}
	typ, body, err = readRecord(nc)
	if err != nil {
		return nil, err
	}
	switch {
	case typ == recRefuse:
		return nil, t.peerRefused(nc, body)
	case typ != recOK:
		return nil, t.refuse(nc, true, p.id, ReasonProtocol, "expected ok")
	case !checkProof(t.cfg.Secret, body, roleAcceptor, t.cfg.ClusterID, &mine, &theirs):
		return nil, t.refuse(nc, true, p.id, ReasonProof, "bad or missing secret proof")
	}
	nc.SetDeadline(time.Time{})
	return t.newConn(nc, p), nil
}

// accept runs the acceptor's side of the handshake on a new connection.
func (t *Transport) accept(raw net.Conn) (*conn, error) {
	nc := raw
	nc.SetDeadline(time.Now().Add(t.opts.HandshakeTimeout))
	var certState *tls.ConnectionState
	if t.cfg.ServerTLS != nil {
		tc := tls.Server(nc, t.cfg.ServerTLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			return nil, t.refuse(nc, false, 0, ReasonTLS, err.Error())
		}
		st := tc.ConnectionState()
		certState = &st
		nc = tc
	}
	typ, body, err := readRecord(nc)
	if err != nil {
		if errors.Is(err, errProtocol) {
			return nil, t.refuse(nc, true, 0, ReasonProtocol, err.Error())
		}
		return nil, err
	}
	if typ != recHello {
		return nil, t.refuse(nc, true, 0, ReasonProtocol, "expected a hello")
	}
	theirs, err := decodeHello(body)
	if err != nil {
		return nil, t.refuse(nc, true, 0, ReasonProtocol, err.Error())
	}
	id := theirs.NodeID
	if theirs.ClusterID != t.cfg.ClusterID {
		return nil, t.refuse(nc, true, id, ReasonClusterID, fmt.Sprintf("cluster %q", theirs.ClusterID))
	}
	if id == t.cfg.NodeID {
		return nil, t.refuse(nc, true, id, ReasonSameNode, "a node with our id")
	}
	p := t.peer(id)
	known, blocked := false, false
	if p != nil {
		p.mu.Lock()
		known, blocked = p.addr != "", p.blockedLocked
		p.mu.Unlock()
	}
	if !known {
		return nil, t.refuse(nc, true, id, ReasonUnknownNode, "not among the peers")
	}
	if id > t.cfg.NodeID {
		return nil, t.refuse(nc, true, id, ReasonDirection, "the node with the lower id dials")
	}
	if certState != nil {
		if err := checkCert(*certState, id); err != nil {
			return nil, t.refuse(nc, true, id, ReasonCertificate, err.Error())
		}
	}
	if blocked {
		return nil, t.refuse(nc, true, id, ReasonBlocked, "blocked")
	}
	mine, err := newHello(t.cfg.NodeID, t.cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	if err := writeRecord(nc, recHello, mine.appendTo(nil)); err != nil {
		return nil, err
	}
	typ, body, err = readRecord(nc)
	if err != nil {
		return nil, err
	}
	switch {
	case typ == recRefuse:
		return nil, t.peerRefused(nc, body)
	case typ != recProof:
		return nil, t.refuse(nc, true, id, ReasonProtocol, "expected a proof")
	case !checkProof(t.cfg.Secret, body, roleDialer, t.cfg.ClusterID, &theirs, &mine):
		return nil, t.refuse(nc, true, id, ReasonProof, "bad or missing secret proof")
	}
	var pr []byte
	if len(t.cfg.Secret) > 0 {
		pr = proof(t.cfg.Secret, roleAcceptor, t.cfg.ClusterID, &theirs, &mine)
	}
	if err := writeRecord(nc, recOK, pr); err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return t.newConn(nc, p), nil
}

func (t *Transport) newConn(nc net.Conn, p *peer) *conn {
	return &conn{nc: nc, p: p, signal: make(chan struct{}, 1), done: make(chan struct{})}
}

// close ends c once: the network connection closes, its goroutines
// stop, and if it is still p's connection, p becomes unreachable and its
// queue is dropped (Raft resends).
func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// serve installs c as its peer's connection, runs its writer, reads
// until it fails, and cleans up.
func (t *Transport) serve(c *conn) {
	p := c.p
	p.mu.Lock()
	old := p.conn
	if p.blockedLocked || t.ctx.Err() != nil {
		p.mu.Unlock()
		c.close()
		t.untrackConn(c)
		return
	}
	p.conn = c
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	t.stats.handshakes.Add(1)
	t.log.Info("cluster peer connected", "peer", p.id, "remote", c.nc.RemoteAddr().String())

	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := t.writeLoop(c)
		if err != nil {
			t.log.Debug("cluster writer stopped", "peer", p.id, "err", err)
		}
		c.close()
	}()
	err := t.readLoop(c)
	c.close()
	p.mu.Lock()
	if p.conn == c {
		p.conn = nil
		if n := len(p.q.items); n > 0 {
			t.stats.dropUnreachable.Add(uint64(n))
		}
		p.q.reset()
	}
	p.mu.Unlock()
	t.untrackConn(c)
	if t.ctx.Err() == nil {
		t.log.Info("cluster peer disconnected", "peer", p.id, "err", err)
	}
}

// untrackConn forgets c's TCP connection. The TLS conn wraps the TCP one
// it was made from; Close closes the TCP one, which ends both.
func (t *Transport) untrackConn(c *conn) {
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	t.untrack(nc)
}

// writeLoop sends what Send queues for c's peer: everything queued when
// it wakes goes out in as few frames as the frame size allows, in one
// write with a deadline. An idle connection gets an empty frame every
// KeepAlive.
func (t *Transport) writeLoop(c *conn) error {
	p := c.p
	spare := encoder{from: t.cfg.NodeID, to: p.id}
	var out []byte
	tick := time.NewTicker(t.opts.KeepAlive)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		keepalive := false
		select {
		case <-c.signal:
		case <-tick.C:
			keepalive = time.Since(lastWrite) >= t.opts.KeepAlive/2
		case <-c.done:
			return nil
		}
		p.mu.Lock()
		if p.conn != c {
			p.mu.Unlock()
			return nil
		}
		p.q, spare = spare, p.q
		p.mu.Unlock()
		msgs, compacts := len(spare.items), spare.compacts
		var frames int
		out, frames = spare.frames(out[:0], t.opts.MaxFrameSize)
		if frames == 0 {
			if !keepalive {
				continue
			}
			out = append(out, 0, 0, 0, 0)
		}
		c.nc.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
		if _, err := c.nc.Write(out); err != nil {
			return err
		}
		lastWrite = time.Now()
		t.stats.framesSent.Add(uint64(frames))
		t.stats.messagesSent.Add(uint64(msgs))
		t.stats.heartbeatsCoalesced.Add(uint64(compacts))
		t.stats.bytesSent.Add(uint64(len(out)))
		spare.reset()
		// Do not keep a snapshot-sized buffer for a quiet connection.
		if cap(out) > 4<<20 {
			out = nil
		}
		if cap(spare.buf) > 4<<20 {
			spare.buf = nil
		}
	}
}

// readChunk is how much of a large frame is read at a time: memory grows
// with the bytes that arrive, not with what a length prefix claims.
const readChunk = 1 << 20

// readLoop reads frames from c and hands their envelopes to the handler.
func (t *Transport) readLoop(c *conn) error {
	p := c.p
	var hdr [frameHeader]byte
	var buf []byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(t.opts.IdleTimeout))
		if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > t.opts.MaxFrameSize {
			return fmt.Errorf("frame of %d bytes, limit %d", n, t.opts.MaxFrameSize)
		}
		t.stats.bytesReceived.Add(uint64(frameHeader + n))
		if n == 0 {
			continue // keepalive
		}
		buf = buf[:0]
		for len(buf) < n {
			k := min(n-len(buf), readChunk)
			if cap(buf)-len(buf) < k {
				nb := make([]byte, len(buf), len(buf)+max(k, len(buf)))
				copy(nb, buf)
				buf = nb
			}
			if _, err := io.ReadFull(c.nc, buf[len(buf):len(buf)+k]); err != nil {
				return err
			}
			buf = buf[:len(buf)+k]
		}
		envs, err := DecodeFrame(buf, p.id, t.cfg.NodeID)
		if err != nil {
			t.log.Warn("cluster peer sent a bad frame", "peer", p.id, "err", err)
			return err
		}
		t.stats.framesReceived.Add(1)
		t.stats.messagesReceived.Add(uint64(len(envs)))
		if cap(buf) > 4*readChunk {
			buf = nil
		}
		if p.blocked.Load() {
			t.stats.dropInbound.Add(uint64(len(envs)))
			continue
		}
		select {
		case <-c.done:
			return nil
		default:
		}
		t.handler(p.id, envs)
	}
}
