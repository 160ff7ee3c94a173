package benchclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// channel is the one channel a Conn opens.
const channel = 1

// clientFrameMax caps the frame-max the client accepts, as amqp091-go does.
const clientFrameMax = 128 << 10

var (
	// ErrClosed is returned once Close has run, and by a ReadLoop that Close
	// ended.
	ErrClosed = errors.New("benchclient: connection closed")
	// ErrProtocol is wrapped by errors for a server that broke the protocol:
	// a frame out of place, a body longer than announced, an unexpected
	// method.
	ErrProtocol = errors.New("benchclient: protocol error")
)

// Error is a connection.close or channel.close the server sent.
type Error struct {
	Channel           bool // channel.close rather than connection.close
	Code              uint16
	Text              string
	ClassID, MethodID uint16 // the method that caused it, if any
}

func (e *Error) Error() string {
	what := "connection"
	if e.Channel {
		what = "channel"
	}
	return fmt.Sprintf("%s closed by the server: %d %s", what, e.Code, e.Text)
}

// Config tunes Dial. The zero value is usable.
type Config struct {
	// Name is sent as the connection_name client property.
	Name string
	// DialTimeout bounds connecting and the handshake (default 5s).
	DialTimeout time.Duration
	// CloseTimeout bounds Close's wait for close-ok (default 3s).
	CloseTimeout time.Duration
	// MaxBodySize is the largest message body accepted (default 128 MiB,
	// RabbitMQ's default max_message_size); a content header announcing
	// more ends ReadLoop with an error.
	MaxBodySize uint64
}

func (c *Config) defaults() {
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 3 * time.Second
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = 128 << 20
	}
}

// Conn is one connection with one open channel. Setup calls and ReadLoop
// must be used from one goroutine at a time (setup before ReadLoop);
// Publish, Ack, Flush, Buffered and Close are safe from any goroutine.
type Conn struct {
	cfg        Config
	nc         net.Conn
	br         *bufio.Reader
	fr         *wire.FrameReader
	frameMax   uint32
	channelMax uint16

	// wmu guards the write buffer and the socket's write side.
	wmu        sync.Mutex
	wbuf       []byte
	werr       error // sticky write error
	pub        wire.BasicPublish
	ack        wire.BasicAck
	persistent wire.Properties
	transient  wire.Properties

	failed atomic.Bool // the connection is unusable: Publish returns err
	errMu  sync.Mutex
	err    error

	// gone is set once the socket is known dead or the connection closed
	// by the server, so Close need not say goodbye.
	gone atomic.Bool

	mu          sync.Mutex
	closing     bool
	loopRunning bool
	loopDone    chan struct{}
	loopErr     error // what ReadLoop returned, valid once loopDone is closed
	closeOnce   sync.Once
	closeErr    error

	// ReadLoop's decoding state, owned by the goroutine running it.
	deliver wire.BasicDeliver
	confirm wire.BasicAck
	nack    wire.BasicNack
	inBody  bool // a basic.deliver was read; header and body follow
	header  bool // its content header was read
	want    uint64
	body    []byte
}

// Dial connects to an amqp:// URL, runs the handshake and opens channel 1;
// name is sent as the connection_name client property.
func Dial(rawURL, name string) (*Conn, error) {
	return DialConfig(rawURL, Config{Name: name})
}

// DialConfig is Dial with a Config.
func DialConfig(rawURL string, cfg Config) (*Conn, error) {
	cfg.defaults()
	addr, user, pass, vhost, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", addr, cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c, err := open(nc, user, pass, vhost, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// parseURL splits an amqp:// URL into address, credentials (guest/guest
// by default) and vhost ("/" for an empty path; the path is unescaped, so
// /%2f is "/" too).
func parseURL(raw string) (addr, user, pass, vhost string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", "", err
	}
	if u.Scheme != "amqp" {
		return "", "", "", "", fmt.Errorf("benchclient: scheme %q: only amqp:// is supported", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "5672"
	}
	user, pass = "guest", "guest"
	if u.User != nil {
		user = u.User.Username()
		if p, ok := u.User.Password(); ok {
			pass = p
		}
	}
	vhost = "/"
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		vhost = p
	}
	return net.JoinHostPort(host, port), user, pass, vhost, nil
}

// open runs the handshake over nc.
func open(nc net.Conn, user, pass, vhost string, cfg Config) (*Conn, error) {
	cfg.defaults()
	c := &Conn{cfg: cfg, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), wbuf: make([]byte, 0, 64<<10)}
	c.fr = wire.NewFrameReader(c.br)
	c.persistent = wire.Properties{DeliveryMode: 2}
	c.transient = wire.Properties{DeliveryMode: 1}
	nc.SetDeadline(time.Now().Add(cfg.DialTimeout))
	if err := c.handshake(user, pass, vhost); err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *Conn) handshake(user, pass, vhost string) error {
	if _, err := c.nc.Write(wire.ProtocolHeader); err != nil {
		return err
	}
	var start wire.ConnectionStart
	if err := c.await(0, &start); err != nil {
		return fmt.Errorf("benchclient: waiting for connection.start: %w", err)
	}
	if !strings.Contains(" "+start.Mechanisms+" ", " PLAIN ") {
		return fmt.Errorf("benchclient: server offers %q, not PLAIN", start.Mechanisms)
	}
	props := fieldtable.Table{
		"product":  "sluice bench (benchclient)",
		"platform": "Go",
		"capabilities": fieldtable.Table{
			"publisher_confirms":           true,
			"basic.nack":                   true,
			"connection.blocked":           true,
			"consumer_cancel_notify":       true,
			"authentication_failure_close": true,
		},
	}
	if c.cfg.Name != "" {
		props["connection_name"] = c.cfg.Name
	}
	c.send(0, &wire.ConnectionStartOk{
		ClientProperties: props,
		Mechanism:        "PLAIN",
		Response:         "\x00" + user + "\x00" + pass,
		Locale:           "en_US",
	})
	var tune wire.ConnectionTune
	if err := c.await(0, &tune); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w (refused login?)", err)
		}
		return fmt.Errorf("benchclient: waiting for connection.tune: %w", err)
	}
	c.frameMax = clientFrameMax
	if tune.FrameMax != 0 && tune.FrameMax < c.frameMax {
		c.frameMax = tune.FrameMax
	}
	if c.frameMax < wire.FrameMinSize {
		return fmt.Errorf("%w: frame-max %d below %d", ErrProtocol, tune.FrameMax, wire.FrameMinSize)
	}
	c.channelMax = tune.ChannelMax
	if c.channelMax != 0 && c.channelMax < channel {
		return fmt.Errorf("%w: channel-max %d allows no channel", ErrProtocol, tune.ChannelMax)
	}
	c.send(0, &wire.ConnectionTuneOk{ChannelMax: c.channelMax, FrameMax: c.frameMax, Heartbeat: 0})
	c.fr.SetMaxFrame(c.frameMax)
	if err := c.call(0, &wire.ConnectionOpen{VirtualHost: vhost}, &wire.ConnectionOpenOk{}); err != nil {
		return fmt.Errorf("benchclient: opening vhost %q: %w", vhost, err)
	}
	if err := c.call(channel, &wire.ChannelOpen{}, &wire.ChannelOpenOk{}); err != nil {
		return fmt.Errorf("benchclient: channel.open: %w", err)
	}
	return nil
}

// FrameMax is the negotiated frame-max.
func (c *Conn) FrameMax() uint32 { return c.frameMax }

// QueueDeclare declares a queue (durable or not, with arguments such as
// x-queue-type) and returns the messages it holds.
func (c *Conn) QueueDeclare(name string, durable bool, args fieldtable.Table) (messages uint32, err error) {
	var ok wire.QueueDeclareOk
	err = c.call(channel, &wire.QueueDeclare{Queue: name, Durable: durable, Arguments: args}, &ok)
	return ok.MessageCount, err
}

// QueueDeclarePassive returns the messages and consumers of an existing
// queue; a missing queue closes the channel with 404, ending the Conn.
func (c *Conn) QueueDeclarePassive(name string) (messages, consumers uint32, err error) {
	var ok wire.QueueDeclareOk
	err = c.call(channel, &wire.QueueDeclare{Queue: name, Passive: true}, &ok)
	return ok.MessageCount, ok.ConsumerCount, err
}

// QueuePurge empties a queue and returns how many messages it dropped.
func (c *Conn) QueuePurge(name string) (uint32, error) {
	var ok wire.QueuePurgeOk
	err := c.call(channel, &wire.QueuePurge{Queue: name}, &ok)
	return ok.MessageCount, err
}

// Qos sets the channel's prefetch count (0: unlimited).
func (c *Conn) Qos(prefetch uint16) error {
	return c.call(channel, &wire.BasicQos{PrefetchCount: prefetch}, &wire.BasicQosOk{})
}

// ConfirmSelect puts the channel in confirm mode: the server then confirms
// every publish, delivery tags counting from 1 in publish order.
func (c *Conn) ConfirmSelect() error {
	return c.call(channel, &wire.ConfirmSelect{}, &wire.ConfirmSelectOk{})
}

// Consume subscribes to queue with manual acknowledgements; deliveries
// reach ReadLoop's Deliver callback.
func (c *Conn) Consume(queue, consumerTag string) error {
	return c.call(channel, &wire.BasicConsume{Queue: queue, ConsumerTag: consumerTag}, &wire.BasicConsumeOk{})
}

// send appends m and flushes, for setup calls.
func (c *Conn) send(ch uint16, m wire.Method) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = wire.AppendMethodFrame(c.wbuf, ch, m)
	return c.flushLocked()
}

// call sends req and waits for reply on the same channel.
func (c *Conn) call(ch uint16, req, reply wire.Method) error {
	c.mu.Lock()
	busy := c.loopRunning || c.closing
	c.mu.Unlock()
	if busy {
		return errors.New("benchclient: synchronous call after ReadLoop or Close")
	}
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.send(ch, req); err != nil {
		return err
	}
	return c.await(ch, reply)
}

// await reads frames until the method like reply arrives on ch and decodes
// it into reply. Heartbeats are skipped; a close from the server is
// answered and returned as *Error; anything else is a protocol error.
func (c *Conn) await(ch uint16, reply wire.Method) error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.gone.Store(true)
			return c.fail(err)
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod || len(f.Payload) < 4 {
			return c.fail(fmt.Errorf("%w: frame type %d on channel %d while waiting for %s", ErrProtocol, f.Type, f.Channel, reply.Name()))
		}
		cls, mth := binary.BigEndian.Uint16(f.Payload), binary.BigEndian.Uint16(f.Payload[2:])
		if f.Channel == ch && cls == reply.ClassID() && mth == reply.MethodID() {
			r := wire.NewReader(f.Payload[4:])
			reply.Decode(r)
			if err := r.Complete(); err != nil {
				return c.fail(fmt.Errorf("%w: %s: %w", ErrProtocol, reply.Name(), err))
			}
			return nil
		}
		if err := c.closeFrom(f, cls, mth); err != nil {
			return c.fail(err)
		}
		return c.fail(fmt.Errorf("%w: unexpected method %d.%d on channel %d while waiting for %s", ErrProtocol, cls, mth, f.Channel, reply.Name()))
	}
}

// closeFrom handles a connection.close or channel.close method frame:
// it answers close-ok and returns the *Error. For other methods it returns
// nil.
func (c *Conn) closeFrom(f wire.Frame, cls, mth uint16) error {
	switch {
	case f.Channel == 0 && cls == wire.ClassConnection && mth == 50:
		var m wire.ConnectionClose
		if err := decodeInto(f.Payload, &m); err != nil {
			return err
		}
		c.send(0, &wire.ConnectionCloseOk{})
		c.gone.Store(true)
		return &Error{Code: m.ReplyCode, Text: m.ReplyText, ClassID: m.ClassId, MethodID: m.MethodId}
	case f.Channel == channel && cls == wire.ClassChannel && mth == 40:
		var m wire.ChannelClose
		if err := decodeInto(f.Payload, &m); err != nil {
			return err
		}
		c.send(channel, &wire.ChannelCloseOk{})
		return &Error{Channel: true, Code: m.ReplyCode, Text: m.ReplyText, ClassID: m.ClassId, MethodID: m.MethodId}
	}
	return nil
}

// decodeInto decodes a method payload whose ids the caller checked.
func decodeInto(payload []byte, m wire.Method) error {
	r := wire.NewReader(payload[4:])
	m.Decode(r)
	if err := r.Complete(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrProtocol, m.Name(), err)
	}
	return nil
}

// fail records err as the reason the connection is unusable (the first
// one wins) and returns it.
func (c *Conn) fail(err error) error {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
	c.failed.Store(true)
	return err
}

// Err returns why the connection became unusable, or nil.
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Publish appends basic.publish, its content header (delivery-mode 2 when
// persistent, else 1) and body frames to the write buffer; nothing is
// written until Flush. body is copied, so it may be reused at once. The
// error is the connection's failure, if it has failed.
func (c *Conn) Publish(exchange, routingKey string, persistent bool, body []byte) error {
	if c.failed.Load() {
		return c.Err()
	}
	props := &c.transient
	if persistent {
		props = &c.persistent
	}
	c.wmu.Lock()
	c.pub.Exchange, c.pub.RoutingKey = exchange, routingKey
	c.wbuf = wire.AppendMethodFrame(c.wbuf, channel, &c.pub)
	c.wbuf = wire.AppendHeaderFrame(c.wbuf, channel, wire.ClassBasic, uint64(len(body)), props)
	c.wbuf = wire.AppendBodyFrames(c.wbuf, channel, body, c.frameMax)
	c.wmu.Unlock()
	return nil
}

// Ack appends basic.ack for tag (and every earlier one with multiple) to
// the write buffer; ReadLoop with FlushBeforeRead, or Flush, writes it.
func (c *Conn) Ack(tag uint64, multiple bool) {
	c.wmu.Lock()
	c.ack.DeliveryTag, c.ack.Multiple = tag, multiple
	c.wbuf = wire.AppendMethodFrame(c.wbuf, channel, &c.ack)
	c.wmu.Unlock()
}

// Buffered returns the bytes appended and not yet written.
func (c *Conn) Buffered() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.wbuf)
}

// Flush writes the write buffer in one write call.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *Conn) flushLocked() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		c.werr = err
		c.gone.Store(true)
		c.fail(err)
	}
	return err
}

// Handler receives what ReadLoop reads. Its callbacks run in ReadLoop's
// goroutine and should be quick; they may call Ack and Publish.
type Handler struct {
	// Confirm is called for each basic.ack (ack true) and basic.nack
	// (ack false) the server sends in confirm mode, with the multiple
	// flag as received.
	Confirm func(tag uint64, multiple, ack bool)
	// Deliver is called for each complete delivery. body is valid only
	// until Deliver returns: the buffer is reused for the next delivery.
	Deliver func(tag uint64, redelivered bool, body []byte)
	// Blocked is called for connection.blocked (true, with the reason)
	// and connection.unblocked (false).
	Blocked func(blocked bool, reason string)
	// FlushBeforeRead makes ReadLoop flush the write buffer whenever it
	// holds no complete frame in its read buffer, that is right before
	// it would block reading: acks appended by Deliver go out batched
	// under load and at once when idle.
	FlushBeforeRead bool
}

// ReadLoop reads and handles frames until the connection ends, and returns
// why: ErrClosed after Close, an *Error when the server closed the
// connection or the channel, or a read, protocol or write error. It must
// run in one goroutine only, after the setup calls.
func (c *Conn) ReadLoop(h Handler) error {
	c.mu.Lock()
	if c.closing || c.loopRunning || c.loopDone != nil {
		c.mu.Unlock()
		return errors.New("benchclient: ReadLoop after Close, or twice")
	}
	c.loopRunning = true
	c.loopDone = make(chan struct{})
	c.mu.Unlock()
	err := c.readLoop(&h)
	c.mu.Lock()
	closing := c.closing
	c.loopRunning = false
	c.loopErr = err
	close(c.loopDone)
	c.mu.Unlock()
	if closing && !errors.Is(err, ErrClosed) {
		var e *Error
		if !errors.As(err, &e) {
			err = fmt.Errorf("%w (%v)", ErrClosed, err)
		}
	}
	return err
}

func (c *Conn) readLoop(h *Handler) error {
	for {
		if h.FlushBeforeRead && c.wouldBlock() {
			if err := c.Flush(); err != nil {
				return err
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.gone.Store(true)
			return c.fail(err)
		}
		if err := c.handle(h, f); err != nil {
			var e *Error
			if !errors.As(err, &e) || !e.Channel {
				c.gone.Store(true) // nothing more to say on a broken connection
			}
			return c.fail(err)
		}
	}
}

// wouldBlock reports whether the read buffer lacks a complete frame.
func (c *Conn) wouldBlock() bool {
	n := c.br.Buffered()
	if n < 7 {
		return true
	}
	h, _ := c.br.Peek(7)
	return uint64(n) < uint64(binary.BigEndian.Uint32(h[3:]))+8
}

// handle handles one frame in ReadLoop.
func (c *Conn) handle(h *Handler, f wire.Frame) error {
	switch f.Type {
	case wire.FrameHeartbeat:
		if f.Channel != 0 {
			return fmt.Errorf("%w: heartbeat on channel %d", ErrProtocol, f.Channel)
		}
		return nil
	case wire.FrameHeader:
		if !c.inBody || c.header || f.Channel != channel {
			return fmt.Errorf("%w: unexpected content header on channel %d", ErrProtocol, f.Channel)
		}
		cls, size, _, err := wire.DecodeContentHeader(f.Payload)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		case cls != wire.ClassBasic:
			return fmt.Errorf("%w: content header of class %d", ErrProtocol, cls)
		case size > c.cfg.MaxBodySize:
			return fmt.Errorf("%w: %d-byte body announced, more than the %d allowed", ErrProtocol, size, c.cfg.MaxBodySize)
		}
		c.header, c.want, c.body = true, size, c.body[:0]
		if size == 0 {
			c.delivered(h)
		}
		return nil
	case wire.FrameBody:
		if !c.header || f.Channel != channel {
			return fmt.Errorf("%w: unexpected body frame on channel %d", ErrProtocol, f.Channel)
		}
		if uint64(len(c.body))+uint64(len(f.Payload)) > c.want {
			return fmt.Errorf("%w: body longer than the %d bytes announced", ErrProtocol, c.want)
		}
		c.body = append(c.body, f.Payload...)
		if uint64(len(c.body)) == c.want {
			c.delivered(h)
		}
		return nil
	}
	// A method frame (FrameReader accepts no other type).
	if c.inBody {
		return fmt.Errorf("%w: method frame inside a delivery's content", ErrProtocol)
	}
	if len(f.Payload) < 4 {
		return fmt.Errorf("%w: %d-byte method frame", ErrProtocol, len(f.Payload))
	}
	cls, mth := binary.BigEndian.Uint16(f.Payload), binary.BigEndian.Uint16(f.Payload[2:])
	if f.Channel == channel && cls == wire.ClassBasic {
		switch mth {
		case 60: // basic.deliver
			if err := decodeInto(f.Payload, &c.deliver); err != nil {
				return err
			}
			c.inBody, c.header = true, false
			return nil
		case 80: // basic.ack
			if err := decodeInto(f.Payload, &c.confirm); err != nil {
				return err
			}
			if h.Confirm != nil {
				h.Confirm(c.confirm.DeliveryTag, c.confirm.Multiple, true)
			}
			return nil
		case 120: // basic.nack
			if err := decodeInto(f.Payload, &c.nack); err != nil {
				return err
			}
			if h.Confirm != nil {
				h.Confirm(c.nack.DeliveryTag, c.nack.Multiple, false)
			}
			return nil
		case 30: // basic.cancel: the server cancelled the consumer
			var m wire.BasicCancel
			if err := decodeInto(f.Payload, &m); err != nil {
				return err
			}
			return fmt.Errorf("benchclient: the server cancelled consumer %q (queue deleted?)", m.ConsumerTag)
		}
	}
	if f.Channel == 0 && cls == wire.ClassConnection && (mth == 60 || mth == 61) {
		var blocked wire.ConnectionBlocked
		if mth == 60 {
			if err := decodeInto(f.Payload, &blocked); err != nil {
				return err
			}
		} else if err := decodeInto(f.Payload, &wire.ConnectionUnblocked{}); err != nil {
			return err
		}
		if h.Blocked != nil {
			h.Blocked(mth == 60, blocked.Reason)
		}
		return nil
	}
	if f.Channel == 0 && cls == wire.ClassConnection && mth == 51 { // close-ok
		c.gone.Store(true)
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return ErrClosed
		}
		return fmt.Errorf("%w: connection.close-ok unasked", ErrProtocol)
	}
	if err := c.closeFrom(f, cls, mth); err != nil {
		return err
	}
	name := fmt.Sprintf("%d.%d", cls, mth)
	if m := wire.NewMethod(cls, mth); m != nil {
		name = m.Name()
	}
	return fmt.Errorf("%w: unexpected %s on channel %d", ErrProtocol, name, f.Channel)
}

// delivered hands a complete delivery to the handler.
func (c *Conn) delivered(h *Handler) {
	c.inBody, c.header = false, false
	if h.Deliver != nil {
		h.Deliver(c.deliver.DeliveryTag, c.deliver.Redelivered, c.body)
	}
}

// Close sends connection.close and waits up to Config.CloseTimeout for
// close-ok (read by ReadLoop if it runs, else by Close), then closes the
// socket. A connection the server already closed is just dropped. Close
// ends a running ReadLoop, which returns ErrClosed.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		running, done := c.loopRunning, c.loopDone
		c.mu.Unlock()
		// The deadline also frees a Flush blocked on a server that stopped
		// reading, so that the lock below is taken in time.
		c.nc.SetDeadline(time.Now().Add(c.cfg.CloseTimeout))
		if !c.gone.Load() {
			if err := c.send(0, &wire.ConnectionClose{ReplyCode: wire.ReplySuccess, ReplyText: "bye"}); err == nil {
				if running {
					<-done
				}
				c.mu.Lock()
				loopErr := c.loopErr
				c.mu.Unlock()
				if !errors.Is(loopErr, ErrClosed) && !c.gone.Load() {
					c.awaitCloseOk()
				}
			}
		} else if running {
			c.nc.Close() // unblock ReadLoop's read at once
			<-done
		}
		c.closeErr = c.nc.Close()
		c.fail(ErrClosed)
	})
	if errors.Is(c.closeErr, net.ErrClosed) {
		return nil
	}
	return c.closeErr
}

// awaitCloseOk reads and drops frames until connection.close-ok (or a
// close from the server) or an error, for Close without ReadLoop.
func (c *Conn) awaitCloseOk() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Type == wire.FrameMethod && f.Channel == 0 && len(f.Payload) >= 4 &&
			binary.BigEndian.Uint16(f.Payload) == wire.ClassConnection {
			switch binary.BigEndian.Uint16(f.Payload[2:]) {
			case 51:
				return
			case 50:
				c.send(0, &wire.ConnectionCloseOk{})
				return
			}
		}
	}
}
