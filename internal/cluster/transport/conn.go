package transport

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// conn is one established connection to a peer.
type conn struct {
	nc     net.Conn
	p      *peer
	signal chan struct{} // the queue has items
	done   chan struct{}
	once   sync.Once
}

func (t *Transport) newConn(nc net.Conn, p *peer) *conn {
	return &conn{nc: nc, p: p, signal: make(chan struct{}, 1), done: make(chan struct{})}
}

// close ends c once: the network connection closes and its goroutines
// stop; serve then detaches it from its peer, which becomes unreachable
// and loses its queue (Raft resends) unless a newer connection took over.
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
	if p.blockedLocked || p.removed || t.ctx.Err() != nil {
		p.mu.Unlock()
		c.close()
		t.untrackConn(c)
		return
	}
	p.conn = c
	p.heard.Store(time.Now().UnixNano())
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
		p.heard.Store(time.Now().UnixNano())
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
			p.heard.Store(time.Now().UnixNano())
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
