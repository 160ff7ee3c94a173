package kafka

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetchResponse builds an answer with what Sluice fills in: topics by
// name and id, partitions with and without records, errors, aborted
// transactions (null, empty and some), large and small record sets.
func randomFetchResponse(r *rand.Rand, version int16) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	resp.ThrottleMillis = r.Int32N(100)
	resp.ErrorCode = int16(r.IntN(3))
	resp.SessionID = r.Int32()
	for range r.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'a' + byte(r.IntN(26))}, r.IntN(300)))
		for i := range t.TopicID {
			t.TopicID[i] = byte(r.Uint32())
		}
		for range r.IntN(5) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = r.Int32()
			p.ErrorCode = int16(r.IntN(2))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = r.Int64(), r.Int64(), r.Int64()
			p.PreferredReadReplica = -1
			switch r.IntN(3) {
			case 0:
				p.AbortedTransactions = nil
			case 1:
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			default:
				for range 1 + r.IntN(3) {
					a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					a.ProducerID, a.FirstOffset = r.Int64(), r.Int64()
					p.AbortedTransactions = append(p.AbortedTransactions, a)
				}
			}
			switch r.IntN(4) {
			case 0:
				p.RecordBatches = nil
			case 1:
				p.RecordBatches = []byte{}
			case 2:
				p.RecordBatches = make([]byte, 1+r.IntN(200))
			default:
				p.RecordBatches = make([]byte, 1+r.IntN(300<<10))
			}
			for i := range p.RecordBatches {
				p.RecordBatches[i] = byte(i * 7)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// The framed Fetch answer is byte for byte what kmsg encodes, for every
// version Sluice serves.
func TestFrameFetchMatchesKmsg(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for version := int16(4); version <= 17; version++ {
		for i := range 200 {
			resp := randomFetchResponse(r, version)
			req := kmsg.NewPtrFetchRequest()
			req.Version = version
			want := encodeResponse(nil, 77, req, resp)
			f, ok := frameFetch(nil, 77, resp)
			if !ok {
				t.Fatalf("v%d #%d: not frameable", version, i)
			}
			if got := f.bytes(); !bytes.Equal(got, want) {
				t.Fatalf("v%d #%d: framed %d bytes, kmsg %d; first difference at %d", version, i, len(got), len(want), firstDiff(got, want))
			}
			var w bytes.Buffer
			if err := f.writeTo(&w, nil); err != nil || !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("v%d #%d: writeTo differs (%v)", version, i, err)
			}
		}
	}
}

// Tagged fields a single node never sets go through kmsg.
func TestFrameFetchLeavesTaggedFieldsToKmsg(t *testing.T) {
	for _, set := range []func(*kmsg.FetchResponse){
		func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].CurrentLeader.LeaderID = 1 },
		func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].DivergingEpoch.Epoch = 3 },
		func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].SnapshotID.Epoch = 3 },
		func(r *kmsg.FetchResponse) { r.Brokers = append(r.Brokers, kmsg.NewFetchResponseBroker()) },
		func(r *kmsg.FetchResponse) { r.Version = 18 },
	} {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 16
		tp := kmsg.NewFetchResponseTopic()
		tp.Partitions = append(tp.Partitions, kmsg.NewFetchResponseTopicPartition())
		resp.Topics = append(resp.Topics, tp)
		if _, ok := frameFetch(nil, 1, resp); !ok {
			t.Fatal("a plain answer is not frameable")
		}
		set(resp)
		if _, ok := frameFetch(nil, 1, resp); ok {
			t.Error("an answer with a tagged field was framed")
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
