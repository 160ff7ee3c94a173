package broker

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/sluice-mq/sluice/internal/storage"
)

var (
	txnOpenBenchOnce sync.Once
	txnOpenBenchDir  string
)

// txnOpenBenchLog writes, once per process, SLUICE_TXN_OPEN_BENCH_MB
// (default 256) MiB of transactional data into 64 MiB segments: batches
// of 16 records of 1 KiB, transactions of 4 batches from 8 producers in
// turn, one in four aborted, and the closed segments' summaries.
func txnOpenBenchLog(b *testing.B) string {
	txnOpenBenchOnce.Do(func() {
		mb := 256
		if s := os.Getenv("SLUICE_TXN_OPEN_BENCH_MB"); s != "" {
			mb, _ = strconv.Atoi(s)
		}
		dir, err := os.MkdirTemp("", "txn-open-bench")
		if err != nil {
			b.Fatal(err)
		}
		txnOpenBenchDir = dir
		l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20, Sync: storage.SyncNever})
		if err != nil {
			b.Fatal(err)
		}
		p, err := newPartition("t", 0, diskLog{l}, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]kv, 16)
		for i := range recs {
			recs[i] = kv{key: []byte{byte(i)}, value: make([]byte, 1024)}
		}
		var pending []byte
		flush := func() {
			if len(pending) == 0 {
				return
			}
			if _, ap, err := p.log.Append(pending); err != nil {
				b.Fatal(err)
			} else if err := ap.Wait(); err != nil {
				b.Fatal(err)
			}
			pending = pending[:0]
		}
		for n := 0; l.Size() < int64(mb)<<20; n++ {
			pid := int64(n % 8)
			for range 4 {
				pending = append(pending, keyedBatch(b, 1000, pid, transactionalBit, recs)...)
			}
			pending = append(pending, marker(b, 1000, pid, n%4 != 3)...)
			if len(pending) > 1<<20 {
				flush()
			}
		}
		flush()
		if err := p.persistTxnIndex(); err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	})
	return txnOpenBenchDir
}

// sidecarlessLog hides a log's sidecars: the partition scans it all.
type sidecarlessLog struct{ PartitionLog }

// BenchmarkPartitionOpenTxn opens a partition of transactional data (its
// storage and its producer and transaction state), rebuilding the
// transactions by scanning every segment ("scan", as before summaries
// were persisted) or from the closed segments' summaries ("summaries").
// The page cache is warm after the first open.
func BenchmarkPartitionOpenTxn(b *testing.B) {
	dir := txnOpenBenchLog(b)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var size int64
	for _, s := range segs {
		if fi, err := os.Stat(s); err == nil {
			size += fi.Size()
		}
	}
	for _, mode := range []string{"scan", "summaries"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportMetric(float64(size)/(1<<20), "MiB")
			b.ReportMetric(float64(len(segs)), "segments")
			for range b.N {
				l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20, Sync: storage.SyncNever})
				if err != nil {
					b.Fatal(err)
				}
				var log PartitionLog = diskLog{l}
				if mode == "scan" {
					log = sidecarlessLog{log}
				}
				p, err := newPartition("t", 0, log, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.txns.aborted) == 0 {
					b.Fatal("no aborted transactions rebuilt")
				}
				l.Close()
			}
		})
	}
}

// TestMain removes the benchmark's log.
func TestMain(m *testing.M) {
	code := m.Run()
	if txnOpenBenchDir != "" {
		os.RemoveAll(txnOpenBenchDir)
	}
	os.Exit(code)
}
