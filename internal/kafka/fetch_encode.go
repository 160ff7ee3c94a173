package kafka

// Fetch answers without copying their records.
//
// kmsg encodes a FetchResponse into one buffer, copying every partition's
// record bytes into it: for a consumer reading at disk speed that copy, the
// page faults of the fresh buffer and the garbage it leaves were a third of
// the broker's CPU per gigabyte fetched (docs/benchmarks.md, "Fetch"). So
// the write loop encodes a Fetch answer itself, as kmsg would byte for byte
// (fetch_encode_test.go checks every version against kmsg), but leaves the
// record bytes out: the framing goes into the buffer, with a cut where each
// partition's records belong, and the records are written from the slices
// the partitions returned, large ones straight to the socket. An answer
// with fields this encoder does not write (tagged fields a single node
// never sets) goes through kmsg.

import (
	"encoding/binary"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchFrame is a Fetch answer framed without its records: write head up
// to cuts[0], records[0], head up to cuts[1], records[1], ..., the rest of
// head.
type fetchFrame struct {
	head    []byte
	cuts    []int
	records [][]byte
}

// frameFetch frames resp (answering corr) into dst, or reports false when
// resp has fields only kmsg writes.
func frameFetch(dst []byte, corr int32, resp *kmsg.FetchResponse) (fetchFrame, bool) {
	if !frameable(resp) {
		return fetchFrame{}, false
	}
	v := resp.Version
	flex := v >= 12
	f := fetchFrame{}
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if flex {
		dst = append(dst, 0) // response header tags
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(resp.ThrottleMillis))
	if v >= 7 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(resp.ErrorCode))
		dst = binary.BigEndian.AppendUint32(dst, uint32(resp.SessionID))
	}
	total := 0
	dst = appendArrayLen(dst, len(resp.Topics), false, flex)
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if v >= 13 {
			dst = append(dst, t.TopicID[:]...)
		} else if flex {
			dst = binary.AppendUvarint(dst, uint64(len(t.Topic))+1)
			dst = append(dst, t.Topic...)
		} else {
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Topic)))
			dst = append(dst, t.Topic...)
		}
		dst = appendArrayLen(dst, len(t.Partitions), false, flex)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = binary.BigEndian.AppendUint32(dst, uint32(p.Partition))
			dst = binary.BigEndian.AppendUint16(dst, uint16(p.ErrorCode))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.HighWatermark))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.LastStableOffset))
			if v >= 5 {
				dst = binary.BigEndian.AppendUint64(dst, uint64(p.LogStartOffset))
			}
			dst = appendArrayLen(dst, len(p.AbortedTransactions), p.AbortedTransactions == nil, flex)
			for _, a := range p.AbortedTransactions {
				dst = binary.BigEndian.AppendUint64(dst, uint64(a.ProducerID))
				dst = binary.BigEndian.AppendUint64(dst, uint64(a.FirstOffset))
				if flex {
					dst = append(dst, 0)
				}
			}
			if v >= 11 {
				dst = binary.BigEndian.AppendUint32(dst, uint32(p.PreferredReadReplica))
			}
			dst = appendArrayLen(dst, len(p.RecordBatches), p.RecordBatches == nil, flex)
			if len(p.RecordBatches) > 0 {
				f.cuts = append(f.cuts, len(dst))
				f.records = append(f.records, p.RecordBatches)
				total += len(p.RecordBatches)
			}
			if flex {
				dst = append(dst, 0) // partition tags
			}
		}
		if flex {
			dst = append(dst, 0) // topic tags
		}
	}
	if flex {
		dst = append(dst, 0) // response tags
	}
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4+total))
	f.head = dst
	return f, true
}

// appendArrayLen appends the length of an array or of bytes, which Kafka
// encodes alike: int32 (-1 for null), or in flexible versions uvarint
// length+1 (0 for null).
func appendArrayLen(dst []byte, n int, null, flex bool) []byte {
	switch {
	case flex && null:
		return append(dst, 0)
	case flex:
		return binary.AppendUvarint(dst, uint64(n)+1)
	case null:
		return binary.BigEndian.AppendUint32(dst, 0xffffffff)
	default:
		return binary.BigEndian.AppendUint32(dst, uint32(n))
	}
}

// frameable reports whether resp has only the fields frameFetch writes:
// no tagged fields, and a version it knows.
func frameable(resp *kmsg.FetchResponse) bool {
	if resp.Version < 4 || resp.Version > 17 || resp.UnknownTags.Len() > 0 || len(resp.Brokers) > 0 {
		return false
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 ||
				p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 || p.DivergingEpoch.UnknownTags.Len() > 0 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 || p.CurrentLeader.UnknownTags.Len() > 0 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 || p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for _, a := range p.AbortedTransactions {
				if a.UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// writeTo writes the framed answer to w.
func (f fetchFrame) writeTo(w io.Writer) error {
	at := 0
	for i, cut := range f.cuts {
		if _, err := w.Write(f.head[at:cut]); err != nil {
			return err
		}
		if _, err := w.Write(f.records[i]); err != nil {
			return err
		}
		at = cut
	}
	_, err := w.Write(f.head[at:])
	return err
}

// bytes is the whole answer in one buffer (for tests).
func (f fetchFrame) bytes() []byte {
	var out []byte
	at := 0
	for i, cut := range f.cuts {
		out = append(out, f.head[at:cut]...)
		out = append(out, f.records[i]...)
		at = cut
	}
	return append(out, f.head[at:]...)
}
