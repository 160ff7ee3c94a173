package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// newKafkaCore is newCore with topics shown as super streams in vhost "/".
func newKafkaCore(t *testing.T) (*Broker, *Router) {
	t.Helper()
	b, r, _ := openKafkaCore(t, t.TempDir(), "/")
	return b, r
}

// openKafkaCore opens the core in dir with Kafka vhost kv; closing it is
// also left to the test's cleanup.
func openKafkaCore(t *testing.T, dir, kv string) (*Broker, *Router, func()) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{DataDir: dir, Logger: quiet}, m)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouter(RouterOptions{DataDir: dir, Logger: quiet, Topics: b, KafkaVhost: kv}, m)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeAll := func() { once.Do(func() { r.Close(); b.Close(); m.Close() }) }
	t.Cleanup(closeAll)
	if err := r.AddVhost("/"); err != nil {
		t.Fatal(err)
	}
	return b, r, closeAll
}

// TestTopicStreamWithoutKafkaVhost: a stream declared as a topic stays
// one after a restart with no Kafka vhost (no super streams then), and
// the topic's deletion still deletes it.
func TestTopicStreamWithoutKafkaVhost(t *testing.T) {
	dir := t.TempDir()
	_, r, closeCore := openKafkaCore(t, dir, "/")
	if _, err := r.DeclareQueue("/", QueueDecl{Name: "s", Durable: true, Arguments: fieldtable.Table{"x-queue-type": "stream"}}); err != nil {
		t.Fatal(err)
	}
	closeCore()
	b, r, _ := openKafkaCore(t, dir, "")
	if _, err := b.CreateTopic("plain", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if qs := queueNames(t, r); len(qs) != 1 || qs["s"] != QueueTypeStream {
		t.Fatalf("queues %v, want s alone (no super streams without a Kafka vhost)", qs)
	}
	if err := b.CreatePartitions("s", 2, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("growing s: %v", err)
	}
	if err := b.DeleteTopic("s"); err != nil {
		t.Fatal(err)
	}
	if qs := queueNames(t, r); len(qs) != 0 {
		t.Fatalf("queues %v after the topic's deletion", qs)
	}
	if _, ok := r.meta.Queue("/", "s"); ok {
		t.Fatal("queue s still defined")
	}
}

// collector is a stream consumer with unlimited credit.
type collector struct {
	mu sync.Mutex
	ds []queue.Delivery
}

func (c *collector) Reserve() bool { return true }
func (c *collector) Deliver(d queue.Delivery) {
	c.mu.Lock()
	c.ds = append(c.ds, d)
	c.mu.Unlock()
}
func (c *collector) Cancelled() {}
func (c *collector) got() []queue.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]queue.Delivery(nil), c.ds...)
}

func queueNames(t *testing.T, r *Router) map[string]string {
	t.Helper()
	qs, err := r.QueueStatuses("/")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, q := range qs {
		out[q.Name] = q.Type
	}
	return out
}

// TestTopicViewsFollowTopic: a topic's exchange and partition queues come
// with its creation, grow with CreatePartitions and go with its deletion;
// they refuse deletion; a publish to the exchange lands in the topic and
// is read through the partition queue it landed in.
func TestTopicViewsFollowTopic(t *testing.T) {
	b, r := newKafkaCore(t)
	if _, err := b.CreateTopic("t", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	if qs := queueNames(t, r); qs["t-0"] != QueueTypeStream || qs["t-1"] != QueueTypeStream || len(qs) != 2 {
		t.Fatalf("queues %v", qs)
	}
	if xs := r.TopicViewExchanges("/"); len(xs) != 1 || xs[0].Name != "t" || xs[0].Type != ExchangeDirect {
		t.Fatalf("exchanges %+v", xs)
	}
	if _, err := r.DeleteQueue("/", "t-0", "", false, false); !errors.Is(err, ErrAccessRefused) {
		t.Fatalf("delete t-0: %v", err)
	}
	if err := r.DeleteExchange("/", "t", false); !errors.Is(err, ErrAccessRefused) {
		t.Fatalf("delete t: %v", err)
	}
	for _, bd := range []meta.Binding{
		{Vhost: "/", Source: "amq.direct", Destination: "t-0", DestinationKind: meta.DestQueue, RoutingKey: "x"},
		{Vhost: "/", Source: "t", Destination: "amq.fanout", DestinationKind: meta.DestExchange, RoutingKey: "x"},
		{Vhost: "/", Source: "amq.direct", Destination: "t", DestinationKind: meta.DestExchange, RoutingKey: "x"},
	} {
		if err := r.Bind(bd, nil, ""); !errors.Is(err, ErrAccessRefused) {
			t.Fatalf("binding %+v: %v, want ACCESS_REFUSED", bd, err)
		}
	}

	rt, err := r.Publish("/", &message.Message{Exchange: "t", RoutingKey: "k", Body: []byte("v"),
		Properties: message.Properties{Present: message.PropHeaders, Headers: fieldtable.Table{"h": "x"}}})
	if err != nil || rt.Queues != 1 {
		t.Fatalf("publish: %v, %d destinations", err, rt.Queues)
	}
	if err := rt.Wait(); err != nil {
		t.Fatal(err)
	}
	part := fmt.Sprintf("t-%d", murmur2([]byte("k"))&0x7fffffff%2)
	q, err := r.Queue("/", part, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	if _, err := q.(*queue.Stream).AddStreamConsumer(c, queue.StreamStart{Kind: queue.StartFirst}, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return len(c.got()) == 1 })
	m := c.got()[0].Message
	if string(m.Body) != "v" || m.Properties.Headers["h"] != "x" || m.Properties.Headers[message.HeaderKey] != "k" {
		t.Fatalf("delivered %+v", m)
	}

	if err := b.CreatePartitions("t", 12, false); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, bd := range r.TopicViewBindings("/") {
		keys = append(keys, bd.RoutingKey)
	}
	if fmt.Sprint(keys) != "[0 1 2 3 4 5 6 7 8 9 10 11]" {
		t.Fatalf("binding keys in order %v", keys)
	}
	if qs := queueNames(t, r); len(qs) != 12 || qs["t-11"] != QueueTypeStream {
		t.Fatalf("queues after growing %v", qs)
	}
	// The grown topic keeps the views of its old partitions, consumers and all.
	if q2, _ := r.Queue("/", part, ""); q2 != q {
		t.Fatalf("partition view %s replaced by CreatePartitions", part)
	}
	if err := b.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if qs := queueNames(t, r); len(qs) != 0 || len(r.TopicViewExchanges("/")) != 0 {
		t.Fatalf("views left after the topic's deletion: %v", qs)
	}
}

// TestTopicViewsConcurrentChanges: topics created, grown and deleted
// while publishers route to their exchanges and listings run (for -race).
func TestTopicViewsConcurrentChanges(t *testing.T) {
	b, r := newKafkaCore(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("c%d", i%3)
				if rt, err := r.Publish("/", &message.Message{Exchange: name, RoutingKey: fmt.Sprint(w, i)}); err == nil {
					rt.Wait()
				}
				r.QueueStatuses("/")
				r.TopicViewBindings("/")
			}
		}()
	}
	for i := range 30 {
		name := fmt.Sprintf("c%d", i%3)
		b.CreateTopic(name, 1, nil, false)
		b.CreatePartitions(name, 2, false)
		if i%2 == 0 {
			b.DeleteTopic(name)
		}
	}
	close(stop)
	wg.Wait()
	for _, tp := range b.Topics() {
		if err := b.DeleteTopic(tp.Name); err != nil {
			t.Fatal(err)
		}
	}
	if qs := queueNames(t, r); len(qs) != 0 {
		t.Fatalf("views left after every topic's deletion: %v", qs)
	}
}

// TestStreamDeclaredIsTopic: a stream queue declared in the Kafka vhost
// creates a one-partition topic with its retention as configs; the queue
// is not also a super stream; deleting it deletes the topic; after a
// restart the queue is there again over the same topic.
func TestStreamDeclaredIsTopic(t *testing.T) {
	b, r := newKafkaCore(t)
	args := fieldtable.Table{"x-queue-type": "stream", "x-max-length-bytes": int64(1 << 20)}
	if _, err := r.DeclareQueue("/", QueueDecl{Name: "s", Durable: true, Arguments: args}); err != nil {
		t.Fatal(err)
	}
	tp, ok := b.Topic("s")
	if !ok || tp.Topic.Partitions != 1 || tp.Configs["retention.bytes"] != "1048576" || tp.Configs["retention.ms"] != "-1" {
		t.Fatalf("topic s: %+v", tp)
	}
	if qs := queueNames(t, r); len(qs) != 1 || qs["s"] != QueueTypeStream || len(r.TopicViewExchanges("/")) != 0 || len(r.TopicViewBindings("/")) != 0 {
		t.Fatalf("queues %v, exchanges %v, bindings %v", qs, r.TopicViewExchanges("/"), r.TopicViewBindings("/"))
	}
	if _, err := r.DeclareQueue("/", QueueDecl{Name: "s", Durable: true, Arguments: args}); err != nil {
		t.Fatalf("redeclare: %v", err)
	}
	for _, bad := range []QueueDecl{
		{Name: "no spaces", Durable: true, Arguments: fieldtable.Table{"x-queue-type": "stream"}},
		{Name: "big", Durable: true, Arguments: fieldtable.Table{"x-queue-type": "stream", "x-stream-max-segment-size-bytes": int64(3e9)}},
	} {
		if _, err := r.DeclareQueue("/", bad); !errors.Is(err, ErrPreconditionFailed) {
			t.Fatalf("declare %+v: %v, want PRECONDITION_FAILED", bad, err)
		}
	}
	if err := b.CreatePartitions("s", 2, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("growing s: %v", err)
	}
	if _, err := r.DeleteQueue("/", "s", "", false, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Topic("s"); ok {
		t.Fatal("topic s outlived its queue")
	}
	if _, ok := r.meta.Queue("/", "s"); ok {
		t.Fatal("queue s still defined")
	}
}

// TestPartitionViewLogAppendTime: records of a LogAppendTime topic are
// delivered with the time the broker stamped, not the producer's.
func TestPartitionViewLogAppendTime(t *testing.T) {
	b, r := newKafkaCore(t)
	if _, err := b.CreateTopic("lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"}, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("lat", 0)
	before := time.Now().UnixMilli()
	recs := []storage.Record{{Value: []byte("a")}, {Value: []byte("b")}}
	batch := storage.BuildRecordBatch(0, 1000, recs)
	_, pending, err := p.Append(batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := pending.Wait(); err != nil {
		t.Fatal(err)
	}
	q, err := r.Queue("/", "lat-0", "")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	if _, err := q.(*queue.Stream).AddStreamConsumer(c, queue.StreamStart{Kind: queue.StartFirst}, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return len(c.got()) == 2 })
	for _, d := range c.got() {
		if ts := d.Message.Properties.Headers[message.HeaderTimestamp].(int64); ts < before {
			t.Fatalf("offset %d delivered with timestamp %d, the producer's; want the append time (>= %d)", d.Offset, ts, before)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// gzipBatch is batch (uncompressed, one batch) with its records gzipped.
func gzipBatch(t testing.TB, batch []byte) []byte {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(batch[batchHeaderBytes:])
	w.Close()
	out := append(append([]byte(nil), batch[:batchHeaderBytes]...), z.Bytes()...)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint16(out[21:23], binary.BigEndian.Uint16(out[21:23])|1)
	return out
}

// TestPlainBatches: a partition view's reader gets compressed batches
// decompressed and transaction markers emptied, offsets kept; plain
// batches pass as they are.
func TestPlainBatches(t *testing.T) {
	recs := []storage.Record{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}
	plain := storage.BuildRecordBatch(10, 1000, recs)
	if got := plainBatches(plain); !bytes.Equal(got, plain) {
		t.Fatal("a plain batch was rewritten")
	}
	marker := storage.BuildRecordBatch(12, 1000, []storage.Record{{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	binary.BigEndian.PutUint16(marker[21:23], controlBit)
	in := append(append(gzipBatch(t, plain), marker...), storage.BuildRecordBatch(13, 1000, recs[:1])...)
	out := plainBatches(in)
	var offs []int64
	var batches int
	for len(out) > 0 {
		n, err := storage.ReadRecords(out, func(off, _ int64, r storage.Record) bool {
			offs = append(offs, off)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		out, batches = out[n:], batches+1
	}
	if batches != 3 || fmt.Sprint(offs) != "[10 11 13]" {
		t.Fatalf("%d batches, offsets %v", batches, offs)
	}
}

// FuzzPlainBatches: whatever a partition holds (producers' bytes), the
// rewrite never panics and what it returns reads without panicking.
func FuzzPlainBatches(f *testing.F) {
	recs := []storage.Record{{Key: []byte("a"), Value: []byte("1"), Headers: []storage.RecordHeader{{Key: "h", Value: []byte("v")}}}}
	plain := storage.BuildRecordBatch(0, 1000, recs)
	f.Add(plain)
	f.Add(gzipBatch(f, plain))
	f.Add(append(gzipBatch(f, plain), plain...))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := plainBatches(b)
		for len(out) > 0 {
			n, err := storage.ReadRecords(out, func(_, ts int64, r storage.Record) bool {
				message.FromTopicRecord(r, ts)
				return true
			})
			if err != nil || n == 0 {
				return
			}
			out = out[n:]
		}
	})
}
