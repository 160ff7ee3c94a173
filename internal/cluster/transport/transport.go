package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	// acceptUnknown admits authenticated nodes that are not among the
	// peers (SetAcceptUnknown).
	acceptUnknown atomic.Bool

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
	// heard is when the current connection was made or last delivered
	// something (a frame, a keepalive, part of a large frame), in Unix
	// nanoseconds: Alive.
	heard atomic.Int64

	mu            sync.Mutex
	addr          string
	blockedLocked bool
	dialing       bool
	removed       bool    // RemovePeer: a stale peer whose loops end
	conn          *conn   // the established connection, nil if none
	q             encoder // encoded messages waiting for conn's writer
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

// SetAcceptUnknown makes the transport accept a connection from a node
// that is not among its peers, as long as it passes every other check
// (cluster id, secret proof, certificate, the lower id dials). A node
// joining a running cluster needs it: it knows only some members from its
// settings, and the metadata leader, which dials it when it has the lower
// id, may not be one of them. The node accepted becomes a peer without a
// dial address (it dials, having the lower id); SetPeerAddr gives it one.
// Off by default: a running member admits only the nodes of its registry.
func (t *Transport) SetAcceptUnknown(on bool) {
	t.acceptUnknown.Store(on)
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

// Alive reports whether the node is Reachable and something (a frame, or
// the empty frame an idle peer sends every KeepAlive) arrived from it in
// the last three KeepAlive intervals (at most IdleTimeout). A peer that
// hangs with its connection open (a paused process, a stalled machine)
// fails Alive within seconds, long before IdleTimeout closes the
// connection: the multi-Raft host wakes its quiesced groups on it.
func (t *Transport) Alive(to cluster.NodeID) bool {
	if !t.Reachable(to) {
		return false
	}
	p := t.peer(to)
	window := min(3*t.opts.KeepAlive, t.opts.IdleTimeout)
	return time.Since(time.Unix(0, p.heard.Load())) < window
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
