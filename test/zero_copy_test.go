package test

import (
	"context"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Zero-copy Fetch (sendfile from the segment files, --kafka-zero-copy, on
// by default) under real clients, on a topic whose small segments roll
// and are deleted by retention while the clients read it.

const (
	zcPartitions = 2
	zcRecords    = 3000 // per partition, 1 KiB each
)

// zcValue is the value of the record at offset o of partition p: it names
// both, so that bytes sent from the wrong place are caught.
func zcValue(p int32, o int64) []byte {
	v := make([]byte, 1024)
	n := copy(v, fmt.Sprintf("p=%d o=%d ", p, o))
	for i := n; i < len(v); i++ {
		v[i] = 'a' + byte((o+int64(i))%26)
	}
	return v
}

// zcRead is one record as a client read it.
type zcRead struct {
	p   int32
	o   int64
	crc uint32
}

// checkZeroCopyReads checks what one client read: every record's value is
// the one written at its offset, offsets only grow in each partition,
// each partition was read to its last record, and any offsets skipped
// are below the log start at the end (deleted by retention before the
// client got there, which then starts again at the log start).
func checkZeroCopyReads(t *testing.T, client string, reads []zcRead, logStart map[int32]int64) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range reads {
		if r.crc != crc32.ChecksumIEEE(zcValue(r.p, r.o)) {
			t.Fatalf("%s: the value at %d@%d is not the one written there", client, r.p, r.o)
		}
		if r.o < next[r.p] {
			t.Fatalf("%s: partition %d went back from %d to %d", client, r.p, next[r.p]-1, r.o)
		}
		if r.o > next[r.p] && r.o > logStart[r.p] {
			t.Fatalf("%s: partition %d skipped offsets %d..%d, which retention had not deleted (log start %d)", client, r.p, next[r.p], r.o-1, logStart[r.p])
		}
		next[r.p] = r.o + 1
	}
	for p := range int32(zcPartitions) {
		if next[p] != zcRecords {
			t.Fatalf("%s: partition %d read up to %d, want %d", client, p, next[p], zcRecords)
		}
	}
	if len(reads) < zcPartitions*zcRecords/4 {
		t.Fatalf("%s: read only %d of the %d records: it did not read while they were written", client, len(reads), zcPartitions*zcRecords)
	}
	t.Logf("%s: %d records read, intact and in order", client, len(reads))
}

// TestZeroCopyConsumeWhileRetentionDeletes: franz-go, kcat and
// confluent-kafka read a topic from its start while a producer fills it
// and retention deletes its old segments (64 KiB segments, 1 MiB kept
// per partition); every record read is intact and in place, none still
// held is skipped, and the fetches were sent from the files. With
// --kafka-zero-copy=false the same reads are copied and nothing is sent
// from the files.
func TestZeroCopyConsumeWhileRetentionDeletes(t *testing.T) {
	for _, zeroCopy := range []bool{true, false} {
		t.Run(fmt.Sprintf("zero-copy=%v", zeroCopy), func(t *testing.T) {
			if zeroCopy {
				needTool(t, kcatPath)
				needPythonModule(t, "confluent_kafka")
			}
			b := startBroker(t, "--retention-check-interval=50ms", fmt.Sprintf("--kafka-zero-copy=%v", zeroCopy))
			const topic = "zc-retention"
			seg, keep := "65536", "1048576"
			b.createTopic(t, topic, zcPartitions, map[string]*string{"segment.bytes": &seg, "retention.bytes": &keep})

			// The producer writes a quarter before the readers start, the
			// rest while they read.
			prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchMaxBytes(64<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
			// The rest goes in steps of 50 records a partition every
			// 150ms, so that the readers, however slow to start, read
			// while segments roll and retention deletes them.
			pace := time.NewTicker(150 * time.Millisecond)
			defer pace.Stop()
			produce := func(from, to int64) error {
				step := int64(50)
				if from == 0 {
					step = 250
				}
				for o := from; o < to; o += step {
					if from > 0 {
						<-pace.C
					}
					var rs []*kgo.Record
					for i := o; i < min(o+step, to); i++ {
						for p := range int32(zcPartitions) {
							rs = append(rs, &kgo.Record{Partition: p, Value: zcValue(p, i)})
						}
					}
					res := prod.ProduceSync(context.Background(), rs...)
					if err := res.FirstErr(); err != nil {
						return err
					}
					for _, r := range res {
						p, off := r.Record.Partition, r.Record.Offset
						if !strings.HasPrefix(string(r.Record.Value), fmt.Sprintf("p=%d o=%d ", p, off)) {
							return fmt.Errorf("record for %q landed at %d@%d", r.Record.Value[:16], p, off)
						}
					}
				}
				return nil
			}
			if err := produce(0, zcRecords/4); err != nil {
				t.Fatal(err)
			}
			produced := make(chan error, 1)
			go func() { produced <- produce(zcRecords/4, zcRecords) }()

			var mu sync.Mutex
			results := map[string][]zcRead{}
			var wg sync.WaitGroup
			clients := map[string]func(t *testing.T) []zcRead{"franz-go": zcReadFranz(b, topic)}
			if zeroCopy {
				clients["kcat"] = zcReadKcat(b, topic)
				clients["confluent-kafka"] = zcReadConfluent(b, topic)
			}
			for name, read := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reads := read(t)
					mu.Lock()
					results[name] = reads
					mu.Unlock()
				}()
			}
			wg.Wait()
			if err := <-produced; err != nil {
				t.Fatal(err)
			}
			if t.Failed() {
				return
			}
			starts, err := b.admin(t).ListStartOffsets(ctxT(t, 10*time.Second), topic)
			if err != nil {
				t.Fatal(err)
			}
			logStart := map[int32]int64{}
			for p := range int32(zcPartitions) {
				l, _ := starts.Lookup(topic, p)
				logStart[p] = l.Offset
				if l.Offset == 0 {
					t.Fatalf("partition %d: retention deleted nothing (log start 0)", p)
				}
			}
			for name, reads := range results {
				checkZeroCopyReads(t, name, reads, logStart)
			}
			sent, _ := b.scrape(t).value("sluice_kafka_sendfile_bytes_total")
			switch {
			case zeroCopy && sent == 0:
				t.Fatal("zero copy on, but no fetch was sent from the files")
			case !zeroCopy && sent != 0:
				t.Fatalf("zero copy off, but %v bytes were sent from the files", sent)
			}
			t.Logf("%v bytes sent from the files; log start %v", sent, logStart)
		})
	}
}

// zcReadFranz reads with franz-go from the start, resetting to the log
// start when retention deleted the next offset.
func zcReadFranz(b *broker, topic string) func(t *testing.T) []zcRead {
	return func(t *testing.T) []zcRead {
		c := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxPartitionBytes(1<<20))
		ctx := ctxT(t, 60*time.Second)
		var reads []zcRead
		left := map[int32]bool{0: true, 1: true}
		for len(left) > 0 {
			fs := c.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Errorf("franz-go: %d records read before the deadline; partitions %v unfinished", len(reads), left)
				return nil
			}
			fs.EachError(func(topic string, p int32, err error) { t.Logf("franz-go: fetch %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				reads = append(reads, zcRead{r.Partition, r.Offset, crc32.ChecksumIEEE(r.Value)})
				if r.Offset == zcRecords-1 {
					delete(left, r.Partition)
				}
			})
		}
		return reads
	}
}

// zcReadKcat reads the partitions in turns with kcat runs, each to the end
// of what is there (-e) from where the last one stopped, until the last
// record; a run that finds its offset deleted starts at the log start
// (topic.auto.offset.reset=earliest).
func zcReadKcat(b *broker, topic string) func(t *testing.T) []zcRead {
	return func(t *testing.T) []zcRead {
		var reads []zcRead
		deadline := time.Now().Add(60 * time.Second)
		next := make([]int64, zcPartitions)
		for done := 0; done < zcPartitions; {
			done = 0
			for p := range int32(zcPartitions) {
				if next[p] == zcRecords {
					done++
					continue
				}
				if time.Now().After(deadline) {
					t.Errorf("kcat: read up to %v before the deadline", next)
					return nil
				}
				r := b.kcat(t, "", "-C", "-t", topic, "-p", strconv.Itoa(int(p)), "-o", strconv.FormatInt(next[p], 10), "-e",
					"-X", "topic.auto.offset.reset=earliest", "-f", "%p %o %s\n")
				if r.Err != nil {
					t.Errorf("kcat: %v\n%s", r.Err, clip(r.Stderr))
					return nil
				}
				for _, line := range splitLines(r.Stdout) {
					f := strings.SplitN(line, " ", 3)
					if len(f) != 3 {
						t.Errorf("kcat: line %q", line)
						return nil
					}
					part, _ := strconv.Atoi(f[0])
					off, _ := strconv.ParseInt(f[1], 10, 64)
					reads = append(reads, zcRead{int32(part), off, crc32.ChecksumIEEE([]byte(f[2]))})
					next[p] = off + 1
				}
			}
		}
		// In turns, so the partitions' reads interleave: order them per
		// partition for the check.
		sort.SliceStable(reads, func(i, j int) bool { return reads[i].p < reads[j].p })
		return reads
	}
}

// zcReadConfluent reads with confluent-kafka (test/python/confluent_consume_all.py).
func zcReadConfluent(b *broker, topic string) func(t *testing.T) []zcRead {
	return func(t *testing.T) []zcRead {
		path, err := filepath.Abs(filepath.Join("python", "confluent_consume_all.py"))
		if err != nil {
			t.Error(err)
			return nil
		}
		r := runTool(t, 120*time.Second, "", python3Path, path, b.Kafka, topic, strconv.Itoa(zcPartitions), strconv.Itoa(zcRecords-1))
		if r.Err != nil {
			t.Errorf("confluent-kafka: %v\n%s", r.Err, clip(r.Stderr))
			return nil
		}
		var reads []zcRead
		for _, line := range splitLines(r.Stdout) {
			var rd zcRead
			if _, err := fmt.Sscanf(line, "%d %d %d", &rd.p, &rd.o, &rd.crc); err != nil {
				t.Errorf("confluent-kafka: line %q: %v", line, err)
				return nil
			}
			reads = append(reads, rd)
		}
		return reads
	}
}
