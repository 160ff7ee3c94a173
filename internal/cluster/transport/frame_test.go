package transport

import (
	"bytes"
	"encoding/binary"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// hb makes a heartbeat of group g from node 1 to node 2 as raft does:
// term and commit always present.
func hb(g cluster.GroupID, term, commit uint64) cluster.Envelope {
	return cluster.Envelope{Group: g, Msg: raftpb.Message{
		Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2)),
		Term: new(term), Commit: new(commit),
	}}
}

func hbr(g cluster.GroupID, term uint64) cluster.Envelope {
	return cluster.Envelope{Group: g, Msg: raftpb.Message{
		Type: raftpb.MsgHeartbeatResp.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(term),
	}}
}

func app(g cluster.GroupID, index uint64, data string) cluster.Envelope {
	return cluster.Envelope{Group: g, Msg: raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: new(uint64(1)), To: new(uint64(2)),
		Term: new(uint64(3)), LogTerm: new(uint64(3)), Index: new(index), Commit: new(index),
		Entries: []*raftpb.Entry{{Term: new(uint64(3)), Index: new(index + 1), Data: []byte(data)}},
	}}
}

func sameEnvelopes(t *testing.T, got, want []cluster.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d envelopes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Group != want[i].Group || !proto.Equal(&got[i].Msg, &want[i].Msg) {
			t.Fatalf("envelope %d: got group %d %v, want group %d %v", i, got[i].Group, &got[i].Msg, want[i].Group, &want[i].Msg)
		}
	}
}

func decodeOne(t *testing.T, frame []byte) []cluster.Envelope {
	t.Helper()
	if len(frame) < frameHeader || int(binary.BigEndian.Uint32(frame)) != len(frame)-frameHeader {
		t.Fatalf("frame length prefix %x does not match %d body bytes", frame[:min(4, len(frame))], len(frame)-frameHeader)
	}
	envs, err := DecodeFrame(frame[frameHeader:], 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func TestFrameRoundTrip(t *testing.T) {
	// Built in place: an Envelope holds a protobuf message, which must
	// not be copied once made.
	odd := []cluster.Envelope{hb(7, 2, 9), hbr(10, 4), hb(11, 1, 1), app(5, 1, ""), hb(8, 1, 0), hbr(9, 0)}
	odd[0].Msg.Context = []byte("read-index-ctx") // ReadIndex: must travel in full
	odd[1].Msg.Reject = new(false)                // present though false: cannot be compact
	odd[2].Msg.To = new(uint64(3))                // not to this peer
	odd[5].Msg.Term = nil                         // absent stays absent
	cases := []struct {
		name     string
		envs     []cluster.Envelope
		compacts int
	}{
		{"empty", nil, 0},
		{"heartbeats", []cluster.Envelope{hb(1, 5, 100), hb(2, 5, 0), hbr(3, 7), hb(1<<40, 1<<50, 1<<60)}, 4},
		{"mixed order kept", []cluster.Envelope{hb(1, 5, 1), app(1, 10, "x"), hb(2, 5, 1), hbr(3, 1), app(2, 1, "yy"), hb(4, 1, 1)}, 4},
		{"full only", odd[:4], 0},
		{"presence kept", odd[4:], 2},
		{"huge group travels full", []cluster.Envelope{hb(maxCompactGroup+1, 1, 1)}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := encoder{from: 1, to: 2}
			for i := range c.envs {
				if _, err := e.add(&c.envs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if e.compacts != c.compacts {
				t.Fatalf("%d compact entries, want %d", e.compacts, c.compacts)
			}
			frame, err := AppendFrame(nil, 1, 2, c.envs)
			if err != nil {
				t.Fatal(err)
			}
			sameEnvelopes(t, decodeOne(t, frame), c.envs)
		})
	}
}

// TestFrameCoalescedIsCompact checks the point of coalescing: a thousand
// groups' heartbeats cost a few bytes each, not a protobuf each.
func TestFrameCoalescedIsCompact(t *testing.T) {
	envs := make([]cluster.Envelope, 1000)
	full := 0
	for i := range envs {
		envs[i] = hb(cluster.GroupID(i+1), 12, uint64(100000+i))
		full += proto.Size(&envs[i].Msg)
	}
	frame, err := AppendFrame(nil, 1, 2, envs)
	if err != nil {
		t.Fatal(err)
	}
	if per := len(frame) / len(envs); per > 8 {
		t.Fatalf("%d bytes per coalesced heartbeat, want at most 8 (protobuf alone: %d)", per, full/len(envs))
	}
	sameEnvelopes(t, decodeOne(t, frame), envs)
}

// TestFramesSplitAtLimit checks that a queue larger than the frame limit
// goes out as several frames, each within the limit, that decode to the
// same envelopes in the same order.
func TestFramesSplitAtLimit(t *testing.T) {
	var envs []cluster.Envelope
	for i := range 300 {
		if i%3 == 0 {
			envs = append(envs, app(cluster.GroupID(i+1), uint64(i), string(bytes.Repeat([]byte{'d'}, i))))
		} else {
			envs = append(envs, hb(cluster.GroupID(i+1), 2, uint64(i)))
		}
	}
	e := encoder{from: 1, to: 2}
	for i := range envs {
		if _, err := e.add(&envs[i]); err != nil {
			t.Fatal(err)
		}
	}
	const limit = 1024
	out, n := e.frames(nil, limit)
	if n < 2 {
		t.Fatalf("%d frames, want a split", n)
	}
	var got []cluster.Envelope
	for k := 0; k < n; k++ {
		size := int(binary.BigEndian.Uint32(out))
		if size > limit || size == 0 {
			t.Fatalf("frame %d: %d bytes, limit %d", k, size, limit)
		}
		part, err := DecodeFrame(out[frameHeader:frameHeader+size], 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, part...)
		out = out[frameHeader+size:]
	}
	if len(out) != 0 {
		t.Fatalf("%d bytes after %d frames", len(out), n)
	}
	sameEnvelopes(t, got, envs)
}

func TestDecodeFrameRejects(t *testing.T) {
	for name, body := range map[string][]byte{
		"unknown tag":          {0x7f},
		"truncated message":    {tagMessage, 1, 10, 0},
		"group 0":              {tagMessage, 0, 0},
		"empty run":            {tagHeartbeat, 0},
		"run longer than body": {tagHeartbeat, 100, 8},
		"truncated entry":      {tagHeartbeat, 1, 8 | hbHasTerm},
		"compact group 0":      {tagHeartbeat, 1, hbHasTerm, 1},
		"bad protobuf":         {tagMessage, 1, 2, 0xff, 0xff},
		"overlong varint":      {tagMessage, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"responses":            {tagMessage, 1, 2, fieldResponses<<3 | 2, 0},
	} {
		if envs, err := DecodeFrame(body, 1, 2); err == nil {
			t.Errorf("%s: decoded %d envelopes, want an error", name, len(envs))
		}
	}
}

// TestFrameItemLimits: decoding multiplies memory (a byte of heartbeat
// becomes a struct of hundreds), so frames hold at most maxFrameItems
// envelopes; the encoder splits past it and the decoder refuses more.
// Messages with Responses (local to a node) are refused both ways.
func TestFrameItemLimits(t *testing.T) {
	envs := make([]cluster.Envelope, maxFrameItems+10)
	for i := range envs {
		envs[i] = hb(cluster.GroupID(i+1), 1, 1)
	}
	e := encoder{from: 1, to: 2}
	for i := range envs {
		e.add(&envs[i])
	}
	out, n := e.frames(nil, 64<<20)
	if n != 2 {
		t.Fatalf("%d frames for %d heartbeats, want 2", n, len(envs))
	}
	size := binary.BigEndian.Uint32(out)
	first, err := DecodeFrame(out[frameHeader:frameHeader+size], 1, 2)
	if err != nil || len(first) != maxFrameItems {
		t.Fatalf("first frame: %d envelopes, %v", len(first), err)
	}
	// One frame with all of them, as a hostile peer would send.
	body := []byte{tagHeartbeat}
	body = binary.AppendUvarint(body, uint64(len(envs)))
	for range envs {
		body = append(body, 8)
	}
	if _, err := DecodeFrame(body, 1, 2); err == nil {
		t.Fatal("a frame past the envelope limit decoded")
	}

	withResp := []cluster.Envelope{app(1, 1, "x")}
	withResp[0].Msg.Responses = []*raftpb.Message{{Type: raftpb.MsgAppResp.Enum()}}
	if _, err := e.add(&withResp[0]); err == nil {
		t.Fatal("a message with Responses was encoded")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	seed := []cluster.Envelope{hb(1, 5, 100), app(2, 3, "abc"), hbr(3, 1)}
	frame, _ := AppendFrame(nil, 1, 2, seed)
	f.Add(frame[frameHeader:])
	f.Add([]byte{tagHeartbeat, 2, 8 | hbHasTerm | hbHasCommit, 1, 2, 16, 0})
	f.Add([]byte{tagMessage, 1, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		envs, err := DecodeFrame(body, 1, 2)
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same envelopes.
		again, err := AppendFrame(nil, 1, 2, envs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFrame(again[frameHeader:], 1, 2)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		sameEnvelopes(t, got, envs)
	})
}

// BenchmarkHeartbeatFrame encodes and decodes a frame holding the
// heartbeats of 1,000 groups to one peer, as one Ready round of a node
// leading 1,000 groups sends.
func BenchmarkHeartbeatFrame(b *testing.B) {
	envs := make([]cluster.Envelope, 1000)
	for i := range envs {
		envs[i] = hb(cluster.GroupID(i+1), 12, uint64(100000+i))
	}
	e := encoder{from: 1, to: 2}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		e.reset()
		for i := range envs {
			e.add(&envs[i])
		}
		out, _ = e.frames(out[:0], 64<<20)
		if _, err := DecodeFrame(out[frameHeader:], 1, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(envs)), "ns/heartbeat")
	b.ReportMetric(float64(len(out))/float64(len(envs)), "bytes/heartbeat")
}
