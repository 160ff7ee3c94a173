package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sendfileCount counts the bytes a server sent from files.
type sendfileCount struct {
	noHooks
	n atomic.Int64
}

func (h *sendfileCount) BytesSentFromFile(n int) { h.n.Add(int64(n)) }

// twinServers are two Kafka servers on one broker, on real loopback TCP:
// zc sends Fetch records from the files, cp copies them.
type twinServers struct {
	b              *broker.Broker
	zc, cp         string // addresses
	zcN, cpN       *sendfileCount
	zcConn, cpConn net.Conn
}

func startTwinServers(t *testing.T) *twinServers {
	t.Helper()
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := broker.New(broker.Options{DataDir: t.TempDir(), Defaults: broker.Defaults{Partitions: 1, SegmentBytes: 1 << 30}}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	g := groups.New(groups.Options{ManualTick: true})
	t.Cleanup(g.Close)
	ts := &twinServers{b: b, zcN: &sendfileCount{}, cpN: &sendfileCount{}}
	start := func(zeroCopy bool, hooks *sendfileCount) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewServer(Options{AdvertisedAddr: ln.Addr().String(), ClusterID: "c", Hooks: hooks, ZeroCopy: zeroCopy}, b, g)
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(ln)
		t.Cleanup(func() { s.Close() })
		return ln.Addr().String()
	}
	ts.zc, ts.cp = start(true, ts.zcN), start(false, ts.cpN)
	dial := func(addr string) net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	ts.zcConn, ts.cpConn = dial(ts.zc), dial(ts.cp)
	return ts
}

// roundTrip sends req on nc and returns the whole response frame.
func roundTrip(t *testing.T, nc net.Conn, corr int32, req kmsg.Request) []byte {
	t.Helper()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("zc-test")).AppendRequest(nil, req, corr)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 4+binary.BigEndian.Uint32(size[:]))
	copy(frame, size[:])
	if _, err := io.ReadFull(nc, frame[4:]); err != nil {
		t.Fatal(err)
	}
	return frame
}

// fetchReq is a sessionless Fetch of one partition.
func fetchReq(version int16, topic string, id [16]byte, part int32, offset int64, maxBytes, partMax int32, iso int8) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.IsolationLevel = version, -1, maxBytes, iso
	req.SessionID, req.SessionEpoch = -1, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, offset, partMax
	rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// produce writes records through the zero-copy server with franz-go:
// plain ones, a committed and an aborted transaction, and leaves one
// transaction open so that the last stable offset is below the high
// watermark.
func produce(t *testing.T, addr, topic string, keys int) {
	t.Helper()
	ctx := context.Background()
	plain, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(20000), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rec := func(i int) *kgo.Record {
		v := bytes.Repeat([]byte{byte(i)}, 100+i%1500)
		return &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%keys), Value: v, Partition: int32(i % 2)}
	}
	var rs []*kgo.Record
	for i := range 3000 {
		rs = append(rs, rec(i))
	}
	if err := plain.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{true, false} {
		tx, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(fmt.Sprint("tx-", commit)), kgo.ProducerBatchMaxBytes(20000), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		rs = rs[:0]
		for i := range 400 {
			rs = append(rs, rec(i))
		}
		if err := tx.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		tx.Close()
	}
	if err := plain.ProduceSync(ctx, rs[:200]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	open, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.TransactionalID("tx-open"), kgo.ProducerBatchMaxBytes(20000), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(open.Close)
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, rec(1), rec(2)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, rs[:300]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Fetch answers sent from the files are byte for byte those copied through
// memory, for every version, both isolation levels, limits that cut
// between batches and below the first, and offsets at batch starts,
// middles, past the last stable offset and at the high watermark; and the
// zero-copy server did send from the files.
func TestZeroCopyFetchMatchesCopy(t *testing.T) {
	if !sendfileSupported {
		t.Skip("no sendfile on this platform")
	}
	ts := startTwinServers(t)
	topic, err := ts.b.CreateTopic("zc", 2, map[string]string{"segment.bytes": "200000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, ts.zc, "zc", 1000)
	if topic.Partitions[0].Segments() < 3 {
		t.Fatalf("partition 0 has %d segments; want several", topic.Partitions[0].Segments())
	}
	corr := int32(0)
	compared, withRecords := 0, 0
	for _, version := range []int16{4, 7, 11, 12, 13, 16, 17} {
		for _, iso := range []int8{0, 1} {
			for part := range int32(2) {
				start, hw, lso := topic.Partitions[part].Offsets()
				if lso >= hw {
					t.Fatalf("partition %d: last stable offset %d not below the high watermark %d", part, lso, hw)
				}
				for _, off := range []int64{start, start + 1, hw / 3, hw / 2, lso - 1, lso, hw - 1, hw, hw + 1} {
					for _, lim := range [][2]int32{{50 << 20, 1 << 20}, {50 << 20, 100}, {50 << 20, 40 << 10}, {30 << 10, 1 << 20}} {
						req := fetchReq(version, "zc", topic.ID, part, off, lim[0], lim[1], iso)
						corr++
						a := roundTrip(t, ts.zcConn, corr, req)
						b := roundTrip(t, ts.cpConn, corr, req)
						if !bytes.Equal(a, b) {
							t.Fatalf("v%d iso %d partition %d offset %d limits %v: zero copy answered %d bytes, copy %d; first difference at %d",
								version, iso, part, off, lim, len(a), len(b), firstDiff(a, b))
						}
						compared++
						if len(a) > 1000 {
							withRecords++
						}
					}
				}
			}
		}
	}
	if withRecords < compared/3 {
		t.Fatalf("only %d of %d answers carried records", withRecords, compared)
	}
	if ts.zcN.n.Load() == 0 {
		t.Fatal("the zero-copy server sent nothing from the files")
	}
	if ts.cpN.n.Load() != 0 {
		t.Fatalf("the copying server sent %d bytes from the files", ts.cpN.n.Load())
	}
}

// A fetch whose records are held as file regions while the cleaner
// rewrites their segments and retention then deletes them still answers
// the bytes that were there when it read; the next fetch sees the new log.
func TestZeroCopyFetchSurvivesCleanerAndRetention(t *testing.T) {
	if !sendfileSupported {
		t.Skip("no sendfile on this platform")
	}
	ts := startTwinServers(t)
	topic, err := ts.b.CreateTopic("zcc", 2, map[string]string{
		"segment.bytes": "100000", "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, ts.zc, "zcc", 50)
	p := topic.Partitions[0]
	start, _, _ := p.Offsets()
	req := fetchReq(12, "zcc", topic.ID, 0, start, 50<<20, 1<<20, 0)
	before := roundTrip(t, ts.cpConn, 1, req)

	var cleaned, deleted bool
	testHookSendRegions = func() {
		testHookSendRegions = nil
		was := ts.b.CleanerStats().SegmentsCleaned
		ts.b.CleanLogs()
		cleaned = ts.b.CleanerStats().SegmentsCleaned > was
		_, hw, _ := p.Offsets()
		if _, err := p.DeleteRecordsBefore(hw - 1); err == nil {
			s, _, _ := p.Offsets()
			deleted = s == hw-1
		}
	}
	t.Cleanup(func() { testHookSendRegions = nil })
	during := roundTrip(t, ts.zcConn, 1, req)
	if !cleaned || !deleted {
		t.Fatalf("the hook did not run, or did not change the log: cleaned %v, deleted %v", cleaned, deleted)
	}
	if !bytes.Equal(during, before) {
		t.Fatalf("the answer sent while its segments were cleaned and deleted differs from the one before (%d and %d bytes, first difference at %d)",
			len(during), len(before), firstDiff(during, before))
	}
	if ts.zcN.n.Load() == 0 {
		t.Fatal("the zero-copy server sent nothing from the files")
	}
	after := roundTrip(t, ts.zcConn, 2, req)
	if bytes.Equal(after[4:], before[4:]) {
		t.Fatal("a fetch after the cleaner and retention ran reads the old log")
	}
}
