package kafka

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchProduceConn is a connection to a server whose broker writes its
// logs to files without fsync (storage.SyncNever), so that a benchmark
// measures the CPU and allocations of the produce path, not a disk.
func benchProduceConn(b testing.TB, partitions int) *conn {
	b.Helper()
	m, err := meta.Open(b.TempDir(), meta.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	br, err := broker.New(broker.Options{
		DataDir:          b.TempDir(),
		AutoCreateTopics: true,
		Defaults:         broker.Defaults{Partitions: int32(partitions)},
		Storage:          storage.Options{Sync: storage.SyncNever},
	}, m)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	g := groups.New(groups.Options{ManualTick: true})
	b.Cleanup(g.Close)
	s, err := NewServer(Options{AdvertisedAddr: "broker.test:9092", ClusterID: "c", DataDir: "/data"}, br, g)
	if err != nil {
		b.Fatal(err)
	}
	nc, peer := net.Pipe()
	b.Cleanup(func() { nc.Close(); peer.Close() })
	return &conn{s: s, nc: nc, ctx: context.Background(), clientID: "bench", sasl: saslState{authenticated: true}}
}

// produceFrame is a Produce v9 request frame (size prefix included), acks=all,
// of one batch of 16 records of 1 KiB to each of the topic's partitions: the
// shape of franz-go's requests in the side-by-side benchmark.
func produceFrame(topic string, partitions int) []byte {
	recs := make([][]byte, 16)
	for i := range recs {
		recs[i] = make([]byte, 1<<10)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Records = storage.BuildBatch(0, 1, recs)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, 1)
}

// BenchmarkProduceRequest is the broker's work for one Produce request of
// 8 partitions x 16 records of 1 KiB, from its frame on the socket to its
// encoded answer: read the frame, decode, validate and append every
// partition's batch, wait for the group commits, encode the response. The
// allocations it reports per op are per request of 128 records.
func BenchmarkProduceRequest(b *testing.B) {
	const partitions = 8
	c := benchProduceConn(b, partitions)
	frame := produceFrame("bench", partitions)
	src := bytes.NewReader(nil)
	br := bufio.NewReaderSize(src, 64<<10)
	var out []byte
	run := func() {
		src.Reset(frame)
		br.Reset(src)
		var sz [4]byte
		if _, err := br.Read(sz[:]); err != nil {
			b.Fatal(err)
		}
		p, err := c.readRequest(br, len(frame)-4)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := p.respond()
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range resp.(*kmsg.ProduceResponse).Topics {
			for _, sp := range t.Partitions {
				if sp.ErrorCode != 0 {
					b.Fatalf("partition %d: error %d", sp.Partition, sp.ErrorCode)
				}
			}
		}
		out = encodeResponse(out[:0], p.corr, p.req, resp)
	}
	run() // creates the topic
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(partitions*16), "ns/record")
}
