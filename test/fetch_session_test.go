package test

import (
	"errors"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchWithSession sends a Fetch v11 for partition 0 of topic at offset
// with the given session id and epoch and returns the whole answer.
func fetchWithSession(t *testing.T, c *kgo.Client, topic string, offset int64, sessionID, epoch int32, maxWait time.Duration) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes, req.MaxBytes = 1, 50<<20
	req.SessionID, req.SessionEpoch = sessionID, epoch
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// The fetch session's epoch decides, as in Kafka (KIP-227): -1 is a
// sessionless full fetch whatever the session id (segmentio/kafka-go sends
// SessionID -1 with SessionEpoch -1), 0 opens a new session and is
// answered in full with its id, any other epoch continues a session and,
// for a session Sluice never gave, gets FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionlessMinusOne(t *testing.T) {
	b := startBroker(t)
	const topic = "sessionless"
	b.createTopic(t, topic, 1, nil)
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("one")}, &kgo.Record{Value: []byte("two")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := b.client(t, fetchByName())

	for _, tc := range []struct {
		name         string
		id, epoch    int32
		wantTopLevel error
		wantRecords  bool
		wantSession  bool
	}{
		{"sessionless -1/-1", -1, -1, nil, true, false},
		{"sessionless 0/-1", 0, -1, nil, true, false},
		{"closing a session 7/-1", 7, -1, nil, true, false},
		{"new session 0/0", 0, 0, nil, true, true},
		{"incremental 0/1", 0, 1, kerr.FetchSessionIDNotFound, false, false},
		{"incremental 42/3", 42, 3, kerr.FetchSessionIDNotFound, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := fetchWithSession(t, c, topic, 0, tc.id, tc.epoch, 100*time.Millisecond)
			if err := kerr.ErrorForCode(resp.ErrorCode); err != tc.wantTopLevel {
				t.Fatalf("top-level error %v, want %v", err, tc.wantTopLevel)
			}
			if (resp.SessionID != 0) != tc.wantSession {
				t.Errorf("SessionID %d, want a session: %v", resp.SessionID, tc.wantSession)
			}
			if !tc.wantRecords {
				if len(resp.Topics) != 0 {
					t.Fatalf("%d topics in an answer refusing the session", len(resp.Topics))
				}
				return
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("answer has %d topics, want the one asked for", len(resp.Topics))
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 2 || batchesIn(t, p.RecordBatches) == 0 {
				t.Fatalf("partition: %v, hw %d, %d bytes; want both records", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, len(p.RecordBatches))
			}
		})
	}

	// segmentio/kafka-go's Client.Fetch sends SessionID -1, SessionEpoch
	// -1; it failed with "topic not found" on the empty answer.
	kc := &segkafka.Client{Addr: segkafka.TCP(b.Kafka), Timeout: 20 * time.Second}
	resp, err := kc.Fetch(ctxT(t, 20*time.Second), &segkafka.FetchRequest{
		Topic: topic, Partition: 0, Offset: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: time.Second,
	})
	if err != nil {
		t.Fatalf("kafka-go Fetch: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("kafka-go Fetch: partition error %v", resp.Error)
	}
	var values []string
	for {
		r, err := resp.Records.ReadRecord()
		if err != nil {
			break
		}
		v := make([]byte, 8)
		n, _ := r.Value.Read(v)
		values = append(values, string(v[:n]))
	}
	if len(values) != 2 || values[0] != "one" || values[1] != "two" {
		t.Fatalf("kafka-go read %q, want [one two]", values)
	}

	// kafka-go's Reader (no group) fetches the same way.
	rd := segkafka.NewReader(segkafka.ReaderConfig{Brokers: []string{b.Kafka}, Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer rd.Close()
	for _, want := range []string{"one", "two"} {
		m, err := rd.ReadMessage(ctxT(t, 20*time.Second))
		if err != nil {
			t.Fatalf("kafka-go Reader: %v", err)
		}
		if string(m.Value) != want {
			t.Fatalf("kafka-go Reader read %q, want %q", m.Value, want)
		}
	}
}

// A partition error ends a fetch's long poll at once, as in Kafka: a
// fetch that may wait a minute is answered with the error as soon as it
// is found, whether the error is there at the start or appears during the
// wait.
func TestFetchErrorEndsLongPoll(t *testing.T) {
	b := startBroker(t)
	const topic = "poll-errors"
	b.createTopic(t, topic, 1, nil)
	c := b.client(t, fetchByName())
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The bound is generous next to a local answer and far below the wait
	// asked for: it tells "answered on the error" from "answered at the
	// end of MaxWait", nothing more.
	const maxWait, bound = 60 * time.Second, 20 * time.Second
	answered := func(what string, fetch func() int16, want error) {
		t.Helper()
		start := time.Now()
		code := fetch()
		if took := time.Since(start); took >= bound {
			t.Errorf("%s: answered after %v, not at once", what, took)
		}
		if err := kerr.ErrorForCode(code); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	answered("offset past the end", func() int16 {
		p, _ := fetchRaw(t, c, topic, 1000, maxWait, 1, 1<<20, 50<<20)
		return p.ErrorCode
	}, kerr.OffsetOutOfRange)
	answered("unknown topic", func() int16 {
		p, _ := fetchRaw(t, c, "no-such-topic", 0, maxWait, 1, 1<<20, 50<<20)
		return p.ErrorCode
	}, kerr.UnknownTopicOrPartition)

	// Two partitions in one request, one of them fine with nothing new
	// to read: the other's error still answers at once, and the fine
	// one is in the answer without error.
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes, req.MaxBytes, req.SessionEpoch = 1, 50<<20, -1
	for _, tp := range []struct {
		topic string
		part  int32
	}{{topic, 0}, {topic, 5}} {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = tp.part, 1, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	answered("a missing partition beside a waiting one", func() int16 {
		resp, err := req.RequestWith(ctxT(t, 90*time.Second), c)
		if err != nil {
			t.Fatal(err)
		}
		// As in Kafka, the answer lists partitions in request order,
		// those of one topic in a row under one topic entry.
		var parts []kmsg.FetchResponseTopicPartition
		for _, rt := range resp.Topics {
			parts = append(parts, rt.Partitions...)
		}
		if len(parts) != 2 || parts[0].Partition != 0 || parts[0].ErrorCode != 0 {
			t.Fatalf("answer %+v: want the waiting partition without error first", resp.Topics)
		}
		return parts[1].ErrorCode
	}, kerr.UnknownTopicOrPartition)

	// An error that appears during the wait ends it too: a fetch waiting
	// at the end of the topic is answered UNKNOWN_TOPIC_OR_PARTITION when
	// the topic is deleted. The deletion is sent once the fetch is on the
	// wire (a client hook says so); should it still overtake the fetch,
	// the fetch finds the error at the start, and the answer is as prompt.
	sent := make(chan struct{}, 1)
	waiter := b.client(t, kgo.WithHooks(fetchSentHook(sent)), fetchByName())
	done := make(chan int16, 1)
	go func() {
		p, _ := fetchRaw(t, waiter, topic, 1, maxWait, 1, 1<<20, 50<<20)
		done <- p.ErrorCode
	}()
	select {
	case <-sent:
	case <-time.After(bound):
		t.Fatal("the waiting fetch was never sent")
	}
	start := time.Now()
	if _, err := b.admin(t).DeleteTopics(ctxT(t, 10*time.Second), topic); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if err := kerr.ErrorForCode(code); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("fetch waiting on a deleted topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	case <-time.After(bound):
		t.Errorf("fetch waiting on a deleted topic not answered %v after the deletion", time.Since(start))
	}
}

// fetchSentHook signals sent when the client has written a Fetch request.
type fetchSentHook chan struct{}

func (h fetchSentHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		select {
		case h <- struct{}{}:
		default:
		}
	}
}
