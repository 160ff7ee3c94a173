package broker

import (
	"fmt"
	"testing"
)

// BenchmarkCreateTopics measures topic creation through the core: the
// partition logs laid out on disk and the definition made durable in the
// metadata log, one CreateTopics of 10 topics x 10 partitions per
// iteration (the shape of a Kafka CreateTopics request), reported per
// topic.
func BenchmarkCreateTopics(b *testing.B) {
	const topics, partitions = 10, 10
	br, m, _ := openCore(b, b.TempDir())
	b.ReportAllocs()
	b.ResetTimer()
	syncs := m.Stats().Syncs
	for i := range b.N {
		specs := make([]TopicSpec, topics)
		for j := range specs {
			specs[j] = TopicSpec{Name: fmt.Sprintf("t%d-%d", i, j), Partitions: partitions}
		}
		for j, r := range br.CreateTopics(specs, false) {
			if r.Err != nil {
				b.Fatalf("%s: %v", specs[j].Name, r.Err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*topics)/b.Elapsed().Seconds(), "topics/s")
	b.ReportMetric(float64(m.Stats().Syncs-syncs)/float64(b.N), "meta-fsyncs/op")
}
