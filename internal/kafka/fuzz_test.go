package kafka

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame encodes a request the way a client does, without the size prefix.
func frame(req kmsg.Request, version int16) []byte {
	req.SetVersion(version)
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 7)
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "cli"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// FuzzDecodeRequest feeds arbitrary frames to the request decoder: it must
// never panic, and whatever it accepts must re-encode.
func FuzzDecodeRequest(f *testing.F) {
	for _, a := range apis {
		for _, v := range []int16{a.min, a.max} {
			req := kmsg.RequestForKey(a.key)
			f.Add(frame(req, v))
		}
	}
	produce := kmsg.NewPtrProduceRequest()
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "t"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 61}
	t.Partitions = append(t.Partitions, p)
	produce.Topics = append(produce.Topics, t)
	f.Add(frame(produce, 9))
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 255, 255})
	// A flexible request whose tag count is billions with nothing after
	// it: kmsg before v1.15.1 looped over every count on the exhausted
	// reader, a second or more of CPU for 17 bytes (found by
	// FuzzShareRequests). ShareGroupDescribe v1, null client id, no header
	// tags, then the body.
	f.Add([]byte{0, 77, 0, 1, 0, 0, 0, 1, 255, 255, 0, 0x01, 0xef, 0x8c, 0xe6, 0xd7, 0x30, 0x40})
	f.Fuzz(func(t *testing.T, buf []byte) {
		hdr, req, err := decodeRequest(buf)
		if err != nil {
			return
		}
		if req.Key() != hdr.key {
			t.Fatalf("decoded key %d from header key %d", req.Key(), hdr.key)
		}
		_ = req.AppendTo(nil)
	})
}

func TestDecodeRequestRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  []byte
	}{
		{"short header", []byte{0, 3, 0}},
		{"unknown key", []byte{0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}},
		{"client id past end", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 50, 'a'}},
		{"fetch v3", frame(kmsg.NewPtrFetchRequest(), 3)},
		{"truncated metadata", truncate(frame(kmsg.NewPtrMetadataRequest(), 4), 2)},
	} {
		if _, _, err := decodeRequest(tc.buf); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// An ApiVersions newer than we know is answered, not dropped.
	buf := frame(kmsg.NewPtrApiVersionsRequest(), 3)
	binary.BigEndian.PutUint16(buf[2:], 99)
	hdr, req, err := decodeRequest(buf)
	if err != nil || hdr.answer == nil || req.GetVersion() != 0 {
		t.Fatalf("ApiVersions v99: err %v, answer set %v", err, hdr.answer != nil)
	}
}

// Produce v0-2 is advertised (see registry.go) but its message formats are
// not served: each partition is answered UNSUPPORTED_VERSION and the
// connection stays up.
func TestProduceOldVersionsAnsweredUnsupported(t *testing.T) {
	for v := int16(0); v < 3; v++ {
		produce := kmsg.NewPtrProduceRequest()
		produce.Acks = -1
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rt.Partitions = append(rt.Partitions, kmsg.NewProduceRequestTopicPartition())
		produce.Topics = append(produce.Topics, rt)
		_, req, err := decodeRequest(frame(produce, v))
		if err != nil {
			t.Fatalf("produce v%d dropped: %v", v, err)
		}
		resp, err := prepareProduce(nil, req)()
		if err != nil {
			t.Fatalf("produce v%d: %v", v, err)
		}
		got := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		if got != kerr.UnsupportedVersion.Code {
			t.Errorf("produce v%d: error code %d, want UNSUPPORTED_VERSION", v, got)
		}
	}
}

func truncate(b []byte, n int) []byte { return b[:len(b)-n] }
