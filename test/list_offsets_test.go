package test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// storedBatches fetches partition 0 of topic raw and returns how many
// batches hold its records and the compression codec of each.
func storedBatches(t *testing.T, c *kgo.Client, topic string) []int16 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 16<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 16 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	b := resp.Topics[0].Partitions[0].RecordBatches
	var codecs []int16
	for len(b) >= 61 {
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		codecs = append(codecs, int16(binary.BigEndian.Uint16(b[21:]))&0x07)
		b = b[min(size, len(b)):]
	}
	return codecs
}

// TestListOffsetsByTimestampAnswersTheRecord: records produced together
// share batches, and ListOffsets by timestamp answers the first record at
// or after the target, not the first record of its batch, whatever the
// compression; -3 answers the record holding the largest timestamp.
func TestListOffsetsByTimestampAnswersTheRecord(t *testing.T) {
	b := startBroker(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		id    int16
	}{
		{"none", kgo.NoCompression(), 0}, {"gzip", kgo.GzipCompression(), 1}, {"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3}, {"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "list-offsets-" + c.name
			b.createTopic(t, topic, 1, nil)
			prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec), fetchByName(),
				kgo.ProducerLinger(100*time.Millisecond))
			base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			const n = 100
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, &kgo.Record{
					Value:     []byte(fmt.Sprintf("record %03d %s", i, strings.Repeat("compressible ", 10))),
					Timestamp: base.Add(time.Duration(i) * time.Second),
				})
			}
			produceSync(t, prod, recs...)
			if stored := storedBatches(t, prod, topic); len(stored) > n/4 || stored[0] != c.id {
				t.Fatalf("stored as %d batches with codecs %v: want a few batches of codec %d", len(stored), stored, c.id)
			}

			adm := b.admin(t)
			for _, tc := range []struct {
				at   time.Duration
				want int64
			}{
				{-time.Hour, 0},
				{0, 0},
				{1 * time.Millisecond, 1},
				{42 * time.Second, 42},
				{42*time.Second + 500*time.Millisecond, 43},
				{98*time.Second + time.Millisecond, 99},
				{99 * time.Second, 99},
				{99*time.Second + time.Millisecond, n}, // none that new: kadm answers the end offset
			} {
				offs, err := adm.ListOffsetsAfterMilli(ctxT(t, 10*time.Second), base.Add(tc.at).UnixMilli(), topic)
				if err != nil {
					t.Fatal(err)
				}
				o, _ := offs.Lookup(topic, 0)
				if o.Err != nil || o.Offset != tc.want {
					t.Errorf("offset after base%+v = %d (%v), want %d", tc.at, o.Offset, o.Err, tc.want)
				}
				if wantTs := base.Add(time.Duration(tc.want) * time.Second).UnixMilli(); tc.want < n && o.Timestamp != wantTs {
					t.Errorf("timestamp after base%+v = %d, want %d", tc.at, o.Timestamp, wantTs)
				}
			}

			maxTimestamp := func() (offset, ts int64) {
				t.Helper()
				req := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = -3 // max timestamp, v7+
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				// Straight to the broker (node 1), unsharded, so that the
				// version kgo chose is the one on req.
				kresp, err := prod.Broker(1).Request(ctxT(t, 10*time.Second), req)
				if err != nil {
					t.Fatal(err)
				}
				resp := kresp.(*kmsg.ListOffsetsResponse)
				if v := req.GetVersion(); v < 7 {
					t.Fatalf("ListOffsets sent at v%d, -3 needs v7+", v)
				}
				p := resp.Topics[0].Partitions[0]
				if p.ErrorCode != 0 {
					t.Fatalf("max timestamp: error %d", p.ErrorCode)
				}
				return p.Offset, p.Timestamp
			}
			if off, ts := maxTimestamp(); off != n-1 || ts != base.Add((n-1)*time.Second).UnixMilli() {
				t.Fatalf("max timestamp at offset %d (%d), want %d (%d)", off, ts, n-1, base.Add((n-1)*time.Second).UnixMilli())
			}
			// The largest timestamp first in a batch: -3 answers that
			// record (the first of two), not the batch's last.
			var more []*kgo.Record
			for _, s := range []time.Duration{200, 200, 150, 151, 152} {
				more = append(more, &kgo.Record{Value: []byte("later"), Timestamp: base.Add(s * time.Second)})
			}
			produceSync(t, prod, more...)
			if off, ts := maxTimestamp(); off != n || ts != base.Add(200*time.Second).UnixMilli() {
				t.Fatalf("max timestamp at offset %d (%d), want %d (%d)", off, ts, n, base.Add(200*time.Second).UnixMilli())
			}
		})
	}
}
