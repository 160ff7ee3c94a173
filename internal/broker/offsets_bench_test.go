package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkCommitOffsets measures offset commits through the core into the
// offsets store, with concurrent committers sharing fsyncs. Each committer
// commits one partition of its own group, as meta's BenchmarkCommitOffsets
// does over the metadata log (the path before the store), so the two
// compare.
func BenchmarkCommitOffsets(b *testing.B) {
	for _, committers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			br, _, _ := openCore(b, b.TempDir())
			if _, err := br.CreateTopic("t", 8, nil, false); err != nil {
				b.Fatal(err)
			}
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
					group := fmt.Sprintf("g%d", i)
					for seq := range n {
						if err := br.CommitOffsets(group, []OffsetCommit{{Topic: "t", Partition: int32(i % 8), Offset: int64(seq)}}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
			st := br.OffsetStats()
			b.ReportMetric(float64(st.Records)/float64(max(st.Syncs, 1)), "commits/fsync")
		})
	}
}
