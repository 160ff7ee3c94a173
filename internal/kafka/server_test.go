package kafka

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReadFrame(t *testing.T) {
	for _, size := range []int{1, 100, 1 << 20, 1<<20 + 1, 3<<20 + 17} {
		src := bytes.Repeat([]byte{7}, size)
		got, err := readFrame(bytes.NewReader(src), size)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("size %d: err %v, equal %v", size, err, bytes.Equal(got, src))
		}
	}
	// A frame that claims more than arrives fails without allocating the
	// claimed size up front.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := readFrame(bytes.NewReader(make([]byte, 10)), 90<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("short frame: %v", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Fatalf("a 10-byte frame claiming 90 MiB allocated %d bytes", n)
	}
}

// TestProduceFrameReuse: Produce frames are read into pooled buffers that
// the next request overwrites; what was appended must be what the first
// request carried, not the bytes of the next.
func TestProduceFrameReuse(t *testing.T) {
	c := benchProduceConn(t, 1)
	batch := func(fill byte) []byte {
		return storage.BuildBatch(0, 1, [][]byte{bytes.Repeat([]byte{fill}, 4096)})
	}
	frame := func(fill byte) []byte {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "reuse"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch(fill)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return kmsg.NewRequestFormatter().AppendRequest(nil, req, int32(fill))
	}
	var stream []byte
	for _, fill := range []byte{'a', 'b', 'c'} {
		stream = append(stream, frame(fill)...)
	}
	br := bufio.NewReader(bytes.NewReader(stream))
	var waits []pendingResp
	for range 3 {
		var size [4]byte
		if _, err := io.ReadFull(br, size[:]); err != nil {
			t.Fatal(err)
		}
		p, err := c.readRequest(br, int(binary.BigEndian.Uint32(size[:])))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, p) // answered after the next frames are read
	}
	for _, p := range waits {
		resp, err := p.respond()
		if err != nil {
			t.Fatal(err)
		}
		if sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; sp.ErrorCode != 0 {
			t.Fatalf("produce %d: error %d", p.corr, sp.ErrorCode)
		}
	}
	topic, ok := c.s.broker.Topic("reuse")
	if !ok {
		t.Fatal("topic not created")
	}
	data, err := topic.Partitions[0].Read(0, 1<<20, broker.ReadUncommitted)
	if err != nil {
		t.Fatal(err)
	}
	var recs []storage.Record
	for len(data) > 0 {
		n, err := storage.ReadRecords(data, func(_, _ int64, r storage.Record) bool {
			recs = append(recs, r)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if len(recs) != 3 {
		t.Fatalf("%d records stored, want 3", len(recs))
	}
	for i, fill := range []byte{'a', 'b', 'c'} {
		if want := bytes.Repeat([]byte{fill}, 4096); !bytes.Equal(recs[i].Value, want) {
			t.Fatalf("record %d holds %q..., want %q...", i, recs[i].Value[:8], want[:8])
		}
	}
}

// A large frame is read with about one copy of its bytes: its buffer
// doubles as bytes arrive, so the allocations sum to under twice its size
// (plus the first step), not to a multiple of it.
func TestReadFrameLargeGrowsGeometrically(t *testing.T) {
	const size = 32 << 20
	src := bytes.Repeat([]byte{3}, size)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readFrame(bytes.NewReader(src), size)
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != size {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2*size+frameStep {
		t.Fatalf("reading a %d-byte frame allocated %d bytes", size, n)
	}
}
