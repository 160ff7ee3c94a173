package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
)

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
		addr, blocked, removed := p.addr, p.blockedLocked, p.removed
		p.mu.Unlock()
		if removed {
			return
		}
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
			if t.ctx.Err() != nil {
				return nil, err // closing, not a refusal
			}
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
			if t.ctx.Err() != nil {
				return nil, err // closing, not a refusal
			}
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
	if !known && !t.acceptUnknown.Load() {
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
	if p == nil {
		// An unknown node admitted by SetAcceptUnknown, now
		// authenticated: it becomes a peer.
		t.mu.Lock()
		p = t.peerLocked(id)
		t.mu.Unlock()
	}
	nc.SetDeadline(time.Time{})
	return t.newConn(nc, p), nil
}
