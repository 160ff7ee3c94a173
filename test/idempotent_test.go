package test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idempotentBatch encodes a RecordBatch v2 of one record from a producer.
func idempotentBatch(pid int64, epoch int16, seq int32, value string) []byte {
	rec := kmsg.Record{OffsetDelta: 0, Value: []byte(value), Key: nil}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // everything after the length varint (0 is one byte)
	recBytes := rec.AppendTo(nil)
	rb := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: 0,
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: 1,
		Records: recBytes,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// produceRequest is an acks=all produce of batch to partition 0 of topic.
func produceRequest(topic string, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produceRaw(t *testing.T, c *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp, err := produceRequest(topic, batch).RequestWith(ctxT(t, 10*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestIdempotentProducerDedupeSurvivesRestart(t *testing.T) {
	b := startBroker(t)
	const topic = "idem"
	b.createTopic(t, topic, 1, nil)
	c := b.client(t)
	ipr, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxT(t, 10*time.Second), c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, kerr.ErrorForCode(ipr.ErrorCode))
	}
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch

	steps := []struct {
		name     string
		seq      int32
		value    string
		wantErr  *kerr.Error
		wantBase int64
	}{
		{"first", 0, "a", nil, 0},
		{"second", 1, "b", nil, 1},
		{"retry of second is answered with its offset", 1, "b", nil, 1},
		{"retry of first", 0, "a", nil, 0},
		{"gap", 3, "d", kerr.OutOfOrderSequenceNumber, 0},
		{"third", 2, "c", nil, 2},
	}
	run := func() {
		for _, s := range steps {
			got := produceRaw(t, c, topic, idempotentBatch(pid, epoch, s.seq, s.value))
			want := int16(0)
			if s.wantErr != nil {
				want = s.wantErr.Code
			}
			if got.ErrorCode != want {
				t.Fatalf("%s: error %v, want %v", s.name, kerr.ErrorForCode(got.ErrorCode), s.wantErr)
			}
			if s.wantErr == nil && got.BaseOffset != s.wantBase {
				t.Fatalf("%s: base offset %d, want %d", s.name, got.BaseOffset, s.wantBase)
			}
		}
	}
	run()
	end := func() int64 {
		ends, err := b.admin(t).ListEndOffsets(ctxT(t, 10*time.Second), topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup(topic, 0)
		return o.Offset
	}
	if e := end(); e != 3 {
		t.Fatalf("log end %d after dedupe, want 3", e)
	}
	// After a restart, the same retries are still recognised.
	b.Stop()
	b.Restart()
	c = b.client(t)
	steps = steps[2:4]
	steps = append(steps, struct {
		name     string
		seq      int32
		value    string
		wantErr  *kerr.Error
		wantBase int64
	}{"fourth after restart", 3, "d", nil, 3})
	run()
	if e := end(); e != 4 {
		t.Fatalf("log end %d after restart, want 4", e)
	}
	// franz-go's own idempotent producer (the default) works end to end.
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	produceSync(t, prod, &kgo.Record{Value: []byte("e")})
	cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := consumeN(t, cons, 5, 20*time.Second)
	for i, want := range []string{"a", "b", "c", "d", "e"} {
		if string(recs[i].Value) != want || recs[i].Offset != int64(i) {
			t.Fatalf("record %d = %q at %d, want %q", i, recs[i].Value, recs[i].Offset, want)
		}
	}
	// A bumped epoch starts again at sequence 0; the old epoch is fenced.
	if got := produceRaw(t, c, topic, idempotentBatch(pid, epoch+1, 0, "f")); got.ErrorCode != 0 || got.BaseOffset != 5 {
		t.Fatalf("new epoch: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	if got := produceRaw(t, c, topic, idempotentBatch(pid, epoch, 4, "g")); got.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(got.ErrorCode))
	}
}
