package benchclient

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
)

// fakeServer runs the server side of the handshake over a net.Pipe, then
// writes script and closes. It reads and drops whatever the client writes
// afterwards. It returns the client end and a channel closed when the
// server is done.
func fakeServer(t testing.TB, script []byte) (net.Conn, <-chan error) {
	cli, srv := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer srv.Close()
		done <- serveHandshake(srv, script)
	}()
	return cli, done
}

func serveHandshake(srv net.Conn, script []byte) error {
	srv.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.ReadProtocolHeader(srv); err != nil {
		return err
	}
	fr := wire.NewFrameReader(srv)
	expect := func(want wire.Method) error {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			return err
		}
		if m.Name() != want.Name() {
			return errors.New("got " + m.Name() + ", want " + want.Name())
		}
		return nil
	}
	write := func(ch uint16, m wire.Method) error {
		_, err := srv.Write(wire.AppendMethodFrame(nil, ch, m))
		return err
	}
	steps := []struct {
		ch     uint16
		send   wire.Method
		expect wire.Method
	}{
		{0, &wire.ConnectionStart{VersionMinor: 9, Mechanisms: "PLAIN", Locales: "en_US"}, &wire.ConnectionStartOk{}},
		{0, &wire.ConnectionTune{ChannelMax: 16, FrameMax: wire.FrameMinSize}, &wire.ConnectionTuneOk{}},
	}
	for _, s := range steps {
		if err := write(s.ch, s.send); err != nil {
			return err
		}
		if err := expect(s.expect); err != nil {
			return err
		}
	}
	fr.SetMaxFrame(wire.FrameMinSize)
	if err := expect(&wire.ConnectionOpen{}); err != nil {
		return err
	}
	if err := write(0, &wire.ConnectionOpenOk{}); err != nil {
		return err
	}
	if err := expect(&wire.ChannelOpen{}); err != nil {
		return err
	}
	if err := write(1, &wire.ChannelOpenOk{}); err != nil {
		return err
	}
	go io.Copy(io.Discard, srv) // drain acks and close methods
	srv.Write(script)
	return nil
}

func dialFake(t testing.TB, script []byte) (*Conn, <-chan error) {
	t.Helper()
	nc, done := fakeServer(t, script)
	c, err := open(nc, "guest", "guest", "/", Config{Name: "fuzz", MaxBodySize: 1 << 16, CloseTimeout: time.Second})
	if err != nil {
		nc.Close()
		t.Fatalf("handshake with the fake server: %v (server: %v)", err, <-done)
	}
	return c, done
}

func frames(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func method(ch uint16, m wire.Method) []byte { return wire.AppendMethodFrame(nil, ch, m) }

func delivery(tag uint64, body string) []byte {
	b := method(1, &wire.BasicDeliver{ConsumerTag: "c", DeliveryTag: tag, RoutingKey: "q"})
	b = wire.AppendHeaderFrame(b, 1, wire.ClassBasic, uint64(len(body)), &wire.Properties{DeliveryMode: 2})
	return wire.AppendBodyFrames(b, 1, []byte(body), wire.FrameMinSize)
}

// seeds are server streams after the handshake: well-formed ones and
// hostile ones.
func seeds() [][]byte {
	return [][]byte{
		nil,
		frames(method(1, &wire.BasicAck{DeliveryTag: 1}), method(1, &wire.BasicAck{DeliveryTag: 3, Multiple: true}), method(1, &wire.BasicNack{DeliveryTag: 4})),
		frames(delivery(1, "hello"), delivery(2, ""), delivery(3, string(make([]byte, 9000)))),
		frames(method(0, &wire.ConnectionBlocked{Reason: "low on memory"}), method(0, &wire.ConnectionUnblocked{})),
		method(0, &wire.ConnectionClose{ReplyCode: 320, ReplyText: "CONNECTION_FORCED - shutdown"}),
		method(1, &wire.ChannelClose{ReplyCode: 404, ReplyText: "NOT_FOUND - no exchange 'x'", ClassId: 60, MethodId: 40}),
		// a header announcing 5 bytes followed by 6
		frames(method(1, &wire.BasicDeliver{DeliveryTag: 1}),
			wire.AppendHeaderFrame(nil, 1, wire.ClassBasic, 5, nil), wire.AppendFrame(nil, wire.FrameBody, 1, []byte("123456"))),
		// a header announcing more than MaxBodySize
		frames(method(1, &wire.BasicDeliver{DeliveryTag: 1}), wire.AppendHeaderFrame(nil, 1, wire.ClassBasic, 1<<40, nil)),
		// a frame announcing more than frame-max
		{wire.FrameBody, 0, 1, 0xff, 0xff, 0xff, 0xff},
		wire.AppendFrame(nil, wire.FrameBody, 1, []byte("body without a delivery")),
		method(1, &wire.BasicCancel{ConsumerTag: "c"}),
		method(1, &wire.QueueDeclareOk{Queue: "q"}),
		{wire.FrameMethod, 0, 1, 0, 0, 0, 2, 0, 60, wire.FrameEnd},
	}
}

// FuzzClientReadLoop feeds arbitrary server bytes to ReadLoop after a valid
// handshake: it must end with an error (the stream always ends) and never
// panic, hang or buffer beyond its limits.
func FuzzClientReadLoop(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		c, done := dialFake(t, script)
		errc := make(chan error, 1)
		go func() {
			errc <- c.ReadLoop(Handler{
				Deliver: func(tag uint64, _ bool, body []byte) {
					if len(body) > 1<<16 {
						t.Errorf("a %d-byte body passed MaxBodySize", len(body))
					}
					c.Ack(tag, false)
				},
				Confirm:         func(uint64, bool, bool) {},
				Blocked:         func(bool, string) {},
				FlushBeforeRead: true,
			})
		}()
		var err error
		select {
		case err = <-errc:
		case <-time.After(10 * time.Second):
			t.Fatal("ReadLoop did not end after the stream did")
		}
		if err == nil {
			t.Fatal("ReadLoop returned nil")
		}
		c.Close()
		if err := <-done; err != nil {
			t.Fatalf("fake server: %v", err)
		}
	})
}

func TestReadLoopScripted(t *testing.T) {
	type confirm struct {
		tag       uint64
		multiple  bool
		ack       bool
		delivered string
	}
	cases := []struct {
		name    string
		script  []byte
		want    []confirm // confirms and deliveries, in order
		wantErr func(error) bool
	}{
		{"confirms", seeds()[1], []confirm{{1, false, true, ""}, {3, true, true, ""}, {4, false, false, ""}},
			func(err error) bool { return errors.Is(err, io.EOF) }},
		{"deliveries", frames(delivery(1, "hello"), delivery(2, ""), delivery(3, "x")),
			[]confirm{{1, false, false, "hello"}, {2, false, false, ""}, {3, false, false, "x"}},
			func(err error) bool { return errors.Is(err, io.EOF) }},
		{"connection close", seeds()[4], nil, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Code == 320 && !e.Channel
		}},
		{"channel close", seeds()[5], nil, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Code == 404 && e.Channel && e.ClassID == 60 && e.MethodID == 40
		}},
		{"body too long", seeds()[6], nil, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"body too large", seeds()[7], nil, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"frame too large", seeds()[8], nil, func(err error) bool { return errors.Is(err, wire.ErrFrameTooLarge) }},
		{"stray body", seeds()[9], nil, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"cancel", seeds()[10], nil, func(err error) bool { return err != nil && !errors.Is(err, io.EOF) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, done := dialFake(t, tc.script)
			defer c.Close()
			var got []confirm
			err := c.ReadLoop(Handler{
				Confirm: func(tag uint64, multiple, ack bool) { got = append(got, confirm{tag, multiple, ack, ""}) },
				Deliver: func(tag uint64, _ bool, body []byte) { got = append(got, confirm{tag, false, false, string(body)}) },
			})
			if !tc.wantErr(err) {
				t.Errorf("ReadLoop returned %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	cases := []struct{ in, addr, user, pass, vhost string }{
		{"amqp://guest:guest@127.0.0.1:5673/", "127.0.0.1:5673", "guest", "guest", "/"},
		{"amqp://127.0.0.1", "127.0.0.1:5672", "guest", "guest", "/"},
		{"amqp://u:p%40ss@h:1/%2f", "h:1", "u", "p@ss", "/"},
		{"amqp://u@h/prod", "h:5672", "u", "guest", "prod"},
	}
	for _, tc := range cases {
		addr, user, pass, vhost, err := parseURL(tc.in)
		if err != nil || addr != tc.addr || user != tc.user || pass != tc.pass || vhost != tc.vhost {
			t.Errorf("parseURL(%q) = %q %q %q %q %v", tc.in, addr, user, pass, vhost, err)
		}
	}
	if _, _, _, _, err := parseURL("amqps://h/"); err == nil {
		t.Error("amqps accepted")
	}
}
