package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// values decodes an uncompressed-or-not stored batch back to its record
// values, by rewriting it uncompressed.
func values(t *testing.T, batch []byte) []string {
	t.Helper()
	hs, err := storage.ValidateBatches(batch, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := (&storedForm{codec: 0}).recompress(batch, hs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if _, err := storage.ReadRecords(plain, func(_, _ int64, r storage.Record) bool {
		out = append(out, string(r.Value))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func idempotentBatch(recs []string) []byte {
	rs := make([]storage.Record, len(recs))
	for i, v := range recs {
		rs[i].Value = []byte(v)
	}
	b := storage.BuildRecordBatch(0, 1_700_000_000_000, rs)
	return reseal(b, 7, 0, 0)
}

// reseal sets a batch's producer id, epoch and base sequence.
func reseal(b []byte, pid int64, epoch int16, seq int32) []byte {
	out := bytes.Clone(b)
	putProducer(out, pid, epoch, seq)
	seal(out)
	return out
}

func putProducer(b []byte, pid int64, epoch int16, seq int32) {
	for i := range 8 {
		b[43+i] = byte(pid >> (56 - 8*i))
	}
	b[51], b[52] = byte(epoch>>8), byte(epoch)
	for i := range 4 {
		b[53+i] = byte(seq >> (24 - 8*i))
	}
}

func TestPartitionRecompresses(t *testing.T) {
	want := []string{"alpha", "beta", string(bytes.Repeat([]byte("gamma"), 20000))}
	plain := idempotentBatch(want)
	codecs := []int16{0, 1, 2, 3, 4}
	for _, src := range codecs {
		hs, _ := storage.ValidateBatches(plain, 0)
		sent, err := (&storedForm{codec: src, level: 3}).recompress(plain, hs)
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range append([]int16{-1}, codecs...) {
			t.Run(fmt.Sprintf("%d-to-%d", src, dst), func(t *testing.T) {
				p := openPartition(t, t.TempDir())
				p.configure(resolvedConfig{maxMessageBytes: 1 << 20, codec: dst, codecLevel: map[int16]int{1: -1, 3: 9, 4: 3}[dst]})
				if _, ap, err := p.Append(bytes.Clone(sent)); err != nil {
					t.Fatal(err)
				} else if ap != nil {
					ap.Wait()
				}
				got, err := p.Read(0, 1<<20, ReadUncommitted)
				if err != nil {
					t.Fatal(err)
				}
				h, err := storage.ParseBatchHeader(got)
				if err != nil {
					t.Fatal(err)
				}
				wantCodec := dst
				if dst < 0 {
					wantCodec = src
				}
				if c := h.Attributes & batchCodecMask; c != wantCodec {
					t.Errorf("stored codec %d, want %d", c, wantCodec)
				}
				if h.ProducerID != 7 || h.BaseSequence != 0 || h.FirstTimestamp != 1_700_000_000_000 || h.LastOffsetDelta != 2 {
					t.Errorf("header changed: %+v", h)
				}
				if _, err := storage.ValidateBatches(got, 0); err != nil {
					t.Errorf("stored batch invalid: %v", err)
				}
				if v := values(t, got); fmt.Sprint(v) != fmt.Sprint(want) {
					t.Errorf("values differ after %d→%d", src, dst)
				}
			})
		}
	}
}

func TestPartitionLogAppendTime(t *testing.T) {
	p := openPartition(t, t.TempDir())
	stamp := time.UnixMilli(1_800_000_000_123)
	p.now = func() time.Time { return stamp }
	p.configure(resolvedConfig{maxMessageBytes: 1 << 20, codec: -1, logAppendTime: true})
	res, ap, err := p.Append(idempotentBatch([]string{"a", "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if ap != nil {
		ap.Wait()
	}
	if res.LogAppendTime != stamp.UnixMilli() {
		t.Errorf("LogAppendTime %d, want %d", res.LogAppendTime, stamp.UnixMilli())
	}
	got, _ := p.Read(0, 1<<20, ReadUncommitted)
	h, _ := storage.ParseBatchHeader(got)
	if h.Attributes&batchLogAppendBit == 0 || h.MaxTimestamp != stamp.UnixMilli() {
		t.Errorf("stored header %+v: want LogAppendTime %d", h, stamp.UnixMilli())
	}
	if _, err := storage.ValidateBatches(got, 0); err != nil {
		t.Errorf("stored batch invalid: %v", err)
	}
	err = eachBatchRecord(got, maxDecodedBatchBytes, func(rs recordStamp) bool {
		if rs.Timestamp != stamp.UnixMilli() {
			t.Errorf("record %d stamped %d", rs.Offset, rs.Timestamp)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A compressed batch whose records do not decode is refused, not stored
// in a form no longer the producer's.
func TestPartitionRecompressRefusesGarbage(t *testing.T) {
	plain := idempotentBatch([]string{"x"})
	bad := append(bytes.Clone(plain[:batchHeaderBytes]), []byte("not gzip at all")...)
	setAttributes(bad, 1)
	seal(bad)
	p := openPartition(t, t.TempDir())
	p.configure(resolvedConfig{maxMessageBytes: 1 << 20, codec: 4})
	if _, _, err := p.Append(bad); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("append: %v, want ErrCorruptMessage", err)
	}
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Errorf("high watermark %d after a refused append", hw)
	}
}

// FuzzRewrite: whatever a producer sends that passes ValidateBatches, the
// recompression into each codec either fails with ErrCorruptMessage or
// yields valid batches holding the same number of records, which stay
// valid when stamped.
func FuzzRewrite(f *testing.F) {
	plain := idempotentBatch([]string{"a", "bb", "ccc"})
	f.Add(plain)
	for _, c := range []int16{1, 2, 3, 4} {
		hs, _ := storage.ValidateBatches(plain, 0)
		b, _ := (&storedForm{codec: c}).recompress(plain, hs)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := storage.ValidateBatches(b, 1<<20)
		if err != nil {
			return
		}
		for _, form := range []storedForm{{codec: 0}, {codec: 2}, {codec: 4, level: 1}} {
			out, err := form.recompress(b, hs)
			if err != nil {
				if !errors.Is(err, ErrCorruptMessage) {
					t.Fatalf("form %+v: %v", form, err)
				}
				continue
			}
			ohs, err := storage.ValidateBatches(stamp(out, 1), 0)
			if err != nil {
				t.Fatalf("form %+v: rewritten batches invalid: %v", form, err)
			}
			for i := range ohs {
				if ohs[i].NumRecords != hs[i].NumRecords || ohs[i].BaseSequence != hs[i].BaseSequence {
					t.Fatalf("form %+v: batch %d changed: %+v → %+v", form, i, hs[i], ohs[i])
				}
			}
		}
	})
}

// BenchmarkRecompress: one 100-record batch, uncompressed, into each codec.
func BenchmarkRecompress(b *testing.B) {
	var vals []string
	for i := range 100 {
		vals = append(vals, fmt.Sprintf("record-%d-%s", i, strings.Repeat("abcdefgh", 20)))
	}
	plain := idempotentBatch(vals)
	hs, _ := storage.ValidateBatches(plain, 0)
	for _, c := range []int16{1, 2, 3, 4} {
		b.Run(fmt.Sprint(c), func(b *testing.B) {
			f := &storedForm{codec: c, level: map[int16]int{1: -1, 3: 9, 4: 3}[c]}
			b.ReportAllocs()
			b.SetBytes(int64(len(plain)))
			for range b.N {
				if _, err := f.recompress(plain, hs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
