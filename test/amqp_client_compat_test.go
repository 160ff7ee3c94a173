package test

import (
	"errors"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
)

// What real clients' own test suites and orderly shutdowns expect of the
// server, where Sluice follows RabbitMQ (docs/amqp-compatibility.md).

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

func runPikaCompat(t *testing.T, b *broker, scenario string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("python", "pika_compat.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 90*time.Second, "", python3Path, script, scenario, b.AMQP).must(t, b, "pika_compat.py "+scenario)
	t.Logf("pika_compat.py %s:\n%s", scenario, r.Stdout)
}
