package test

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMalformedRequestsCloseOnlyTheirConnection sends broken frames on raw
// connections while a healthy client keeps producing: each broken
// connection is closed, the healthy one never notices, the server lives.
func TestMalformedRequestsCloseOnlyTheirConnection(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "healthy", 1, nil)
	healthy := b.client(t, kgo.DefaultProduceTopic("healthy"))
	produceSync(t, healthy, &kgo.Record{Value: []byte("before")})

	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"negative size":           {0x80, 0, 0, 0},
		"size over the limit":     {0x7f, 0xff, 0xff, 0xff, 0, 0},
		"tiny frame":              frame([]byte{0, 1}),
		"unknown api key":         frame([]byte{0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff}),
		"unsupported fetch v0":    frame([]byte{0, 1, 0, 0, 0, 0, 0, 1, 0xff, 0xff}),
		"client id past the end":  frame([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0x10, 0, 'x'}),
		"metadata array past end": frame([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0x10, 0, 0, 1, 'a'}),
		"produce v9 body garbage": frame(append([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0}, garbage...)),
		"random bytes":            garbage,
	}
	for name, payload := range cases {
		c, err := net.Dial("tcp", b.Kafka)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The server closes the connection without answering.
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			t.Errorf("%s: connection not closed by the server: %v", name, err)
		} else if n != 0 {
			t.Errorf("%s: server answered %d bytes to a broken request", name, n)
		}
		c.Close()
		produceSync(t, healthy, &kgo.Record{Value: []byte(name)})
	}
	cons := b.client(t, kgo.ConsumeTopics("healthy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consumeN(t, cons, len(cases)+1, 20*time.Second); len(got) != len(cases)+1 {
		t.Fatalf("healthy client's records: %d", len(got))
	}
}
