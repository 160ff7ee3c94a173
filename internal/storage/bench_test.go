package storage

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

const (
	benchRecord  = 1 << 10 // 1 KiB records
	benchRecords = 16      // per batch
)

// BenchmarkAppend measures the append path (Append + Wait) with 16 x 1 KiB
// batches on a temp dir, under SyncAlways (fsync before ack) and
// SyncNever, from one goroutine, from many (group commit coalesces
// them), and from many spread over 8 logs (the broker's shape).
func BenchmarkAppend(b *testing.B) {
	for _, pol := range []struct {
		name string
		p    SyncPolicy
	}{{"SyncAlways", SyncAlways}, {"SyncNever", SyncNever}} {
		b.Run(pol.name+"/Serial", func(b *testing.B) { benchAppend(b, pol.p, 1, 0) })
		b.Run(pol.name+"/Parallel16", func(b *testing.B) { benchAppend(b, pol.p, 1, 16) })
		b.Run(pol.name+"/8Logs64", func(b *testing.B) { benchAppend(b, pol.p, 8, 64) })
	}
}

// benchAppend appends from parallelism x GOMAXPROCS goroutines (or one
// when 0) to nlogs logs.
func benchAppend(b *testing.B, p SyncPolicy, nlogs, parallelism int) {
	ffs := NewFaultFS(OSFS())
	dir := b.TempDir()
	logs := make([]*Log, nlogs)
	for i := range logs {
		logs[i] = mustOpen(b, ffs, fmt.Sprintf("%s/log-%d", dir, i), Options{Sync: p})
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	batch := batchOf(1, benchRecords, benchRecord, 1)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	syncs := ffs.Syncs()
	b.ResetTimer()
	if parallelism == 0 {
		for b.Loop() {
			if _, err := mustAppendErr(logs[0], batch); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		var next atomic.Int64
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			my := append([]byte(nil), batch...)
			l := logs[int(next.Add(1))%len(logs)]
			for pb.Next() {
				if _, err := mustAppendErr(l, my); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(ffs.Syncs()-syncs)/float64(b.N), "fsyncs/op")
}

// BenchmarkRead reads 1 MiB of whole batches at random offsets, from the
// active segment and from old segments (index searched in the file, files
// through the handle LRU).
func BenchmarkRead(b *testing.B) {
	for _, c := range []struct {
		name     string
		segBytes int64
	}{{"ActiveSegment", 1 << 30}, {"OldSegments", 1 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			l := mustOpen(b, OSFS(), b.TempDir()+"/log", Options{Sync: SyncNever, SegmentBytes: c.segBytes})
			defer l.Close()
			batch := batchOf(1, benchRecords, benchRecord, 1)
			for range 2048 { // 32 MiB
				if _, err := l.Append(batch); err != nil {
					b.Fatal(err)
				}
			}
			if err := l.Sync(); err != nil {
				b.Fatal(err)
			}
			hw := l.HighWatermark()
			rng := rand.New(rand.NewPCG(1, 2))
			var n int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				data, err := l.Read(rng.Int64N(hw), 1<<20)
				if err != nil || len(data) == 0 {
					b.Fatal(err)
				}
				n += int64(len(data))
			}
			b.SetBytes(n / int64(b.N))
		})
	}
}

// BenchmarkNewLog measures a new log's life to its first durable record
// on a temp dir, as a topic creation and a first produce to a partition
// make it: Open of a missing directory, then one Append + Wait of a small
// batch, with the directory and file made by Open (eager) or by that
// first write (CreateOnAppend). "open" stops after Open: what a topic
// creation pays per partition.
func BenchmarkNewLog(b *testing.B) {
	batch := batchOf(1, 1, 100, 1000)
	for _, lazy := range []bool{false, true} {
		name := map[bool]string{false: "Eager", true: "CreateOnAppend"}[lazy]
		for _, write := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/write=%v", name, write), func(b *testing.B) {
				dir := b.TempDir()
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					l := mustOpen(b, OSFS(), fmt.Sprintf("%s/t-%d", dir, i), Options{CreateOnAppend: lazy})
					if write {
						mustAppend(b, l, batch)
					}
					if err := l.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAppendBursts appends in bursts, as a queue's publishers do
// when credit flow releases them together: each op is a burst of 2,048
// one-record 1 KiB batches appended without waiting, then a burst of 64,
// each waited for at its end, on a queue's log (fsync before the ack,
// readable before it). Bytes allocated per op show whether the writer's
// group buffers are reused from burst to burst or grown afresh.
//
//	go test -run - -bench AppendBursts -benchmem ./internal/storage/
func BenchmarkAppendBursts(b *testing.B) {
	l := mustOpen(b, OSFS(), b.TempDir()+"/log", Options{Sync: SyncAlways, ReadBeforeSync: true})
	defer l.Close()
	batch := batchOf(1, 1, benchRecord, 1)
	b.SetBytes(int64(len(batch)) * (2048 + 64))
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range []int{2048, 64} {
			var last *Appended
			for range n {
				a, err := l.Append(batch)
				if err != nil {
					b.Fatal(err)
				}
				last = a
			}
			if err := last.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
