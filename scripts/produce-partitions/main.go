// Command produce-partitions creates a topic of -n partitions on a Kafka
// broker, then times one franz-go ProduceSync of one 100-byte record to
// each partition (acks=all, linger 0) and prints the seconds as JSON: the
// "produce 1 record to each of 2,000 partitions" row of docs/benchmarks.md
// (scripts/bench-produce.sh runs it against fresh brokers). With -again it
// also times a second such produce, to partitions written once (again_s).
package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "")
	n := flag.Int("n", 2000, "partitions")
	topic := flag.String("topic", fmt.Sprintf("p%d", time.Now().UnixNano()), "")
	again := flag.Bool("again", false, "time a second produce of one record to each partition too (again_s)")
	flag.Parse()
	cl, err := kgo.NewClient(kgo.SeedBrokers(*brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1000000))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = *topic, int32(*n), 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 60000
	if _, err := req.RequestWith(ctx, cl); err != nil {
		panic(err)
	}
	// warm metadata
	for {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: *topic, Partition: 0, Value: []byte("w")}).FirstErr(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	recs := make([]*kgo.Record, *n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: *topic, Partition: int32(i), Value: make([]byte, 100)}
	}
	start := time.Now()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		panic(err)
	}
	first := time.Since(start).Seconds()
	if !*again {
		fmt.Printf("{\"partitions\":%d,\"produce_s\":%.3f}\n", *n, first)
		return
	}
	// The same produce again: every partition has been written once, so
	// its files exist (the broker creates a partition's files on its
	// first write).
	start = time.Now()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		panic(err)
	}
	fmt.Printf("{\"partitions\":%d,\"produce_s\":%.3f,\"again_s\":%.3f}\n", *n, first, time.Since(start).Seconds())
}
