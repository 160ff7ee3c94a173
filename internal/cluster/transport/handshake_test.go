package transport

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
)

func TestHelloRoundTrip(t *testing.T) {
	h, err := newHello(42, "prod-eu")
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHello(h.appendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Fatalf("decoded %+v, want %+v", got, h)
	}
	b := h.appendTo(nil)
	for name, bad := range map[string][]byte{
		"magic":    append([]byte("HTTP"), b[4:]...),
		"version":  append(append([]byte(magic), 9), b[5:]...),
		"trailing": append(b, 0),
		"short":    b[:len(b)-1],
	} {
		if _, err := decodeHello(bad); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestProofBindsEverything checks that a proof depends on the secret,
// the role, the cluster, both ids and both nonces, so that no recorded
// or reflected proof passes.
func TestProofBindsEverything(t *testing.T) {
	d, _ := newHello(1, "c")
	a, _ := newHello(2, "c")
	secret := []byte("s3cret")
	p := proof(secret, roleDialer, "c", &d, &a)
	if !checkProof(secret, p, roleDialer, "c", &d, &a) {
		t.Fatal("a good proof is refused")
	}
	d2, _ := newHello(1, "c") // a fresh nonce
	swapped := a
	swapped.NodeID = 3
	for name, ok := range map[string]bool{
		"other secret":   checkProof([]byte("other"), p, roleDialer, "c", &d, &a),
		"reflected":      checkProof(secret, p, roleAcceptor, "c", &d, &a),
		"other cluster":  checkProof(secret, p, roleDialer, "c2", &d, &a),
		"replayed":       checkProof(secret, p, roleDialer, "c", &d2, &a),
		"other node":     checkProof(secret, p, roleDialer, "c", &d, &swapped),
		"empty proof":    checkProof(secret, nil, roleDialer, "c", &d, &a),
		"proof, no key":  checkProof(nil, p, roleDialer, "c", &d, &a),
		"truncated":      checkProof(secret, p[:16], roleDialer, "c", &d, &a),
		"no key, no key": !checkProof(nil, nil, roleDialer, "c", &d, &a),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

// scriptConn is a net.Conn that reads a fixed script and swallows
// writes: the other side of a handshake driven by a fuzzer.
type scriptConn struct{ r io.Reader }

func (c *scriptConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

func quietTransport(t testing.TB, id cluster.NodeID, secret []byte) *Transport {
	tr, err := New(cluster.Config{
		NodeID:    id,
		Peers:     map[cluster.NodeID]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"},
		ClusterID: "c",
		Secret:    secret,
	}, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func record(typ byte, body []byte) []byte {
	var b bytes.Buffer
	writeRecord(&b, typ, body)
	return b.Bytes()
}

// FuzzHandshake drives both sides of the handshake with arbitrary bytes
// from the other side: nothing may panic, and only a script holding a
// proper hello gets a connection.
func FuzzHandshake(f *testing.F) {
	h, _ := newHello(1, "c")
	f.Add(append(record(recHello, h.appendTo(nil)), record(recProof, nil)...))
	h3, _ := newHello(3, "c")
	f.Add(append(record(recHello, h3.appendTo(nil)), record(recOK, make([]byte, proofSize))...))
	f.Add(record(recRefuse, []byte("cluster-id")))
	f.Add([]byte{0xff, 0xff, 1})
	acceptor := quietTransport(f, 2, nil)
	dialer := quietTransport(f, 2, []byte("secret"))
	f.Fuzz(func(t *testing.T, script []byte) {
		// The hello alone: what decodes must re-encode the same.
		if got, err := decodeHello(script); err == nil {
			if again := got.appendTo(nil); !bytes.Equal(again, script) {
				t.Fatalf("hello %x re-encodes as %x", script, again)
			}
		}
		if c, err := acceptor.accept(&scriptConn{bytes.NewReader(script)}); err == nil {
			if c.p.id != 1 {
				t.Fatalf("accepted node %d, which may not dial node 2", c.p.id)
			}
		}
		// A dialer holding a secret never accepts the script's proof
		// (the script cannot know our nonce).
		if _, err := dialer.dialHandshake(&scriptConn{bytes.NewReader(script)}, dialer.peer(3), "127.0.0.1:3"); err == nil {
			t.Fatal("the dialer accepted a scripted acceptor")
		}
	})
}
