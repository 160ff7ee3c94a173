package test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKill9DuringCreateTopicsAndDeclaresKeepsEveryAcknowledged is the
// metadata's crash promise under batching: while one client creates topics
// many to a CreateTopics request (their definitions share one metadata
// fsync) and another declares and deletes durable queues, the server is
// killed with SIGKILL. After the restart every topic answered as created
// exists with all its partitions, each taking and returning a record;
// every topic the server lists is whole (no partition missing); every
// queue answered declare-ok exists and every queue answered delete-ok is
// gone.
func TestKill9DuringCreateTopicsAndDeclaresKeepsEveryAcknowledged(t *testing.T) {
	const perRequest, partitions = 10, 3
	b := startBroker(t)
	cl := b.client(t, kgo.RequestRetries(0))
	conn := b.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		topics   []string              // answered as created
		declared = map[string]string{} // live (declare-ok), deleting (delete unanswered) or deleted (delete-ok)
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	wg.Add(2)
	go func() { // CreateTopics, perRequest topics a request
		defer wg.Done()
		for r := 0; ; r++ {
			select {
			case <-stop:
				return
			default:
			}
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 30000
			for i := range perRequest {
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("crash-%d-%d", r, i), partitions, 1
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl)
			if err != nil {
				return // the server died under the request
			}
			mu.Lock()
			for _, rt := range resp.Topics {
				if rt.ErrorCode == 0 {
					topics = append(topics, rt.Topic)
				}
			}
			mu.Unlock()
		}
	}()
	go func() { // declare durable queues, delete every other one
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("crash-q-%d", i)
			if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
				return
			}
			mu.Lock()
			declared[name] = "live"
			if i%2 == 1 {
				declared[name] = "deleting" // either way after a kill
			}
			mu.Unlock()
			if i%2 == 1 {
				if _, err := ch.QueueDelete(name, false, false, false); err != nil {
					return
				}
				mu.Lock()
				declared[name] = "deleted"
				mu.Unlock()
			}
		}
	}()
	waitFor(t, 60*time.Second, "topics and queues acknowledged before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(topics) >= 5*perRequest && len(declared) >= 20
	})
	b.Kill()
	close(stop)
	wg.Wait()
	conn.Close()

	b.Restart()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d topics and %d queues acknowledged before the kill", len(topics), len(declared))

	// Every listed topic is whole; every acknowledged one is listed.
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t, 30*time.Second), b.client(t))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	for _, mt := range meta.Topics {
		if mt.IsInternal {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			t.Errorf("topic %s listed with %v", *mt.Topic, err)
		}
		listed[*mt.Topic] = len(mt.Partitions)
	}
	for name, n := range listed {
		if n != partitions {
			t.Errorf("topic %s has %d partitions after the restart, want %d", name, n, partitions)
		}
	}
	for _, name := range topics {
		if _, ok := listed[name]; !ok {
			t.Errorf("topic %s was answered as created but is gone after the restart", name)
		}
	}
	// Each partition of each acknowledged topic takes a record and
	// returns it.
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for _, name := range topics {
		for p := range int32(partitions) {
			recs = append(recs, &kgo.Record{Topic: name, Partition: p, Value: []byte(name)})
		}
	}
	if err := prod.ProduceSync(ctxT(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("producing to the acknowledged topics after the restart: %v", err)
	}
	for _, r := range recs {
		if r.Offset != 0 {
			t.Fatalf("%s-%d: the first record after the restart is at offset %d, want 0", r.Topic, r.Partition, r.Offset)
		}
	}
	if len(topics) > 0 {
		fetch := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topics[0]: {0: kgo.NewOffset().AtStart()},
		}))
		fs := fetch.PollFetches(ctxT(t, 30*time.Second))
		if err := fs.Err(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != topics[0] {
			t.Fatalf("fetching back from %s: %v, %d records", topics[0], err, fs.NumRecords())
		}
	}

	// Queues: declared ones exist, deleted ones are gone.
	conn = b.dial(t)
	for name, state := range declared {
		if state == "deleting" {
			continue
		}
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var ae *amqp.Error
		switch {
		case state == "live" && err != nil:
			t.Errorf("queue %s was answered declare-ok but is gone after the restart: %v", name, err)
		case state == "deleted" && !(errors.As(err, &ae) && ae.Code == amqp.NotFound):
			t.Errorf("queue %s was answered delete-ok but after the restart: %v", name, err)
		}
		if err == nil {
			ch.Close()
		}
	}
}
