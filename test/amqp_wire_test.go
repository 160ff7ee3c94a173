package test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// rawAMQP is a hand-driven AMQP 0-9-1 client: it does what a buggy or
// hostile client might, which real client libraries never do.
type rawAMQP struct {
	t  *testing.T
	nc net.Conn
	fr *wire.FrameReader
}

func dialRaw(t *testing.T, b *broker) *rawAMQP {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.AMQP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawAMQP{t: t, nc: nc, fr: wire.NewFrameReader(nc)}
}

func (r *rawAMQP) send(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawAMQP) sendMethod(ch uint16, m wire.Method) { r.send(wire.AppendMethodFrame(nil, ch, m)) }

// next reads the next frame other than a heartbeat, within d.
func (r *rawAMQP) next(d time.Duration) (wire.Frame, error) {
	r.nc.SetReadDeadline(time.Now().Add(d))
	for {
		f, err := r.fr.ReadFrame()
		if err != nil || f.Type != wire.FrameHeartbeat {
			return f, err
		}
	}
}

func (r *rawAMQP) expectMethod(want wire.Method) wire.Method {
	r.t.Helper()
	f, err := r.next(5 * time.Second)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", want.Name(), err)
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil || f.Type != wire.FrameMethod || m.ClassID() != want.ClassID() || m.MethodID() != want.MethodID() {
		r.t.Fatalf("waiting for %s: got frame type %d %T (%v)", want.Name(), f.Type, m, err)
	}
	return m
}

// handshake logs in as guest, answering tune with tuneOK.
func (r *rawAMQP) handshake(tuneOK wire.ConnectionTuneOk) {
	r.t.Helper()
	r.send(wire.ProtocolHeader)
	r.expectMethod(&wire.ConnectionStart{})
	r.sendMethod(0, &wire.ConnectionStartOk{
		ClientProperties: fieldtable.Table{"product": "raw test client"},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	})
	r.expectMethod(&wire.ConnectionTune{})
	r.sendMethod(0, &tuneOK)
	r.sendMethod(0, &wire.ConnectionOpen{VirtualHost: "/"})
	r.expectMethod(&wire.ConnectionOpenOk{})
}

// expectClose waits for connection.close with code and answers close-ok;
// the server then closes the socket.
func (r *rawAMQP) expectClose(code uint16) {
	r.t.Helper()
	m := r.expectMethod(&wire.ConnectionClose{}).(*wire.ConnectionClose)
	if m.ReplyCode != code {
		r.t.Fatalf("connection.close %d %q, want %d", m.ReplyCode, m.ReplyText, code)
	}
	r.sendMethod(0, &wire.ConnectionCloseOk{})
	r.expectEOF(5 * time.Second)
}

func (r *rawAMQP) expectEOF(d time.Duration) {
	r.t.Helper()
	f, err := r.next(d)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
		r.t.Fatalf("want the server to close the connection, got frame type %d, err %v", f.Type, err)
	}
}

func isConnReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// A working amqp091-go connection, checked after each abuse: one bad
// connection never harms another.
func stillServes(t *testing.T, b *broker) {
	t.Helper()
	ch := b.channel(t)
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("another connection after the abuse: %v", err)
	}
}

func TestAMQPWireHeartbeatsBothWays(t *testing.T) {
	b := startBroker(t)
	r := dialRaw(t, b)
	r.handshake(wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 131072, Heartbeat: 1})

	// The server sends heartbeats (every half interval) to a silent client...
	start := time.Now()
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.fr.ReadFrame()
	if err != nil || f.Type != wire.FrameHeartbeat {
		t.Fatalf("want a heartbeat from the server, got type %d err %v", f.Type, err)
	}
	// ...and closes the connection once the client has missed two of its own.
	for {
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err = r.fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Type != wire.FrameHeartbeat {
			t.Fatalf("unexpected frame type %d from the server", f.Type)
		}
	}
	if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a client that sent nothing for 10 s")
	}
	if took := time.Since(start); took < 1900*time.Millisecond {
		t.Fatalf("closed after %v of silence, before two 1 s heartbeat intervals", took)
	}

	// A client that does send heartbeats stays connected.
	r2 := dialRaw(t, b)
	r2.handshake(wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 131072, Heartbeat: 1})
	hb := wire.AppendFrame(nil, wire.FrameHeartbeat, 0, nil)
	until := time.Now().Add(4 * time.Second)
	for time.Now().Before(until) {
		r2.send(hb)
		r2.nc.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		if _, err := r2.fr.ReadFrame(); err != nil {
			if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("a client sending heartbeats was disconnected: %v", err)
			}
		}
	}
	r2.sendMethod(1, &wire.ChannelOpen{})
	r2.expectMethod(&wire.ChannelOpenOk{})
}

func TestAMQPWireBadInputClosesOnlyThatConnection(t *testing.T) {
	b := startBroker(t)
	tune := wire.ConnectionTuneOk{ChannelMax: 4, FrameMax: 4096, Heartbeat: 0}

	t.Run("wrong protocol header", func(t *testing.T) {
		r := dialRaw(t, b)
		r.send([]byte("AMQP\x00\x00\x08\x00"))
		got := make([]byte, 8)
		r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r.nc, got); err != nil || !bytes.Equal(got, wire.ProtocolHeader) {
			t.Fatalf("want the server's protocol header back, got %q, %v", got, err)
		}
		r.expectEOF(5 * time.Second)
		stillServes(t, b)
	})
	t.Run("frame over frame_max", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(tune)
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectMethod(&wire.ChannelOpenOk{})
		// A 1 MiB body frame on a connection tuned to 4 KiB frames: only
		// the header is sent, the server must not wait for (or allocate) it.
		hdr := make([]byte, 7)
		hdr[0] = wire.FrameBody
		binary.BigEndian.PutUint16(hdr[1:], 1)
		binary.BigEndian.PutUint32(hdr[3:], 1<<20)
		r.send(hdr)
		r.expectClose(wire.FrameError)
		stillServes(t, b)
	})
	t.Run("bad frame end", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(tune)
		f := wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
		f[len(f)-1] = 0xAB
		r.send(f)
		r.expectClose(wire.FrameError)
		stillServes(t, b)
	})
	t.Run("unknown method", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(tune)
		r.send(wire.AppendFrame(nil, wire.FrameMethod, 0, []byte{0x00, 0x0a, 0x7f, 0x7f}))
		m := r.expectMethod(&wire.ConnectionClose{}).(*wire.ConnectionClose)
		if m.ReplyCode < 500 {
			t.Fatalf("an unknown method got %d %q, want a hard error", m.ReplyCode, m.ReplyText)
		}
		stillServes(t, b)
	})
	t.Run("truncated method arguments", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(tune)
		// queue.declare (50,10) cut off inside its fields.
		r.send(wire.AppendFrame(nil, wire.FrameMethod, 0, []byte{0x00, 0x32, 0x00, 0x0a, 0x00}))
		m := r.expectMethod(&wire.ConnectionClose{}).(*wire.ConnectionClose)
		if m.ReplyCode < 500 {
			t.Fatalf("a truncated method got %d %q, want a hard error", m.ReplyCode, m.ReplyText)
		}
		stillServes(t, b)
	})
	t.Run("channel above channel_max", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(tune) // channel_max 4
		r.sendMethod(5, &wire.ChannelOpen{})
		r.expectClose(wire.NotAllowed) // RabbitMQ's 530, a connection error
		stillServes(t, b)
	})
	t.Run("content body without a publish", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(tune)
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectMethod(&wire.ChannelOpenOk{})
		r.send(wire.AppendFrame(nil, wire.FrameBody, 1, []byte("stray")))
		r.expectClose(wire.UnexpectedFrame)
		stillServes(t, b)
	})
}
