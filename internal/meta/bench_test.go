package meta

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// BenchmarkCommitOffsets measures offset commits through the metadata
// log, one fsync'd command per commit shared by concurrent committers
// (group commit): the path every Kafka OffsetCommit took before the
// offsets store. Each committer commits one partition of its own group.
func BenchmarkCommitOffsets(b *testing.B) {
	for _, committers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.CreateTopic("t", 8, nil); err != nil {
				b.Fatal(err)
			}
			benchCommitters(b, committers, func(i, seq int) error {
				return s.CommitOffsets(fmt.Sprintf("g%d", i), []OffsetCommit{{Topic: "t", Partition: int32(i % 8), Offset: int64(seq)}})
			})
		})
	}
}

// benchCommitters runs b.N commits split between committers goroutines
// and reports commits/s.
func benchCommitters(b *testing.B, committers int, commit func(i, seq int) error) {
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range committers {
		n := b.N / committers
		if i < b.N%committers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range n {
				if err := commit(i, seq); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}
