package offsets

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkCommit measures commits into the store by concurrent
// committers, each its own group committing one partition, with each
// durability policy: fsync before the answer (the default) and an fsync
// every millisecond. It reports commits/s, records per fsync and (with
// -benchmem) allocations per commit.
func BenchmarkCommit(b *testing.B) {
	for _, interval := range []time.Duration{0, time.Millisecond} {
		for _, committers := range []int{8, 64} {
			b.Run(fmt.Sprintf("sync=%v/committers=%d", interval, committers), func(b *testing.B) {
				s := open(b, b.TempDir(), Options{SyncInterval: interval})
				b.ReportAllocs()
				b.ResetTimer()
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
						cs := []Commit{{Topic: "t", Partition: int32(i % 8)}}
						for seq := range n {
							cs[0].Offset = int64(seq)
							if err := s.Commit(group, cs, nil); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
				st := s.Stats()
				b.ReportMetric(float64(st.Records)/float64(max(st.Syncs, 1)), "commits/fsync")
			})
		}
	}
}
