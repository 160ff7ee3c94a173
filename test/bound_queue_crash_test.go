package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBoundQueueKill9: a queue bound to a topic holds every record of the
// topic exactly once, whatever moment the server is killed at. Each
// iteration has franz-go producers (acks=all) write to a two-partition
// topic while the server is killed with SIGKILL 50-400ms in; after the
// restart the queue must come to hold exactly as many messages as the
// topic holds records. At the end the queue is drained: every record the
// producers saw acknowledged is there, and no record is there twice.
func TestBoundQueueKill9(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "crashy", 2, nil)
	ch := b.channel(t)
	_, err := ch.QueueDeclare("crashy.q", true, false, false, false, nil)
	fatal(err)
	fatal(ch.QueueBind("crashy.q", "#", "crashy", false, nil))
	feedCrashes(t, b, "crashy.q")
}

// TestForwardingTopicKill9: the same for a topic forwarding to a fanout
// exchange: each of the exchange's two queues holds every record of the
// topic exactly once across SIGKILLs.
func TestForwardingTopicKill9(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	ch := b.channel(t)
	fatal(ch.ExchangeDeclare("fanx", "fanout", true, false, false, false, nil))
	for _, q := range []string{"fan.a", "fan.b"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		fatal(err)
		fatal(ch.QueueBind(q, "", "fanx", false, nil))
	}
	x := "fanx"
	b.createTopic(t, "crashy", 2, map[string]*string{"sluice.forward.exchange": &x})
	feedCrashes(t, b, "fan.a", "fan.b")
}

// feedCrashes produces to topic "crashy" while killing the server, four
// times, and checks that each of queues ends with every record of the
// topic exactly once, every acknowledged one among them.
func feedCrashes(t *testing.T, b *broker, queues ...string) {
	fatal := fatalIf(t)
	var ch *amqp.Channel

	acked := map[string]bool{}
	var mu sync.Mutex
	topicRecords := func() int64 {
		lo, err := b.admin(t).ListEndOffsets(ctxT(t, 10*time.Second), "crashy")
		fatal(err)
		var n int64
		for _, ps := range lo {
			for _, o := range ps {
				n += o.Offset
			}
		}
		return n
	}
	const iterations = 4
	for it := range iterations {
		kc := b.client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
			kgo.RecordRetries(3), kgo.RequestRetries(2), kgo.RetryTimeout(3*time.Second))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					v := fmt.Sprintf("%d-%d-%d", it, w, n)
					kc.Produce(ctx, &kgo.Record{Topic: "crashy", Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
						if err == nil {
							mu.Lock()
							acked[v] = true
							mu.Unlock()
						}
					})
					if n%64 == 63 {
						time.Sleep(time.Millisecond) // let batches form
					}
				}
			}()
		}
		time.Sleep(time.Duration(50+rand.IntN(350)) * time.Millisecond) // a random moment to crash at
		b.Kill()
		cancel()
		wg.Wait()
		kc.Close() // fails whatever was still in flight
		b.Restart()
		ch = b.channel(t)
		want := topicRecords()
		for _, q := range queues {
			waitFor(t, 30*time.Second, fmt.Sprintf("iteration %d: %s holding the topic's %d records", it, q, want), func() bool {
				return int64(queueDepth(t, ch, q)) >= want
			})
			if n := int64(queueDepth(t, ch, q)); n != want {
				t.Fatalf("iteration %d: %s holds %d messages, the topic %d records", it, q, n, want)
			}
		}
		t.Logf("iteration %d: %d records in the topic and the queue, %d acknowledged so far", it, want, len(acked))
	}

	for _, q := range queues {
		seen := map[string]bool{}
		for {
			d, ok, err := ch.Get(q, true)
			fatal(err)
			if !ok {
				break
			}
			v := string(d.Body)
			if seen[v] {
				t.Fatalf("record %s is in %s twice", v, q)
			}
			seen[v] = true
		}
		for v := range acked {
			if !seen[v] {
				t.Fatalf("acknowledged record %s is not in %s (%d of %d acknowledged seen)", v, q, len(seen), len(acked))
			}
		}
	}
	if len(acked) == 0 {
		t.Fatal("no record was acknowledged")
	}
}
