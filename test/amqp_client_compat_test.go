package test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
)

// What real clients' own test suites and orderly shutdowns expect of the
// server, where Sluice follows RabbitMQ (docs/amqp-compatibility.md).

// TestAMQPChannelFlowActiveFalseNotImplemented: as RabbitMQ, channel.flow
// with active=true is answered flow-ok, and active=false (a client pausing
// its deliveries, which RabbitMQ leaves to basic.qos) is 540
// NOT_IMPLEMENTED, which closes the connection.
func TestAMQPChannelFlowActiveFalseNotImplemented(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Flow(true); err != nil {
		t.Fatalf("channel.flow active=true: %v", err)
	}
	err = ch.Flow(false)
	if amqpErrCode(err) != amqp.NotImplemented {
		t.Fatalf("channel.flow active=false: %v, want 540 NOT_IMPLEMENTED", err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.NotImplemented || !strings.Contains(e.Reason, "active=false") {
			t.Fatalf("connection closed with %v, want 540 NOT_IMPLEMENTED - active=false", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after 540")
	}
	stillServes(t, b)
}

// TestAMQPCrossingChannelClose: the server closes a channel (404) while
// the client closes the same channel; the two channel.close frames cross.
// As RabbitMQ does, the server answers the client's close with close-ok
// and keeps waiting for the close-ok to its own, so the client's close-ok
// that follows is not a frame on an unknown channel: the connection stays
// up and the channel number can be opened again.
func TestAMQPCrossingChannelClose(t *testing.T) {
	b := startBroker(t)
	r := dialRaw(t, b)
	r.handshake(wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 131072})
	for round := range 3 {
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectMethod(&wire.ChannelOpenOk{})
		// One write: a passive declare of a missing queue (the server
		// closes the channel, 404) and the client's own channel.close,
		// sent before the client has read the server's close.
		out := wire.AppendMethodFrame(nil, 1, &wire.QueueDeclare{Queue: "missing", Passive: true})
		out = wire.AppendMethodFrame(out, 1, &wire.ChannelClose{ReplyCode: 200, ReplyText: "bye"})
		r.send(out)
		m := r.expectMethod(&wire.ChannelClose{}).(*wire.ChannelClose)
		if m.ReplyCode != wire.NotFound {
			t.Fatalf("round %d: server's channel.close %d %q, want 404", round, m.ReplyCode, m.ReplyText)
		}
		// The client answers the server's close, as every client does...
		r.sendMethod(1, &wire.ChannelCloseOk{})
		// ...and gets the answer to its own.
		r.expectMethod(&wire.ChannelCloseOk{})
	}
	// The connection still works: the channel opens again and a queue is
	// declared on it.
	r.sendMethod(1, &wire.ChannelOpen{})
	r.expectMethod(&wire.ChannelOpenOk{})
	r.sendMethod(1, &wire.QueueDeclare{Queue: "after-crossing"})
	r.expectMethod(&wire.QueueDeclareOk{})
	// And is closed the orderly way.
	r.sendMethod(0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "done"})
	r.expectMethod(&wire.ConnectionCloseOk{})
	r.expectCleanEOF()
}

// TestAMQPCloseIsOrderly: after connection.close-ok the server shuts its
// side and reads what the client still sends (a heartbeat that crossed the
// close, say) until the client closes, instead of closing a socket with
// unread input, which makes the kernel send a reset: the client sees a
// clean end of stream, never "connection reset by peer".
func TestAMQPCloseIsOrderly(t *testing.T) {
	b := startBroker(t)
	hb := wire.AppendFrame(nil, wire.FrameHeartbeat, 0, nil)

	t.Run("client closes", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 131072})
		r.sendMethod(0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
		r.expectMethod(&wire.ConnectionCloseOk{})
		// A heartbeat the client's timer sent just after the close.
		r.send(hb)
		r.expectCleanEOF()
		// Still no reset for bytes that follow the server's FIN.
		r.send(hb)
		r.expectCleanEOF()
	})
	t.Run("server closes", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 131072})
		r.sendMethod(0, &wire.ChannelOpen{}) // channel 0: a hard error, 503
		r.expectMethod(&wire.ConnectionClose{})
		r.sendMethod(0, &wire.ConnectionCloseOk{})
		r.send(hb)
		r.expectCleanEOF()
		r.send(hb)
		r.expectCleanEOF()
	})
	t.Run("amqp091-go 200 times", func(t *testing.T) {
		for i := range 200 {
			conn, err := amqp.Dial(b.amqpURL())
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			ch, err := conn.Channel()
			if err != nil {
				t.Fatalf("channel %d: %v", i, err)
			}
			if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
				t.Fatalf("declare %d: %v", i, err)
			}
			if err := conn.Close(); err != nil {
				t.Fatalf("close %d: %v", i, err)
			}
		}
	})
	t.Run("pika 200 times", func(t *testing.T) {
		needPythonModule(t, "pika")
		runPikaCompat(t, b, "close_many")
	})
}

// expectCleanEOF reads until the server's end of stream, which must be a
// FIN (io.EOF), not a reset.
func (r *rawAMQP) expectCleanEOF() {
	r.t.Helper()
	f, err := r.next(5 * time.Second)
	switch {
	case err == nil:
		r.t.Fatalf("want end of stream, got frame type %d", f.Type)
	case errors.Is(err, syscall.ECONNRESET):
		r.t.Fatalf("the server reset the connection instead of closing it: %v", err)
	case !errors.Is(err, io.EOF):
		r.t.Fatalf("want a clean end of stream (EOF), got %v", err)
	}
}

// TestAMQPPikaChannelFlow: pika's BlockingChannel.flow gets RabbitMQ's
// answers: True for active=True, 540 for active=False.
func TestAMQPPikaChannelFlow(t *testing.T) {
	needPythonModule(t, "pika")
	b := startBroker(t)
	runPikaCompat(t, b, "flow")
}

func runPikaCompat(t *testing.T, b *broker, scenario string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("python", "pika_compat.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 90*time.Second, "", python3Path, script, scenario, b.AMQP).must(t, b, "pika_compat.py "+scenario)
	t.Logf("pika_compat.py %s:\n%s", scenario, r.Stdout)
}

// TestAMQPRedeliveredAfterKill: messages delivered (to a consumer or by
// basic.get) and not acked before the broker stopped come back flagged
// redelivered, however it stopped (killed at once after the deliveries,
// or SIGTERM), as with RabbitMQ; messages never delivered come back
// unflagged. A consumer relies on the flag to know when to look for a
// duplicate. (TestAMQPRedeliveredAfterRestart covers a plain restart.)
func TestAMQPRedeliveredAfterKill(t *testing.T) {
	for _, tc := range []struct {
		stop string
		args amqp.Table
	}{
		{"SIGKILL", nil},
		{"SIGTERM", nil},
		{"SIGKILL priority", amqp.Table{"x-max-priority": int32(3)}},
	} {
		stop := tc.stop
		t.Run(stop, func(t *testing.T) {
			b := startBroker(t)
			func() {
				conn := b.dial(t)
				defer conn.Close()
				ch, err := conn.Channel()
				must := fatalIf(t)
				must(err)
				_, err = ch.QueueDeclare("work", true, false, false, false, tc.args)
				must(err)
				must(ch.Confirm(false))
				confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 6))
				for _, body := range []string{"a", "b", "c", "d", "e", "f"} {
					must(ch.Publish("", "work", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)}))
					if c := <-confirms; !c.Ack {
						t.Fatalf("publish %s nacked", body)
					}
				}
				must(ch.Qos(3, 0, false))
				deliveries, err := ch.Consume("work", "", false, false, false, false, nil)
				must(err)
				for _, want := range []string{"a", "b", "c"} {
					if d := recv(t, deliveries, 10*time.Second); string(d.Body) != want || d.Redelivered {
						t.Fatalf("delivered %q redelivered=%v, want %q first time", d.Body, d.Redelivered, want)
					}
				}
				get, err := conn.Channel()
				must(err)
				d, ok, err := get.Get("work", false)
				must(err)
				if !ok || string(d.Body) != "d" {
					t.Fatalf("basic.get: %v %q, want d", ok, d.Body)
				}
				// The broker stops with a, b, c, d delivered and unacked.
				if strings.HasPrefix(stop, "SIGKILL") {
					b.Kill()
				} else {
					b.Stop()
				}
			}()
			b.Restart()

			ch := b.channel(t)
			deliveries, err := ch.Consume("work", "", false, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct {
				body string
				re   bool
			}{{"a", true}, {"b", true}, {"c", true}, {"d", true}, {"e", false}, {"f", false}} {
				d := recv(t, deliveries, 10*time.Second)
				if string(d.Body) != want.body || d.Redelivered != want.re {
					t.Fatalf("after %s: %q redelivered=%v, want %q redelivered=%v", stop, d.Body, d.Redelivered, want.body, want.re)
				}
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
			}
			noDelivery(t, deliveries, 200*time.Millisecond)
		})
	}
}
