package broker

import (
	"math/rand/v2"
	"testing"

	"github.com/sluice-mq/sluice/internal/storage"
)

// benchBatch is 16 records of 1 KiB, the shape of storage's benchmarks.
func benchBatch() []byte {
	recs := make([][]byte, 16)
	for i := range recs {
		recs[i] = make([]byte, 1<<10)
	}
	return storage.BuildBatch(0, 1, recs)
}

func benchPartition(b *testing.B) *Partition {
	l, err := openDiskLog("/data/t-0", storage.Options{FS: storage.NewMemFS(), Sync: storage.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	p, err := newPartition("t", 0, l, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPartitionProduce is what a Kafka produce asks of the core for
// one partition: validate, append, wait (SyncNever on the in-memory file
// system, so the cost measured is the partition's and the log's CPU, not
// a disk's).
func BenchmarkPartitionProduce(b *testing.B) {
	p := benchPartition(b)
	batch := benchBatch()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		_, ap, err := p.Append(batch)
		if err == nil {
			err = ap.Wait()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartitionFetch is what a Kafka fetch asks of the core for one
// partition: its offsets, then up to 1 MiB of whole batches at a random
// offset below the high watermark.
func BenchmarkPartitionFetch(b *testing.B) {
	p := benchPartition(b)
	batch := benchBatch()
	var ap Pending
	for range 4096 { // 64 MiB
		var err error
		if _, ap, err = p.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := ap.Wait(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		start, hw, _ := p.Offsets()
		data, err := p.Read(start+rng.Int64N(hw-start), 1<<20, ReadUncommitted)
		if err != nil || len(data) == 0 {
			b.Fatal(len(data), err)
		}
	}
}
