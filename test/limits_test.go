package test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaFrame frames a Kafka request (header v1, client id "raw").
func kafkaFrame(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	body := []byte{}
	if req.IsFlexible() {
		body = append(body, 0) // no header tags
	}
	body = req.AppendTo(body)
	frame := binary.BigEndian.AppendUint32(nil, uint32(8+2+3+len(body)))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, 3)
	frame = append(frame, "raw"...)
	return append(frame, body...)
}

// closedByServer waits up to d for the server to close nc (EOF or reset
// on read; what arrives before is dropped).
func closedByServer(nc net.Conn, d time.Duration) error {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	if err == nil || !isTimeoutErr(err) {
		return nil
	}
	return err
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// counter reads a counter of the broker's /metrics (0 when absent).
func (b *broker) counter(t testing.TB, name string, labels ...string) float64 {
	v, _ := b.scrape(t).value(name, labels...)
	return v
}

// The AMQP listener's cap: a connection past it is closed before the
// handshake (amqp091-go's dial fails), counted in
// sluice_connections_refused_total; once one closes, a new one is let in.
func TestLimitsAMQPMaxConnections(t *testing.T) {
	b := startBroker(t, "--amqp-max-connections=2")
	c1, c2 := b.dial(t), b.dial(t)
	if _, err := dialAMQPQuick(b); err == nil {
		t.Fatal("a third AMQP connection was let in past amqp_max_connections=2")
	}
	if v := b.counter(t, "sluice_connections_refused_total", "listener=amqp", "reason=max_connections"); v < 1 {
		t.Fatalf("sluice_connections_refused_total{amqp,max_connections} = %v, want >= 1", v)
	}
	c1.Close()
	waitFor(t, 10*time.Second, "a new AMQP connection once one closed", func() bool {
		c, err := dialAMQPQuick(b)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	_ = c2
}

// The Kafka listener's cap, as Kafka's max.connections: while at the cap
// it accepts nothing (a new client waits unanswered); when a connection
// closes the next is served.
func TestLimitsKafkaMaxConnections(t *testing.T) {
	b := startBroker(t, "--kafka-max-connections=2")
	var held []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", b.Kafka)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		held = append(held, nc)
	}
	// Both are served (the broker counts them once it answers).
	for _, nc := range held {
		nc.Write(kafkaFrame(kmsg.NewPtrApiVersionsRequest(), 0, 1))
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var size [4]byte
		if _, err := io.ReadFull(nc, size[:]); err != nil {
			t.Fatalf("a connection under the cap got no answer: %v", err)
		}
	}
	if kafkaAnswers(b.Kafka) {
		t.Fatal("a third Kafka connection was served past kafka_max_connections=2")
	}
	if v := b.counter(t, "sluice_connections_refused_total", "listener=kafka", "reason=max_connections"); v < 1 {
		t.Fatalf("sluice_connections_refused_total{kafka,max_connections} = %v, want >= 1", v)
	}
	held[0].Close()
	waitFor(t, 10*time.Second, "a Kafka connection served once one closed", func() bool { return kafkaAnswers(b.Kafka) })
}

// Message size limits, each with its protocol's error: an AMQP body over
// amqp_max_message_bytes closes the channel with 406 PRECONDITION_FAILED
// and RabbitMQ's text; a Kafka batch over the topic's max.message.bytes
// gets MESSAGE_TOO_LARGE. Messages under the limits go through.
func TestLimitsMessageSize(t *testing.T) {
	b := startBroker(t, "--amqp-max-message-bytes=1000")
	t.Run("amqp", func(t *testing.T) {
		ch := b.channel(t)
		q, err := ch.QueueDeclare("sized", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		ch.Publish("", q.Name, false, false, amqp.Publishing{Body: make([]byte, 1001)})
		select {
		case e := <-closed:
			if e == nil || e.Code != amqp.PreconditionFailed || !strings.Contains(e.Reason, "message size 1001 is larger than configured max size 1000") {
				t.Fatalf("oversized publish closed the channel with %v, want 406 and RabbitMQ's text", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("an oversized publish did not close the channel")
		}
		ch2 := b.channel(t)
		got, ok, err := ch2.Get(q.Name, true)
		if err != nil || !ok || len(got.Body) != 1000 {
			t.Fatalf("the message at the limit: ok=%v err=%v", ok, err)
		}
		if _, ok, _ := ch2.Get(q.Name, true); ok {
			t.Fatal("the oversized message was enqueued")
		}
	})
	t.Run("kafka", func(t *testing.T) {
		limit := "1024"
		b.createTopic(t, "small", 1, map[string]*string{"max.message.bytes": &limit})
		cl := b.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
		r := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "small", Value: make([]byte, 4096)})
		if err := r.FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("a 4 KiB record to a topic of max.message.bytes 1024: %v, want MESSAGE_TOO_LARGE", err)
		}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "small", Value: make([]byte, 100)}).FirstErr(); err != nil {
			t.Fatalf("a small record: %v", err)
		}
	})
}

// Slowloris and idle clients: a frame dribbled slower than frame_timeout
// is dropped on both protocols, a Kafka connection idle past
// kafka_idle_timeout is closed, and an AMQP handshake not done within
// amqp_handshake_timeout is closed; each counted by reason, and the
// broker serves others throughout.
func TestLimitsSlowClients(t *testing.T) {
	b := startBroker(t, "--frame-timeout=1s", "--kafka-idle-timeout=2s", "--amqp-handshake-timeout=2s")
	dribble := func(nc net.Conn, frame []byte) error {
		// A byte every 300ms, until the server gives up (or 20s).
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			if _, err := nc.Write(frame[i%len(frame) : i%len(frame)+1]); err != nil {
				return nil // closed by the server
			}
			nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := nc.Read(make([]byte, 1)); err != nil && !isTimeoutErr(err) {
				return nil
			}
		}
		return errors.New("the server kept a dribbling connection for 20s")
	}
	t.Run("amqp frame", func(t *testing.T) {
		r := dialRaw(t, b)
		r.handshake(wire.ConnectionTuneOk{ChannelMax: 8, FrameMax: 131072, Heartbeat: 0})
		frame := wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
		r.send(frame[:7]) // the header: the frame has started
		if err := dribble(r.nc, frame[7:]); err != nil {
			t.Fatal(err)
		}
		stillServes(t, b)
	})
	t.Run("kafka request", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.Kafka)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		frame := kafkaFrame(kmsg.NewPtrMetadataRequest(), 4, 1)
		nc.Write(frame[:6]) // size and key
		if err := dribble(nc, frame[6:]); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("kafka idle", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.Kafka)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := closedByServer(nc, 20*time.Second); err != nil {
			t.Fatalf("an idle Kafka connection was not closed: %v", err)
		}
	})
	t.Run("amqp handshake", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.AMQP)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write(wire.ProtocolHeader) // then nothing
		if err := closedByServer(nc, 20*time.Second); err != nil {
			t.Fatalf("a stalled AMQP handshake was not closed: %v", err)
		}
	})
	s := b.scrape(t)
	for _, want := range [][]string{
		{"listener=amqp", "reason=frame_timeout"}, {"listener=kafka", "reason=frame_timeout"},
		{"listener=kafka", "reason=idle_timeout"}, {"listener=amqp", "reason=handshake_timeout"},
	} {
		if v, _ := s.value("sluice_connections_dropped_total", want...); v < 1 {
			t.Errorf("sluice_connections_dropped_total%v = %v, want >= 1", want, v)
		}
	}
	if !kafkaAnswers(b.Kafka) {
		t.Fatal("the Kafka listener does not answer after the slow clients")
	}
}

// A consumer that never reads its deliveries: once the broker's writes
// to it stall for amqp_write_timeout it is disconnected, and its unacked
// messages go back to the queue for another consumer, every one of them.
// A Kafka client that never reads its Fetch answers is disconnected
// after kafka_write_timeout.
func TestLimitsStalledReaders(t *testing.T) {
	b := startBroker(t, "--amqp-write-timeout=2s", "--kafka-write-timeout=2s")
	t.Run("amqp", func(t *testing.T) {
		ch := b.channel(t)
		q, err := ch.QueueDeclare("stalled", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		const n, size = 400, 64 << 10 // 25 MiB: more than socket buffers hold
		body := bytes.Repeat([]byte("x"), size)
		for i := range n {
			binary.BigEndian.PutUint32(body, uint32(i))
			if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		r := dialRaw(t, b)
		r.handshake(wire.ConnectionTuneOk{ChannelMax: 8, FrameMax: 131072, Heartbeat: 0})
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectMethod(&wire.ChannelOpenOk{})
		r.sendMethod(1, &wire.BasicConsume{Queue: q.Name, ConsumerTag: "never-reads"})
		// Never read again: the broker's writes stall, then it gives up.
		waitFor(t, 30*time.Second, "the stalled consumer dropped for write_timeout", func() bool {
			v := b.counter(t, "sluice_connections_dropped_total", "listener=amqp", "reason=write_timeout")
			return v >= 1
		})
		// Every message is delivered to a consumer that reads.
		ch2 := b.channel(t)
		ch2.Qos(100, 0, false)
		d, err := ch2.Consume(q.Name, "", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint32]bool{}
		for len(seen) < n {
			m := recv(t, d, 20*time.Second)
			seen[binary.BigEndian.Uint32(m.Body)] = true
			m.Ack(false)
		}
	})
	t.Run("kafka", func(t *testing.T) {
		b.createTopic(t, "big", 1, nil)
		cl := b.client(t, kgo.ProducerBatchMaxBytes(1<<20))
		val := bytes.Repeat([]byte("y"), 512<<10)
		for range 16 {
			if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "big", Value: val}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		nc, err := net.Dial("tcp", b.Kafka)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetReadBuffer(4 << 10)
		}
		fetch := kmsg.NewPtrFetchRequest()
		fetch.MaxBytes, fetch.ReplicaID = 64<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "big"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 64 << 20
		ft.Partitions = append(ft.Partitions, fp)
		fetch.Topics = append(fetch.Topics, ft)
		// Fetch the 8 MiB again and again, reading nothing.
		for i := range 16 {
			nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(kafkaFrame(fetch, 4, int32(i))); err != nil {
				break
			}
		}
		waitFor(t, 30*time.Second, "the stalled Kafka reader dropped for write_timeout", func() bool {
			return b.counter(t, "sluice_connections_dropped_total", "listener=kafka", "reason=write_timeout") >= 1
		})
		if !kafkaAnswers(b.Kafka) {
			t.Fatal("the Kafka listener does not answer after the stalled reader")
		}
	})
}

// RabbitMQ's vhost and user limits, set through the management API and
// refused with RabbitMQ's errors through amqp091-go: a vhost's
// max-connections (530 on connection.open), max-queues (406 on
// queue.declare of a new queue), a user's max-channels (530 on
// channel.open); cleared, they let clients in again.
func TestLimitsVhostAndUser(t *testing.T) {
	b := startBroker(t)
	b.api(t, "PUT", "/api/vhost-limits/%2F/max-connections", map[string]any{"value": 1}, http.StatusNoContent)
	b.api(t, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]any{"value": 2}, http.StatusNoContent)
	b.api(t, "PUT", "/api/vhost-limits/nope/max-queues", map[string]any{"value": 2}, http.StatusBadRequest)
	b.api(t, "PUT", "/api/vhost-limits/%2F/max-channels", map[string]any{"value": 2}, http.StatusBadRequest)
	var listed []struct {
		Vhost string           `json:"vhost"`
		Value map[string]int64 `json:"value"`
	}
	if err := json.Unmarshal(b.api(t, "GET", "/api/vhost-limits", nil, http.StatusOK), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Vhost != "/" || listed[0].Value["max-connections"] != 1 || listed[0].Value["max-queues"] != 2 {
		t.Fatalf("GET /api/vhost-limits: %+v", listed)
	}
	b.Kill() // acknowledged, so durable: they survive kill -9
	b.Restart()

	conn := b.dial(t)
	_, err := amqp.Dial(b.amqpURL())
	if code := amqpErrCode(err); code != amqp.NotAllowed || !strings.Contains(err.Error(), "connection limit (1) is reached") {
		t.Fatalf("a second connection to a vhost of max-connections 1: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"q1", "q2", "q1"} {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatalf("declaring %s under max-queues 2: %v", q, err)
		}
	}
	_, err = ch.QueueDeclare("q3", false, false, false, false, nil)
	if code := amqpErrCode(err); code != amqp.PreconditionFailed || !strings.Contains(err.Error(), "cannot declare queue 'q3': queue limit in vhost '/' (2) is reached") {
		t.Fatalf("a third queue under max-queues 2: %v", err)
	}
	b.api(t, "PUT", "/api/queues/%2F/q4", map[string]any{}, http.StatusBadRequest) // over HTTP too

	b.api(t, "PUT", "/api/user-limits/guest/max-channels", map[string]any{"value": 2}, http.StatusNoContent)
	if _, err := conn.Channel(); err != nil { // the second, the first closed
		t.Fatalf("a channel under max-channels 2: %v", err)
	}
	if _, err := conn.Channel(); err != nil {
		t.Fatalf("a second channel under max-channels 2: %v", err)
	}
	_, err = conn.Channel()
	if code := amqpErrCode(err); code != amqp.NotAllowed {
		t.Fatalf("a third channel under max-channels 2: %v", err)
	}
	if !conn.IsClosed() {
		waitFor(t, 5*time.Second, "the connection closed by 530", conn.IsClosed)
	}
	if v := b.counter(t, "sluice_connections_refused_total", "listener=amqp", "reason=user_max_channels"); v < 1 {
		t.Errorf("user_max_channels refusals counted %v", v)
	}

	// The CLI lists and clears them as rabbitmqctl would.
	out := mustAdmin(t, b, "limits", "list")
	for _, want := range []string{"vhost  /      max-connections  1", "vhost  /      max-queues       2", "user   guest  max-channels     2"} {
		if !strings.Contains(out, want) {
			t.Errorf("sluice limits list lacks %q:\n%s", want, out)
		}
	}
	mustAdmin(t, b, "limits", "clear", "vhost", "/", "max-connections")
	mustAdmin(t, b, "limits", "clear", "vhost", "/", "max-queues")
	mustAdmin(t, b, "limits", "clear", "user", "guest", "max-channels")
	if out := mustAdmin(t, b, "limits", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("after clearing every limit: %s", out)
	}
	c1, c2 := b.dial(t), b.dial(t)
	for _, c := range []*amqp.Connection{c1, c2} {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
			t.Fatalf("after the limits were cleared: %v", err)
		}
	}
}
