package test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hostileScale multiplies the hostile-client test's counts:
// SLUICE_HOSTILE_SCALE=20 for a longer campaign than CI's (about a minute).
func hostileScale() int {
	if n, err := strconv.Atoi(os.Getenv("SLUICE_HOSTILE_SCALE")); err == nil && n > 0 {
		return n
	}
	return 1
}

// parallel runs fn(i) for i in [0, n), at most width at a time.
func parallel(n, width int, fn func(i int)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// abandon closes a connection with a reset, as a client that vanishes.
func abandon(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}

// normalClientsWork runs a round trip through amqp091-go and franz-go.
func normalClientsWork(t *testing.T, b *broker, topic string) {
	t.Helper()
	ch := b.channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("amqp after the abuse: %v", err)
	}
	if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("still here")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the message back", func() bool {
		m, ok, err := ch.Get(q.Name, true)
		return err == nil && ok && string(m.Body) == "still here"
	})
	cl := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t, 20*time.Second)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("still here")}).FirstErr(); err != nil {
		t.Fatalf("kafka after the abuse: %v", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kafka fetch after the abuse: %v", err)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == "still here" })
		if found {
			return
		}
	}
}

// The hostile-client test: thousands of connections opened and abandoned
// on both ports, slowloris frames, oversized frames and messages, a
// consumer that never reads, floods of failed AMQP logins and (when the
// broker has SASL) failed Kafka SaslAuthenticates. The broker refuses
// each with its protocol's error or drops it after its timeout, counts
// it, serves normal clients throughout, and afterwards its resident
// memory is back near its baseline.
func TestHostileClients(t *testing.T) {
	scale := hostileScale()
	b := startBroker(t, "--frame-timeout=1s", "--amqp-write-timeout=2s", "--kafka-write-timeout=2s",
		"--amqp-handshake-timeout=2s", "--kafka-idle-timeout=5s", "--amqp-max-message-bytes=65536")
	b.createTopic(t, "hostile", 1, nil)
	normalClientsWork(t, b, "hostile")
	baseline := rssMiB(t, b)
	t.Logf("baseline RSS %d MiB, scale %d", baseline, scale)

	t.Run("abandoned connections", func(t *testing.T) {
		s0 := b.scrape(t)
		a0, _ := s0.value("sluice_connections", "protocol=amqp")
		k0, _ := s0.value("sluice_connections", "protocol=kafka")
		n := 3000 * scale
		var amqpFailed, kafkaFailed sync.Map
		parallel(n, 200, func(i int) {
			for _, addr := range []string{b.AMQP, b.Kafka} {
				nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					if addr == b.AMQP {
						amqpFailed.Store(i, err)
					} else {
						kafkaFailed.Store(i, err)
					}
					continue
				}
				switch {
				case addr == b.AMQP && i%3 == 1:
					nc.Write(wire.ProtocolHeader) // then vanish mid-handshake
				case addr == b.Kafka && i%3 == 1:
					nc.Write(kafkaFrame(kmsg.NewPtrApiVersionsRequest(), 0, 1)[:9]) // half a request
				case i%3 == 2:
					nc.Write([]byte{0, 0}) // a torn size or header
				}
				abandon(nc)
			}
		})
		count := func(m *sync.Map) (k int) { m.Range(func(_, _ any) bool { k++; return true }); return }
		if a, k := count(&amqpFailed), count(&kafkaFailed); a+k > 0 {
			t.Fatalf("of %d connections per port, %d AMQP and %d Kafka dials failed", n, a, k)
		}
		waitFor(t, 30*time.Second, "the abandoned connections gone", func() bool {
			s := b.scrape(t)
			a, _ := s.value("sluice_connections", "protocol=amqp")
			k, _ := s.value("sluice_connections", "protocol=kafka")
			return a == a0 && k == k0
		})
	})

	t.Run("slowloris", func(t *testing.T) {
		n := 50 * scale
		closed := make(chan error, 2*n)
		parallel(2*n, 2*n, func(i int) {
			addr, frame := b.Kafka, kafkaFrame(kmsg.NewPtrMetadataRequest(), 4, 1)
			if i%2 == 0 {
				addr, frame = b.AMQP, append(append([]byte{}, wire.ProtocolHeader...), wire.AppendMethodFrame(nil, 0, &wire.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest"})...)
			}
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				closed <- err
				return
			}
			defer nc.Close()
			deadline := time.Now().Add(20 * time.Second)
			for j := 0; time.Now().Before(deadline); j++ {
				if _, err := nc.Write(frame[j%len(frame) : j%len(frame)+1]); err != nil {
					closed <- nil
					return
				}
				nc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
				if _, err := nc.Read(make([]byte, 512)); err != nil && !isTimeoutErr(err) {
					closed <- nil
					return
				}
			}
			closed <- errors.New("a dribbling connection was kept 20s")
		})
		for range 2 * n {
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("oversized", func(t *testing.T) {
		// An AMQP frame past frame_max: 501 FRAME_ERROR.
		r := dialRaw(t, b)
		r.handshake(wire.ConnectionTuneOk{ChannelMax: 8, FrameMax: 131072})
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectMethod(&wire.ChannelOpenOk{})
		r.send(wire.AppendFrame(nil, wire.FrameBody, 1, make([]byte, 200000)))
		r.expectClose(wire.FrameError)
		// A message past amqp_max_message_bytes: 406.
		ch := b.channel(t)
		closedCh := ch.NotifyClose(make(chan *amqp.Error, 1))
		ch.Publish("", "nowhere", false, false, amqp.Publishing{Body: make([]byte, 70000)})
		if e := <-closedCh; e == nil || e.Code != amqp.PreconditionFailed {
			t.Fatalf("an oversized message: %v", e)
		}
		// A Kafka frame announcing 1 GiB: closed before any of it is read.
		nc, err := net.Dial("tcp", b.Kafka)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte{0x40, 0, 0, 0, 0, 0})
		if err := closedByServer(nc, 10*time.Second); err != nil {
			t.Fatalf("a 1 GiB Kafka frame: %v", err)
		}
		// A record batch past max.message.bytes: MESSAGE_TOO_LARGE.
		cl := b.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(4<<20))
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "hostile", Value: bytes.Repeat([]byte{1}, 2<<20)}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("a 2 MiB record: %v", err)
		}
	})

	t.Run("consumer that never reads", func(t *testing.T) {
		ch := b.channel(t)
		q, err := ch.QueueDeclare("never-read", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 60000)
		for range 300 * scale {
			if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		before := b.counter(t, "sluice_connections_dropped_total", "listener=amqp", "reason=write_timeout")
		r := dialRaw(t, b)
		r.handshake(wire.ConnectionTuneOk{ChannelMax: 8, FrameMax: 131072})
		r.sendMethod(1, &wire.ChannelOpen{})
		r.expectMethod(&wire.ChannelOpenOk{})
		r.sendMethod(1, &wire.BasicConsume{Queue: q.Name})
		waitFor(t, 30*time.Second, "the consumer that never reads dropped", func() bool {
			return b.counter(t, "sluice_connections_dropped_total", "listener=amqp", "reason=write_timeout") > before
		})
		waitFor(t, 10*time.Second, "its messages back in the queue", func() bool {
			q, err := ch.QueueDeclarePassive(q.Name, false, false, false, false, nil)
			return err == nil && q.Messages == 300*scale
		})
		if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
			t.Fatal(err)
		}
	})

	// Failed logins, each flood from an address of its own (the broker
	// slows failed logins per address: after a burst their answers are
	// held, and these clients give up after 2s): none let in, the first
	// answered with the protocol's refusal, and the broker unharmed.
	t.Run("failed AMQP logins", func(t *testing.T) {
		n := 300 * scale
		var accepted, refused atomic.Int64
		parallel(n, 100, func(i int) {
			c, err := amqp.DialConfig("amqp://guest:wrong@"+b.AMQP+"/", amqp.Config{Dial: dialFrom("127.0.0.2")})
			switch {
			case err == nil:
				accepted.Add(1)
				c.Close()
			case errors.Is(err, amqp.ErrCredentials) || amqpErrCode(err) == amqp.AccessRefused:
				refused.Add(1)
			}
		})
		if accepted.Load() > 0 {
			t.Fatalf("%d of %d logins with a wrong password let in", accepted.Load(), n)
		}
		if refused.Load() == 0 {
			t.Fatalf("none of %d logins with a wrong password answered ACCESS_REFUSED", n)
		}
		t.Logf("%d of %d failed AMQP logins refused (ACCESS_REFUSED, or ErrCredentials from amqp091-go giving up on an answer the limiter holds)", refused.Load(), n)
	})

	t.Run("failed Kafka SASL logins", func(t *testing.T) {
		// Kafka SASL (SaslHandshake, key 17) came with another part of
		// issue 15; the guard stays for builds without it.
		adm := b.client(t)
		av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t, 10*time.Second), adm)
		if err != nil {
			t.Fatal(err)
		}
		has := false
		for _, k := range av.ApiKeys {
			has = has || k.ApiKey == 17
		}
		if !has {
			t.Skip("no SaslHandshake (key 17) yet: the SASL part of issue 15 adds it; remove this guard after merging it")
		}
		// Each login with a wrong password must fail: with
		// SASL_AUTHENTICATION_FAILED, a closed connection, or no answer
		// while failed logins from this address are rate-limited.
		n := 300 * scale
		var accepted, answered atomic.Int64
		parallel(n, 100, func(i int) {
			nc, err := dialFrom("127.0.0.3")("tcp", b.Kafka)
			if err != nil {
				return
			}
			defer nc.Close()
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Mechanism = "PLAIN"
			if _, err := nc.Write(kafkaFrame(hs, 1, 1)); err != nil {
				return
			}
			if _, err := readKafkaResponse(nc); err != nil {
				return
			}
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.SASLAuthBytes = []byte("\x00nobody\x00wrong")
			if _, err := nc.Write(kafkaFrame(au, 1, 2)); err != nil {
				return
			}
			body, err := readKafkaResponse(nc)
			if err != nil {
				return
			}
			answered.Add(1)
			resp := kmsg.NewPtrSASLAuthenticateResponse()
			resp.SetVersion(1)
			if resp.ReadFrom(body) != nil || resp.ErrorCode == 0 {
				accepted.Add(1)
			}
		})
		if accepted.Load() > 0 {
			t.Fatalf("%d of %d SASL logins with a wrong password were not refused", accepted.Load(), n)
		}
		if answered.Load() == 0 {
			t.Fatalf("none of %d SASL logins with a wrong password was answered", n)
		}
		t.Logf("%d of %d failed SASL logins answered SASL_AUTHENTICATION_FAILED (the rest closed or held)", answered.Load(), n)
	})

	// Afterwards: normal clients work and memory comes back near where it
	// started (connections' buffers, goroutines and frames all released).
	normalClientsWork(t, b, "hostile")
	const slack = 64
	if os.Getenv("SLUICE_TEST_RACE") != "" {
		// The race detector's shadow memory grows with the goroutines and
		// bytes it has seen and is never given back: no bound to check.
		t.Logf("race build: RSS %d MiB after, %d MiB before; memory bound not checked", rssMiB(t, b), baseline)
	} else {
		waitFor(t, 60*time.Second, "resident memory back near its baseline", func() bool {
			rss := rssMiB(t, b)
			if rss > baseline+slack {
				t.Logf("RSS %d MiB (baseline %d)", rss, baseline)
				time.Sleep(2 * time.Second)
				return false
			}
			t.Logf("RSS %d MiB, baseline %d MiB", rss, baseline)
			return true
		})
	}
	s := b.scrape(t)
	for _, want := range [][]string{
		{"listener=amqp", "reason=handshake_timeout"}, {"listener=kafka", "reason=frame_timeout"},
		{"listener=kafka", "reason=frame_too_large"}, {"listener=amqp", "reason=frame_too_large"},
		{"listener=amqp", "reason=write_timeout"},
	} {
		if v, _ := s.value("sluice_connections_dropped_total", want...); v < 1 {
			t.Errorf("sluice_connections_dropped_total%v = %v", want, v)
		}
	}
}

// dialFrom dials from a loopback address of its own (all of 127/8 is
// loopback on Linux), with a 2s deadline on the connection.
func dialFrom(local string) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		nc, err := d.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		return nc, nil
	}
}

// readKafkaResponse reads one response frame and returns its body after
// the correlation id (and, flexible or not, leaves header tags to the
// caller: SASL responses at v1 are not flexible).
func readKafkaResponse(nc net.Conn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return nil, err
	}
	n := int(size[0])<<24 | int(size[1])<<16 | int(size[2])<<8 | int(size[3])
	if n < 4 || n > 1<<20 {
		return nil, errors.New("bad response size")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(nc, buf); err != nil {
		return nil, err
	}
	return buf[4:], nil
}
