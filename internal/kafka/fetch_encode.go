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
//
// With zero copy (sendfile_linux.go, Options.ZeroCopy) a partition's
// records may instead be a region of a segment file (broker.FileRegion):
// the framing counts its length, and the write loop sends it from the
// file with sendfile after flushing the framing before it, or copies it
// through a buffer when it cannot.

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchFrame is a Fetch answer framed without its records: write head up
// to cuts[0], records[0] (or regions[0] when set), head up to cuts[1],
// records[1], ..., the rest of head.
type fetchFrame struct {
	head    []byte
	cuts    []int
	records [][]byte
	regions []*broker.FileRegion
}

// frameFetch frames resp (answering corr) into dst, or reports false when
// resp has fields only kmsg writes.
func frameFetch(dst []byte, corr int32, resp *kmsg.FetchResponse) (fetchFrame, bool) {
	return frameFetchRegions(dst, corr, resp, nil)
}

// frameFetchRegions is frameFetch for an answer whose partitions' records
// may be file regions: regions, when not nil, has one entry per partition
// in the order of resp's topics and their partitions, nil where the
// records are the partition's RecordBatches.
func frameFetchRegions(dst []byte, corr int32, resp *kmsg.FetchResponse, regions []*broker.FileRegion) (fetchFrame, bool) {
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
	total, k := 0, 0
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
			var region *broker.FileRegion
			if regions != nil {
				region = regions[k]
			}
			k++
			n := len(p.RecordBatches)
			if region != nil {
				n = region.Len()
			}
			dst = appendArrayLen(dst, n, p.RecordBatches == nil && region == nil, flex)
			if n > 0 {
				f.cuts = append(f.cuts, len(dst))
				f.records = append(f.records, p.RecordBatches)
				f.regions = append(f.regions, region)
				total += n
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

// writeTo writes the framed answer to w, file regions through send when
// it is set (sendfile), else copied.
func (f fetchFrame) writeTo(w io.Writer, send func(*broker.FileRegion) error) error {
	at := 0
	for i, cut := range f.cuts {
		if _, err := w.Write(f.head[at:cut]); err != nil {
			return err
		}
		var err error
		switch r := f.regions[i]; {
		case r == nil:
			_, err = w.Write(f.records[i])
		case send != nil:
			err = send(r)
		default:
			err = copyRegion(w, r)
		}
		if err != nil {
			return err
		}
		at = cut
	}
	_, err := w.Write(f.head[at:])
	return err
}

// copyBufs are the buffers copyRegion reads file regions through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyRegion writes a file region to w through a pooled buffer: zero
// copy's fallback.
func copyRegion(w io.Writer, r *broker.FileRegion) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for off := 0; off < r.Len(); {
		b := (*bp)[:min(len(*bp), r.Len()-off)]
		if err := r.ReadAt(b, int64(off)); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		off += len(b)
	}
	return nil
}

// bytes is the whole answer in one buffer (for tests).
func (f fetchFrame) bytes() []byte {
	var out []byte
	at := 0
	for i, cut := range f.cuts {
		out = append(out, f.head[at:cut]...)
		if r := f.regions[i]; r != nil {
			n := len(out)
			out = append(out, make([]byte, r.Len())...)
			if err := r.ReadAt(out[n:], 0); err != nil {
				panic(err)
			}
		} else {
			out = append(out, f.records[i]...)
		}
		at = cut
	}
	return append(out, f.head[at:]...)
}
