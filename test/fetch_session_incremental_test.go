package test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// sessionPart is one partition named in a session request.
type sessionPart struct {
	part   int32
	offset int64
}

// sessionFetch sends one Fetch of the given version in a session: the
// partitions of topic (named by id from v13) and those to forget.
func sessionFetch(t *testing.T, c *kgo.Client, version int16, topic string, id [16]byte, sessionID, epoch int32, parts []sessionPart, forget []int32, maxWait time.Duration) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes, req.MaxBytes = 1, 50<<20
	req.SessionID, req.SessionEpoch = sessionID, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.part, p.offset, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, id, forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// answered lists the partitions in a fetch answer as "p<n>:hw=<hw>:<batches>b",
// sorted, and checks each names the topic as the version says.
func answered(t *testing.T, resp *kmsg.FetchResponse, version int16, topic string, id [16]byte) []string {
	t.Helper()
	var got []string
	for _, rt := range resp.Topics {
		if version >= 13 && rt.TopicID != id || version < 13 && rt.Topic != topic {
			t.Fatalf("answer names topic %q / %x, want %q / %x", rt.Topic, rt.TopicID, topic, id)
		}
		for _, p := range rt.Partitions {
			s := fmt.Sprintf("p%d:hw=%d:%db", p.Partition, p.HighWatermark, batchesIn(t, p.RecordBatches))
			if p.ErrorCode != 0 {
				s += ":" + kerr.ErrorForCode(p.ErrorCode).Error()
			}
			got = append(got, s)
		}
	}
	sort.Strings(got)
	return got
}

func produceTo(t *testing.T, c *kgo.Client, topic string, part int32, n int) {
	t.Helper()
	for range n {
		if err := c.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: part, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// A fetch session, driven request by request (KIP-227): a full fetch with
// epoch 0 opens it and is answered in full; incremental fetches name only
// the partitions whose offsets moved and are answered with only the
// partitions that have records or new offsets; forgotten partitions leave
// the session; a wrong epoch or an unknown session is refused as Kafka
// refuses it. By topic name (v12) and by topic id (v13, v17).
func TestFetchSessionIncremental(t *testing.T) {
	b := startBroker(t)
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, version := range []int16{12, 13, 17} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(1, version)
			c := b.client(t, kgo.MaxVersions(vs))
			topic := fmt.Sprintf("session-v%d", version)
			b.createTopic(t, topic, 3, nil)
			details, err := b.admin(t).ListTopics(ctxT(t, 10*time.Second), topic)
			if err != nil {
				t.Fatal(err)
			}
			id := [16]byte(details[topic].ID)
			produceTo(t, prod, topic, 0, 2)
			produceTo(t, prod, topic, 1, 1)
			expect := func(step string, resp *kmsg.FetchResponse, sessionID int32, want ...string) {
				t.Helper()
				if resp.ErrorCode != 0 {
					t.Fatalf("%s: top-level %v", step, kerr.ErrorForCode(resp.ErrorCode))
				}
				if resp.SessionID != sessionID {
					t.Fatalf("%s: session %d, want %d", step, resp.SessionID, sessionID)
				}
				got := answered(t, resp, version, topic, id)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: answer %v, want %v", step, got, want)
				}
			}

			all := []sessionPart{{0, 0}, {1, 0}, {2, 0}}
			resp := sessionFetch(t, c, version, topic, id, 0, 0, all, nil, 0)
			sid := resp.SessionID
			if sid == 0 {
				t.Fatal("a full fetch with epoch 0 opened no session")
			}
			expect("full", resp, sid, "p0:hw=2:2b", "p1:hw=1:1b", "p2:hw=0:0b")

			// The consumer moves on past what it read: nothing new anywhere.
			resp = sessionFetch(t, c, version, topic, id, sid, 1, []sessionPart{{0, 2}, {1, 1}}, nil, 50*time.Millisecond)
			expect("nothing new", resp, sid)

			// New data in partition 2 only: the answer holds it alone,
			// though the request names no partition.
			produceTo(t, prod, topic, 2, 1)
			resp = sessionFetch(t, c, version, topic, id, sid, 2, nil, nil, 5*time.Second)
			expect("partition 2 has data", resp, sid, "p2:hw=1:1b")

			// Forget partition 0; new data there is no longer answered,
			// new data in partition 1 is.
			produceTo(t, prod, topic, 0, 1)
			resp = sessionFetch(t, c, version, topic, id, sid, 3, []sessionPart{{2, 1}}, []int32{0}, 50*time.Millisecond)
			expect("partition 0 forgotten", resp, sid)
			produceTo(t, prod, topic, 1, 1)
			resp = sessionFetch(t, c, version, topic, id, sid, 4, nil, nil, 5*time.Second)
			expect("partition 1 has data", resp, sid, "p1:hw=2:1b")

			// Partition 0 back in the session, at its old offset.
			resp = sessionFetch(t, c, version, topic, id, sid, 5, []sessionPart{{0, 2}, {1, 2}}, nil, 5*time.Second)
			expect("partition 0 again", resp, sid, "p0:hw=3:1b")

			// Refusals: top-level error, session 0, no partitions.
			for _, tc := range []struct {
				name      string
				id, epoch int32
				want      error
			}{
				{"replayed epoch", sid, 5, kerr.InvalidFetchSessionEpoch},
				{"epoch ahead", sid, 9, kerr.InvalidFetchSessionEpoch},
				{"unknown session", sid + 1, 1, kerr.FetchSessionIDNotFound},
			} {
				resp := sessionFetch(t, c, version, topic, id, tc.id, tc.epoch, nil, nil, 0)
				if err := kerr.ErrorForCode(resp.ErrorCode); err != tc.want || resp.SessionID != 0 || len(resp.Topics) != 0 {
					t.Errorf("%s: %v, session %d, %d topics; want %v, 0, none", tc.name, err, resp.SessionID, len(resp.Topics), tc.want)
				}
			}
			// The session survives refusals: epoch 6 is next.
			resp = sessionFetch(t, c, version, topic, id, sid, 6, []sessionPart{{0, 3}}, nil, 50*time.Millisecond)
			expect("after refusals", resp, sid)

			// Epoch -1 closes it.
			sessionFetch(t, c, version, topic, id, sid, -1, all, nil, 0)
			resp = sessionFetch(t, c, version, topic, id, sid, 7, nil, nil, 0)
			if err := kerr.ErrorForCode(resp.ErrorCode); err != kerr.FetchSessionIDNotFound {
				t.Errorf("closed session: %v, want FETCH_SESSION_ID_NOT_FOUND", err)
			}
		})
	}

	t.Run("unknown topic id", func(t *testing.T) {
		c := b.client(t)
		resp := sessionFetch(t, c, 13, "", [16]byte{1, 2, 3}, 0, -1, []sessionPart{{0, 0}}, nil, 0)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("answer %+v", resp.Topics)
		}
		if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != kerr.UnknownTopicID {
			t.Errorf("unknown topic id: %v, want UNKNOWN_TOPIC_ID", err)
		}
	})
}

// The session cache is bounded (fetch_session_cache_slots): with one slot,
// a second consumer's full fetch is answered in full without a session
// while the first session lives on; with none, no fetch gets a session.
func TestFetchSessionCacheFull(t *testing.T) {
	for _, slots := range []int{1, 0} {
		t.Run(fmt.Sprintf("slots=%d", slots), func(t *testing.T) {
			b := startBroker(t, fmt.Sprintf("--fetch-session-cache-slots=%d", slots))
			const topic = "slots"
			b.createTopic(t, topic, 1, nil)
			produceTo(t, b.client(t), topic, 0, 1)
			c1, c2 := b.client(t, fetchByName()), b.client(t, fetchByName())
			first := sessionFetch(t, c1, 12, topic, [16]byte{}, 0, 0, []sessionPart{{0, 0}}, nil, 0)
			second := sessionFetch(t, c2, 12, topic, [16]byte{}, 0, 0, []sessionPart{{0, 0}}, nil, 0)
			for i, resp := range []*kmsg.FetchResponse{first, second} {
				if got := answered(t, resp, 12, topic, [16]byte{}); fmt.Sprint(got) != "[p0:hw=1:1b]" {
					t.Errorf("fetch %d answered %v, want the record", i+1, got)
				}
			}
			if (first.SessionID != 0) != (slots == 1) || second.SessionID != 0 {
				t.Fatalf("sessions %d and %d with %d slots", first.SessionID, second.SessionID, slots)
			}
			if slots == 1 {
				resp := sessionFetch(t, c1, 12, topic, [16]byte{}, first.SessionID, 1, nil, nil, 0)
				if resp.ErrorCode != 0 || resp.SessionID != first.SessionID {
					t.Errorf("first session after the cache filled: %v, session %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
				}
			}
		})
	}
}

// fetchBytesHook records the size of every Fetch request a client writes.
type fetchBytesHook struct {
	mu    sync.Mutex
	sizes []int
}

func (h *fetchBytesHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		h.mu.Lock()
		h.sizes = append(h.sizes, n)
		h.mu.Unlock()
	}
}

// franz-go opens a session and fetches incrementally when the broker
// answers a session id: a consumer of 32 partitions, where records arrive
// in a few of them only, reads every record once and in order per
// partition, and its fetches after the first are smaller than a fetch
// naming all 32 partitions.
func TestFetchSessionFranzGo(t *testing.T) {
	b := startBroker(t)
	const topic, parts = "session-kgo", 32
	b.createTopic(t, topic, parts, nil)
	hook := &fetchBytesHook{}
	cons := b.client(t, kgo.ConsumeTopics(topic), kgo.WithHooks(hook), kgo.FetchMaxWait(200*time.Millisecond))
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))

	want := map[int32][]string{}
	got := map[int32][]string{}
	n := 0
	for round := range 5 {
		for _, p := range []int32{3, int32(7 + round), 30} {
			v := fmt.Sprintf("r%d-p%d", round, p)
			if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want[p] = append(want[p], v)
			n++
		}
		for count := 0; count < 3; {
			fs := cons.PollFetches(ctxT(t, 20*time.Second))
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				got[r.Partition] = append(got[r.Partition], string(r.Value))
				count++
			})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("consumed %v\nwant %v", got, want)
	}
	hook.mu.Lock()
	sizes := append([]int(nil), hook.sizes...)
	hook.mu.Unlock()
	if len(sizes) < 2 {
		t.Fatalf("%d fetches", len(sizes))
	}
	smallest := sizes[0]
	for _, s := range sizes[1:] {
		smallest = min(smallest, s)
	}
	// A full fetch names 32 partitions (at least 4 bytes each); an
	// incremental one with nothing changed names none.
	if smallest >= sizes[0] || sizes[0]-smallest < 4*parts {
		t.Fatalf("fetch request sizes %v: no incremental fetch", sizes)
	}
}

// librdkafka (kcat) consumes from a broker that advertises Fetch up to
// v17 and answers sessions: it picks its own version and reads every
// record of a topic where only some partitions have data, in order per
// partition.
func TestFetchKcatSparsePartitions(t *testing.T) {
	needTool(t, kcatPath)
	b := startBroker(t)
	const topic = "kcat-sparse"
	b.createTopic(t, topic, 6, nil)
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := map[string][]string{}
	for i := range 20 {
		p := int32(1 + 3*(i%2)) // partitions 1 and 4
		v := fmt.Sprintf("p%d-%02d", p, i)
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprint(p)] = append(want[fmt.Sprint(p)], v)
	}
	out := runTool(t, 60*time.Second, "", kcatPath, "-C", "-b", b.Kafka, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p:%s\n").must(t, b, "kcat consume")
	got := map[string][]string{}
	for _, line := range splitLines(out.Stdout) {
		p, v, _ := strings.Cut(line, ":")
		got[p] = append(got[p], v)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kcat read %v\nwant %v", got, want)
	}
}

// Sessions live in memory only: a franz-go consumer in a session goes on
// across a broker restart (kill -9), starting a new session, and reads
// every record exactly once.
func TestFetchSessionAcrossRestart(t *testing.T) {
	b := startBroker(t)
	const topic, parts = "session-restart", 4
	b.createTopic(t, topic, parts, nil)
	cons := b.client(t, kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200*time.Millisecond))
	seen := map[string]int{}
	consume := func(n int) {
		t.Helper()
		ctx := ctxT(t, 60*time.Second)
		for total := 0; total < n; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", total, n)
			}
			fs.EachRecord(func(r *kgo.Record) {
				seen[string(r.Value)]++
				total++
			})
		}
	}
	produce := func(from, to int) {
		t.Helper()
		prod := b.client(t, kgo.DefaultProduceTopic(topic))
		defer prod.Close()
		for i := from; i < to; i++ {
			if err := prod.ProduceSync(ctxT(t, 30*time.Second), &kgo.Record{Value: fmt.Appendf(nil, "r%03d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 100)
	consume(100)
	b.Kill()
	b.Restart()
	produce(100, 200)
	consume(100)
	// Nothing more arrives: a short poll finds nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	if len(seen) != 200 {
		t.Fatalf("read %d distinct records, want 200", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s read %d times", v, n)
		}
	}
}
