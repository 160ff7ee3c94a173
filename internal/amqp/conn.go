package amqp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/sluice-mq/sluice/internal/iocount"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// conn is one AMQP connection.
type conn struct {
	s   *Server
	nc  net.Conn
	id  string // owner id for exclusive queues
	log *slog.Logger
	fr  *wire.FrameReader
	md  wire.MethodDecoder // used by the read loop only
	// publishes counts basic.publish frames read, up to growReadAfter
	// (read loop only).
	publishes int

	out    outBuf        // frames on their way to the writer
	dead   chan struct{} // closed when the connection is finished
	wdone  chan struct{} // writer exited
	once   sync.Once
	closeW chan struct{}

	frameMax   uint32
	channelMax uint16
	heartbeat  time.Duration
	// beat counts the heartbeat goroutine's ticks (every half interval);
	// the read deadline is pushed out once per tick, not on every frame.
	beat, deadlineBeat atomic.Int64
	// partial: the read loop waits for the rest of a started frame, under
	// the frame timeout (read loop only).
	partial bool

	user  string
	vhost string
	perm  auth.Permission
	// topicPerms are the user's topic permissions in vhost, by exchange
	// (topic_permissions.go); set with perm.
	topicPerms map[string]broker.TopicPermission

	flow connFlow // resource-alarm flow control, see flow.go
	// stats count the connection's messages into its vhost's; set with
	// the vhost, before any channel opens.
	stats *broker.MessageStats

	mu       sync.Mutex
	channels map[uint16]*channel
	closing  bool // connection.close sent, waiting for close-ok
	// admitted: counted by the vhost and user limits (limits.go; under
	// Server.mu).
	admitted bool
	info     *connInfo // set once the handshake is done; see registry.go
	// overTLS: the connection came through a TLS listener (AMQPS; its
	// limit refusals and drops are counted apart, TLSLimitHooks).
	overTLS bool
}

func newConn(s *Server, nc net.Conn) *conn {
	id := strconv.FormatUint(s.nextConn.Add(1), 10)
	c := &conn{
		s: s, nc: nc, id: "conn-" + id,
		log:      s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		dead:     make(chan struct{}),
		wdone:    make(chan struct{}),
		closeW:   make(chan struct{}),
		frameMax: wire.FrameMinSize,
		channels: map[uint16]*channel{},
	}
	c.out.cond.L = &c.out.mu
	c.out.wake = make(chan struct{}, 1)
	_, c.overTLS = nc.(*tls.Conn)
	return c
}

// outBuf is what the connection has to send: frames appended in order by
// any goroutine, taken whole by the writer, which writes them with one
// system call. Deliveries are encoded straight into it (beginOut,
// endOut): no buffer of their own, no hand-off through a channel per
// frame, no second copy into a write buffer. An idle connection holds no
// buffer (they come from and go back to outBufs).
type outBuf struct {
	mu   sync.Mutex
	cond sync.Cond // senders waiting for room (L is mu)
	buf  []byte
	dead bool          // the connection is finished: nothing more is sent
	wake chan struct{} // capacity 1: the buffer went from empty to not
}

// maxOut is how much may wait for the writer before senders wait for it
// (backpressure from a client that reads slowly); a single larger frame
// still goes in.
const maxOut = 1 << 20

// outBufs recycles output buffers; one past maxPooledOut (a big message's)
// is left to the collector.
var outBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledOut = 4 << 20

// outBufPtrs keeps the pointers outBufs hands out, so that giving a
// buffer back does not allocate one.
var outBufPtrs = sync.Pool{New: func() any { return new([]byte) }}

func getOutBuf() []byte {
	p := outBufs.Get().(*[]byte)
	b := *p
	*p = nil
	outBufPtrs.Put(p)
	if b == nil {
		b = make([]byte, 0, 64<<10)
	}
	return b[:0]
}

func putOutBuf(b []byte) {
	if b == nil || cap(b) > maxPooledOut {
		return
	}
	p := outBufPtrs.Get().(*[]byte)
	*p = b[:0]
	outBufs.Put(p)
}

// beginOut waits for room in the output and returns it, locked, for the
// caller to append frames to and hand back with endOut. ok is false (and
// nothing locked) once the connection is finished.
func (c *conn) beginOut() (b []byte, ok bool) {
	o := &c.out
	o.mu.Lock()
	for len(o.buf) >= maxOut && !o.dead {
		o.cond.Wait()
	}
	if o.dead {
		o.mu.Unlock()
		return nil, false
	}
	if o.buf == nil {
		o.buf = getOutBuf()
	}
	return o.buf, true
}

// endOut stores what beginOut returned, frames appended, and wakes the
// writer if it had nothing to write.
func (c *conn) endOut(b []byte) {
	o := &c.out
	wasEmpty := len(o.buf) == 0
	o.buf = b
	o.mu.Unlock()
	if wasEmpty && len(b) > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// send hands encoded frames to the writer, in order. It blocks while the
// writer is behind (backpressure) and gives up when the connection is gone.
func (c *conn) send(frames []byte) bool {
	b, ok := c.beginOut()
	if !ok {
		return false
	}
	c.endOut(append(b, frames...))
	return true
}

func (c *conn) sendMethod(ch uint16, m wire.Method) bool {
	return c.send(wire.AppendMethodFrame(nil, ch, m))
}

// takeOut hands the writer everything waiting and lets waiting senders
// go on.
func (c *conn) takeOut() []byte {
	o := &c.out
	o.mu.Lock()
	b := o.buf
	o.buf = nil
	o.cond.Broadcast()
	o.mu.Unlock()
	return b
}

// endOutput refuses further sends and releases senders waiting for room:
// the connection is finished.
func (c *conn) endOutput() {
	o := &c.out
	o.mu.Lock()
	o.dead = true
	putOutBuf(o.buf)
	o.buf = nil
	o.cond.Broadcast()
	o.mu.Unlock()
}

// writer owns the socket's write side: it writes whatever the output
// holds, all of it in one system call, whenever it holds something.
func (c *conn) writer() {
	defer close(c.wdone)
	sock := iocount.Writer{W: c.nc, H: c.s.opts.Hooks}
	write := func() bool {
		b := c.takeOut()
		if len(b) == 0 {
			putOutBuf(b)
			return true
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		_, err := sock.Write(b)
		putOutBuf(b)
		if err != nil && isTimeout(err) {
			c.log.Info("client took no data, closing", "write_timeout", c.s.opts.WriteTimeout)
			c.dropped("write_timeout")
		}
		return err == nil
	}
	for {
		select {
		case <-c.out.wake:
			if !write() {
				c.nc.Close()
				return
			}
		case <-c.closeW:
			// Write what is queued (a connection.close, say), then stop.
			write()
			return
		}
	}
}

// A connection reads with bufio's 4 KiB buffer, three or four 1 KiB
// publishes a system call; one that has published growReadAfter messages
// reads with busyReadBuffer, dozens a call. Idle and occasional
// connections keep the small buffer (their memory is per connection).
const (
	growReadAfter  = 256
	busyReadBuffer = 64 << 10
)

// serve runs the connection to its end.
func (c *conn) serve() {
	defer c.nc.Close()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.nc.SetDeadline(time.Now().Add(c.s.opts.HandshakeTimeout))
	if err := c.tlsHandshake(); err != nil {
		c.log.Info("TLS handshake failed", "err", err)
		return
	}
	if err := wire.ReadProtocolHeader(c.nc); err != nil {
		if errors.Is(err, wire.ErrBadProtocolHeader) {
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			c.nc.Write(wire.ProtocolHeader)
			c.lingerClose()
		}
		return
	}
	c.fr = wire.NewFrameReader(iocount.Reader{R: c.nc, H: c.s.opts.Hooks})
	go c.writer()
	defer c.finish()
	if err := c.handshake(); err != nil {
		if isTimeout(err) {
			c.log.Info("handshake not done in time, closing", "handshake_timeout", c.s.opts.HandshakeTimeout)
			c.dropped("handshake_timeout")
		}
		var ae *amqpError
		if errors.As(err, &ae) {
			c.closeWith(ae)
			c.awaitCloseOk()
		}
		c.log.Debug("handshake failed", "err", err)
		return
	}
	c.nc.SetDeadline(time.Time{})
	c.fr.OnPartial = c.framePartial
	c.log.Debug("connection open", "user", c.user, "vhost", c.vhost)
	c.readLoop()
}

// release closes the connection's channels (their unacked messages go
// back to their queues) and deletes its exclusive queues. It runs before
// connection.close-ok, so that a client that closed its connection finds
// them gone, as with RabbitMQ; and again, doing nothing more, in finish.
func (c *conn) release() {
	c.mu.Lock()
	chans := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chans = append(chans, ch)
	}
	c.channels = map[uint16]*channel{}
	c.mu.Unlock()
	for _, ch := range chans {
		ch.release()
		c.s.opts.Hooks.ChannelClosed()
		c.channelGone()
	}
	c.s.router.ReleaseOwner(c.id)
}

// finish releases everything the connection holds.
func (c *conn) finish() {
	c.once.Do(func() {
		c.release()
		close(c.closeW)
		<-c.wdone
		close(c.dead)
		c.endOutput()
		c.unregister() // gone from the management API while it lingers
		c.lingerClose()
	})
}

// lingerClose closes the socket the orderly way: the server's side is shut
// first (a FIN after everything written, a connection.close-ok say), then
// what the client still sends (frames that crossed the close, a last
// heartbeat) is read and dropped until the client closes its side, for at
// most lingerTimeout. Closing a socket with unread input makes the kernel
// send a reset instead, and the client may then report "connection reset
// by peer" for an orderly close, or lose the close-ok itself.
func (c *conn) lingerClose() {
	defer c.nc.Close()
	// A TCP connection, or a TLS one (whose CloseWrite sends TLS's
	// close_notify first).
	tc, ok := c.nc.(interface {
		io.Reader
		CloseWrite() error
		SetReadDeadline(time.Time) error
	})
	if !ok {
		return
	}
	if tc.CloseWrite() != nil {
		return // the socket is gone already
	}
	tc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(tc, lingerMaxBytes))
}

// shutdown closes the connection from the server side (broker stopping).
func (c *conn) shutdown() {
	c.closeWith(errorf(wire.ConnectionForced, "broker forced connection closure with reason 'shutdown'"))
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
}

// framePartial starts the frame timeout: the header of a frame has
// arrived and its rest is not here yet.
func (c *conn) framePartial() {
	c.partial = true
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.FrameTimeout))
}

func (c *conn) readFrame() (wire.Frame, error) {
	// After a frame read under the frame timeout, the heartbeat deadline
	// (or none) comes back.
	if c.partial {
		c.partial = false
		c.deadlineBeat.Store(-1)
		if c.heartbeat == 0 {
			c.nc.SetReadDeadline(time.Time{})
		}
	}
	// A client silent for two heartbeat intervals is dead. The deadline
	// moves at most once per half interval, so it allows two and a half
	// intervals after the read that set it, and so at least two after
	// the last frame.
	if c.heartbeat > 0 {
		if b := c.beat.Load(); b != c.deadlineBeat.Load() || b == 0 {
			c.deadlineBeat.Store(b)
			c.nc.SetReadDeadline(time.Now().Add(2*c.heartbeat + c.heartbeat/2))
		}
	}
	return c.fr.ReadFrame()
}

// handshake runs start / start-ok / tune / tune-ok / open.
func (c *conn) handshake() error {
	o := &c.s.opts
	c.sendMethod(0, &wire.ConnectionStart{
		VersionMajor: 0, VersionMinor: 9,
		ServerProperties: fieldtable.Table{
			"product":      "Sluice",
			"version":      o.Version,
			"platform":     runtime.Version(), // go1.26.0, as RabbitMQ sends "Erlang/OTP 26"
			"copyright":    "Sluice authors",
			"information":  "https://github.com/sluice-mq/sluice",
			"cluster_name": "sluice",
			"capabilities": fieldtable.Table{
				"publisher_confirms":           true,
				"exchange_exchange_bindings":   true,
				"basic.nack":                   true,
				"consumer_cancel_notify":       true,
				"connection.blocked":           true,
				"consumer_priorities":          true,
				"authentication_failure_close": true,
				"per_consumer_qos":             true,
				"direct_reply_to":              true,
			},
		},
		Mechanisms: c.mechanisms(),
		Locales:    "en_US",
	})
	m, err := c.expect(&wire.ConnectionStartOk{})
	if err != nil {
		return err
	}
	so := m.(*wire.ConnectionStartOk)
	if caps, ok := so.ClientProperties["capabilities"].(fieldtable.Table); ok {
		c.flow.notify, _ = caps["connection.blocked"].(bool)
	}
	if so.Mechanism == mechanismExternal {
		if err := c.authenticateExternal(); err != nil {
			return err
		}
	} else {
		user, pass, err := parseCredentials(so.Mechanism, []byte(so.Response))
		if err != nil {
			c.log.Info("login refused", "mechanism", so.Mechanism, "reason", err.Error())
			if h, ok := c.s.opts.Hooks.(AuthHooks); ok {
				h.AuthFailed(so.Mechanism)
			}
			return &amqpError{code: wire.AccessRefused, text: fmt.Sprintf("ACCESS_REFUSED - %v", err), classID: 10, methodID: 11}
		}
		if err := c.authenticate(user, pass, so.Mechanism); err != nil {
			return err
		}
	}
	c.sendMethod(0, &wire.ConnectionTune{ChannelMax: o.ChannelMax, FrameMax: o.FrameMax, Heartbeat: uint16(o.Heartbeat / time.Second)})
	m, err = c.expect(&wire.ConnectionTuneOk{})
	if err != nil {
		return err
	}
	to := m.(*wire.ConnectionTuneOk)
	c.channelMax = o.ChannelMax
	if to.ChannelMax != 0 && to.ChannelMax < c.channelMax {
		c.channelMax = to.ChannelMax
	}
	c.frameMax = o.FrameMax
	if to.FrameMax != 0 {
		if to.FrameMax < wire.FrameMinSize || to.FrameMax > o.FrameMax {
			return &amqpError{code: wire.NotAllowed, text: fmt.Sprintf("NOT_ALLOWED - frame_max %d outside %d..%d", to.FrameMax, wire.FrameMinSize, o.FrameMax), classID: 10, methodID: 31}
		}
		c.frameMax = to.FrameMax
	}
	c.fr.SetMaxFrame(c.frameMax)
	c.heartbeat = time.Duration(to.Heartbeat) * time.Second
	if c.heartbeat > 0 {
		go c.heartbeats()
	}
	m, err = c.expect(&wire.ConnectionOpen{})
	if err != nil {
		return err
	}
	op := m.(*wire.ConnectionOpen)
	if !c.s.router.VhostExists(op.VirtualHost) {
		return &amqpError{code: wire.NotAllowed, text: fmt.Sprintf("NOT_ALLOWED - vhost %s not found", op.VirtualHost), classID: 10, methodID: 40}
	}
	p, ok := c.s.accts.Permission(c.user, op.VirtualHost)
	if !ok {
		return &amqpError{code: wire.NotAllowed, text: fmt.Sprintf("NOT_ALLOWED - access to vhost '%s' refused for user '%s'", op.VirtualHost, c.user), classID: 10, methodID: 40}
	}
	if err := c.admit(c.user, op.VirtualHost); err != nil {
		return err
	}
	c.vhost = op.VirtualHost
	c.perm = auth.Permission{Configure: p.Configure, Write: p.Write, Read: p.Read}
	c.loadTopicPermissions()
	c.stats = broker.NewMessageStats(c.s.router.VhostStats(op.VirtualHost))
	c.opened(so.Mechanism, so.ClientProperties)
	c.sendMethod(0, &wire.ConnectionOpenOk{})
	return nil
}

// heartbeats sends a heartbeat frame every half interval; the writer
// coalesces it with whatever else is going out.
func (c *conn) heartbeats() {
	t := time.NewTicker(c.heartbeat / 2)
	defer t.Stop()
	hb := wire.AppendFrame(nil, wire.FrameHeartbeat, 0, nil)
	for {
		select {
		case <-t.C:
			c.beat.Add(1)
			// Only when nothing else waits: the writer busy is traffic
			// enough.
			o := &c.out
			o.mu.Lock()
			idle := len(o.buf) == 0 && !o.dead
			o.mu.Unlock()
			if idle {
				c.send(hb)
			}
		case <-c.dead:
			return
		}
	}
}

// expect reads the next frame, which must be the method like want on
// channel 0 (heartbeats are skipped).
func (c *conn) expect(want wire.Method) (wire.Method, error) {
	for {
		f, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod || f.Channel != 0 {
			return nil, &amqpError{code: wire.UnexpectedFrame, text: fmt.Sprintf("UNEXPECTED_FRAME - expected %s", want.Name())}
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			var me *wire.MethodError
			errors.As(err, &me)
			return nil, &amqpError{code: me.ReplyCode(), text: replyNames[me.ReplyCode()] + " - " + err.Error(), classID: me.ClassID, methodID: me.MethodID}
		}
		if _, ok := m.(*wire.ConnectionClose); ok {
			c.sendMethod(0, &wire.ConnectionCloseOk{})
			return nil, io.EOF
		}
		if m.ClassID() != want.ClassID() || m.MethodID() != want.MethodID() {
			return nil, &amqpError{code: wire.CommandInvalid, text: fmt.Sprintf("COMMAND_INVALID - expected %s, got %s", want.Name(), m.Name()), classID: m.ClassID(), methodID: m.MethodID()}
		}
		return m, nil
	}
}

func parseCredentials(mechanism string, resp []byte) (user, pass string, err error) {
	switch mechanism {
	case "PLAIN":
		return auth.ParsePlain(resp)
	case "AMQPLAIN":
		// A field table without its length prefix.
		b := make([]byte, 4, 4+len(resp))
		b[0], b[1], b[2], b[3] = byte(len(resp)>>24), byte(len(resp)>>16), byte(len(resp)>>8), byte(len(resp))
		t, _, err := fieldtable.Read(append(b, resp...))
		if err != nil {
			return "", "", fmt.Errorf("malformed AMQPLAIN response: %v", err)
		}
		u, ok1 := t["LOGIN"].(string)
		p, ok2 := t["PASSWORD"].(string)
		if !ok1 || !ok2 {
			return "", "", errors.New("AMQPLAIN response lacks LOGIN or PASSWORD")
		}
		return u, p, nil
	}
	return "", "", fmt.Errorf("unsupported authentication mechanism '%s'", mechanism)
}

func (c *conn) authenticate(user, pass, mechanism string) error {
	refused := &amqpError{code: wire.AccessRefused, classID: 10, methodID: 11,
		text: fmt.Sprintf("ACCESS_REFUSED - Login was refused using authentication mechanism %s. For details see the broker logfile.", mechanism)}
	u, ok := c.s.accts.User(user)
	if !ok || !auth.CheckPassword(u.PasswordHash, pass) {
		delay := c.s.opts.LoginLimiter.Failed(c.nc.RemoteAddr(), time.Now())
		c.log.Info("login refused", "user", user, "mechanism", mechanism, "delay", delay.Round(time.Millisecond).String())
		if h, ok := c.s.opts.Hooks.(AuthHooks); ok {
			h.AuthFailed(mechanism)
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.s.done:
				t.Stop()
			}
		}
		return refused
	}
	if !auth.LoginAllowedFrom(user, c.nc.RemoteAddr(), c.s.opts.LoopbackUsers) {
		c.log.Info("login refused: user may only connect from loopback", "user", user)
		refused.text = fmt.Sprintf("ACCESS_REFUSED - user '%s' can only connect via localhost", user)
		return refused
	}
	c.user = user
	return nil
}

// readLoop reads frames and handles them until the connection ends.
func (c *conn) readLoop() {
	for {
		f, err := c.readFrame()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, wire.ErrFrameTooLarge):
				c.dropped("frame_too_large")
				c.closeWith(errorf(wire.FrameError, "frame too large (frame_max %d)", c.frameMax))
				c.awaitCloseOk()
			case errors.Is(err, wire.ErrBadFrameEnd), errors.Is(err, wire.ErrUnknownFrameType):
				c.closeWith(errorf(wire.FrameError, "%v", err))
				c.awaitCloseOk()
			case errors.As(err, &ne) && ne.Timeout() && c.partial:
				c.log.Info("frame not complete in time, closing", "frame_timeout", c.s.opts.FrameTimeout)
				c.dropped("frame_timeout")
			case errors.As(err, &ne) && ne.Timeout() && c.heartbeat > 0:
				c.log.Info("missed heartbeats from client, closing", "timeout", 2*c.heartbeat)
			}
			return
		}
		if isPublish(f) {
			if !c.holdPublish() {
				c.awaitCloseOk() // the server is closing
				return
			}
			if c.publishes++; c.publishes == growReadAfter {
				c.fr.Grow(busyReadBuffer)
			}
		}
		if err := c.handleFrame(f); err != nil {
			var ae *amqpError
			if errors.As(err, &ae) {
				c.closeWith(ae)
				c.awaitCloseOk()
			}
			return
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			c.awaitCloseOk()
			return
		}
	}
}

// handleFrame handles one frame; an error ends the connection (an
// *amqpError is sent as connection.close first).
func (c *conn) handleFrame(f wire.Frame) error {
	switch f.Type {
	case wire.FrameHeartbeat:
		if f.Channel != 0 {
			return errorf(wire.FrameError, "heartbeat frame on channel %d", f.Channel)
		}
		return nil
	case wire.FrameMethod:
		m, err := c.md.Decode(f.Payload)
		if err != nil {
			var me *wire.MethodError
			errors.As(err, &me)
			return &amqpError{code: me.ReplyCode(), text: replyNames[me.ReplyCode()] + " - " + err.Error(), classID: me.ClassID, methodID: me.MethodID}
		}
		if f.Channel == 0 {
			return c.handleConnectionMethod(m)
		}
		return c.dispatch(f.Channel, m)
	case wire.FrameHeader, wire.FrameBody:
		if f.Channel == 0 {
			return errorf(wire.UnexpectedFrame, "content frame on channel 0")
		}
		ch := c.channel(f.Channel)
		if ch == nil {
			return errorf(wire.ChannelError, "expected 'channel.open' on channel %d", f.Channel)
		}
		return ch.handleContent(f)
	}
	return errorf(wire.FrameError, "unknown frame type %d", f.Type)
}

func (c *conn) channel(id uint16) *channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.channels[id]
}

func (c *conn) handleConnectionMethod(m wire.Method) error {
	switch m.(type) {
	case *wire.ConnectionClose:
		c.release()
		c.sendMethod(0, &wire.ConnectionCloseOk{})
		return io.EOF
	case *wire.ConnectionCloseOk:
		return io.EOF
	case *wire.ConnectionBlocked, *wire.ConnectionUnblocked:
		return nil
	case *wire.ConnectionUpdateSecret:
		// Sluice authenticates with passwords only: there is no token to
		// refresh, so the new secret is acknowledged and not re-checked.
		c.sendMethod(0, &wire.ConnectionUpdateSecretOk{})
		return nil
	}
	return &amqpError{code: wire.CommandInvalid, text: fmt.Sprintf("COMMAND_INVALID - %s on channel 0", m.Name()), classID: m.ClassID(), methodID: m.MethodID()}
}

// dispatch hands a method to its channel, opening channels and turning
// channel exceptions into channel.close.
func (c *conn) dispatch(id uint16, m wire.Method) error {
	ch := c.channel(id)
	if _, ok := m.(*wire.ChannelOpen); ok {
		if ch != nil {
			return &amqpError{code: wire.ChannelError, text: fmt.Sprintf("CHANNEL_ERROR - second 'channel.open' seen on channel %d", id), classID: 20, methodID: 10}
		}
		if id > c.channelMax {
			return &amqpError{code: wire.NotAllowed, text: fmt.Sprintf("NOT_ALLOWED - channel id %d is above negotiated channel_max %d", id, c.channelMax), classID: 20, methodID: 10}
		}
		if err := c.channelOpening(); err != nil {
			return err
		}
		ch = newChannel(c, id)
		c.mu.Lock()
		c.channels[id] = ch
		c.mu.Unlock()
		c.s.opts.Hooks.ChannelOpened()
		c.sendMethod(id, &wire.ChannelOpenOk{})
		return nil
	}
	if ch == nil {
		return &amqpError{code: wire.ChannelError, text: fmt.Sprintf("CHANNEL_ERROR - expected 'channel.open' on channel %d", id), classID: m.ClassID(), methodID: m.MethodID()}
	}
	var start time.Time
	if m.Synchronous() {
		start = time.Now()
	}
	err := ch.handle(m)
	if m.Synchronous() {
		c.s.opts.Hooks.MethodDone(m.Name(), time.Since(start))
	}
	if err == nil {
		return nil
	}
	var ae *amqpError
	if !errors.As(err, &ae) {
		ae = fromBroker(err)
	}
	if ae.classID == 0 {
		ae.classID, ae.methodID = m.ClassID(), m.MethodID()
	}
	if ae.hard() {
		return ae
	}
	ch.closeWith(ae)
	return nil
}

// removeChannel forgets a channel once it is closed.
func (c *conn) removeChannel(id uint16) {
	c.mu.Lock()
	_, had := c.channels[id]
	delete(c.channels, id)
	c.mu.Unlock()
	if had {
		c.s.opts.Hooks.ChannelClosed()
		c.channelGone()
	}
}

// closeWith sends connection.close for e.
func (c *conn) closeWith(e *amqpError) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.mu.Unlock()
	if e.code != wire.ConnectionForced {
		c.log.Info("closing connection", "code", e.code, "text", e.text)
	}
	c.sendMethod(0, &wire.ConnectionClose{ReplyCode: e.code, ReplyText: truncate(e.text), ClassId: e.classID, MethodId: e.methodID})
}

// awaitCloseOk reads (and discards) frames until close-ok or a short
// timeout, as the specification asks after sending connection.close.
func (c *conn) awaitCloseOk() {
	if c.fr != nil {
		c.fr.OnPartial = nil // the 3s below bound frames too
	}
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Type == wire.FrameMethod && f.Channel == 0 {
			m, err := wire.DecodeMethod(f.Payload)
			if err != nil {
				return
			}
			switch m.(type) {
			case *wire.ConnectionCloseOk:
				return
			case *wire.ConnectionClose:
				c.sendMethod(0, &wire.ConnectionCloseOk{})
				return
			}
		}
	}
}

func truncate(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.ToValidUTF8(s, "?")
}

// writeTimeout bounds the writes before a connection is open (its
// protocol header answer); after, Options.WriteTimeout does.
const writeTimeout = 10 * time.Second

// isTimeout reports a deadline having passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// lingerTimeout and lingerMaxBytes bound what lingerClose waits for and
// reads after the server has shut its side.
const (
	lingerTimeout  = 2 * time.Second
	lingerMaxBytes = 1 << 20
)
