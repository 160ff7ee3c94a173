package test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// throttleCounter is a franz-go hook counting the throttles brokers
// answer with.
type throttleCounter struct{ n atomic.Int64 }

func (h *throttleCounter) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// Client quotas through kadm: set, described (filters, strict, after a
// kill -9 and restart), refused for keys and entity types Sluice does not take; then a
// producer and a consumer held to a low byte rate: their responses carry
// throttle_time_ms and the bytes they move in a stretch stay near the
// quota (at most twice the rate plus the one-second burst).
func TestClientQuotas(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	ctx := ctxT(t, 60*time.Second)
	str := func(s string) *string { return &s }
	const rate = 100 << 10 // bytes a second
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: str("slow-producer")}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: str("slow-consumer")}}, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: rate}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 200}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: str("alice")}, {Type: "client-id"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1e6}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: str("10.0.0.1")}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: str("bob")}}, Ops: []kadm.AlterClientQuotaOp{{Key: "controller_mutation_rate", Value: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if wantErr := i >= 4; (r.Err != nil) != wantErr || (wantErr && r.Err != kerr.InvalidRequest) {
			t.Errorf("entry %d (%v): %v %q", i, r.Entity, r.Err, r.ErrMessage)
		}
	}

	describe := func(strict bool, comps ...kadm.DescribeClientQuotaComponent) kadm.DescribedClientQuotas {
		t.Helper()
		d, err := adm.DescribeClientQuotas(ctx, strict, comps)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	check := func() {
		t.Helper()
		if d := describe(false); len(d) != 4 {
			t.Errorf("every quota: %v", d)
		}
		d := describe(true, kadm.DescribeClientQuotaComponent{Type: "client-id", MatchName: str("slow-producer"), MatchType: 0})
		if len(d) != 1 || len(d[0].Values) != 1 || d[0].Values[0].Key != "producer_byte_rate" || d[0].Values[0].Value != rate {
			t.Errorf("client-id slow-producer: %v", d)
		}
		if d := describe(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 1}); len(d) != 1 || d[0].Values[0].Key != "request_percentage" {
			t.Errorf("the default user: %v", d)
		}
		if d := describe(false, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 2}); len(d) != 2 {
			t.Errorf("any user, not strict: %v", d)
		}
		if d := describe(true, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 2}); len(d) != 1 {
			t.Errorf("any user, strict: %v", d)
		}
	}
	check()
	b.Kill() // acknowledged, so durable: kill -9 loses none
	b.Restart()
	adm = b.admin(t)
	check()

	b.createTopic(t, "metered", 1, nil)
	t.Run("producer", func(t *testing.T) {
		hook := new(throttleCounter)
		cl := b.client(t, kgo.ClientID("slow-producer"), kgo.WithHooks(hook), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(32<<10))
		const total = 5 * rate
		val := make([]byte, 8<<10)
		start := time.Now()
		for sent := 0; sent < total; sent += len(val) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "metered", Value: val}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		// At most twice the rate after the first second's burst: never
		// faster than this, however fast the machine.
		if min := time.Duration(float64(total-rate) / (2 * rate) * float64(time.Second)); time.Since(start) < min {
			t.Errorf("%d bytes at a %d B/s quota took %v, under %v", total, rate, time.Since(start), min)
		}
		if hook.n.Load() == 0 {
			t.Error("no Produce answer carried throttle_time_ms")
		}
	})
	t.Run("consumer", func(t *testing.T) {
		hook := new(throttleCounter)
		cl := b.client(t, kgo.ClientID("slow-consumer"), kgo.WithHooks(hook), kgo.ConsumeTopics("metered"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(32<<10), kgo.FetchMaxPartitionBytes(32<<10))
		const total = 5 * rate
		start := time.Now()
		got := 0
		for got < total {
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			fs := cl.PollFetches(c)
			cancel()
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got += len(r.Value) })
		}
		if min := time.Duration(float64(total-rate) / (2 * rate) * float64(time.Second)); time.Since(start) < min {
			t.Errorf("%d bytes at a %d B/s quota fetched in %v, under %v", got, rate, time.Since(start), min)
		}
		if hook.n.Load() == 0 {
			t.Error("no Fetch answer carried throttle_time_ms")
		}
	})
}

// confluent-kafka (librdkafka) held to a producer_byte_rate quota: it is
// told to back off (throttle_cb) and its bytes take as long as the quota
// says (test/python/confluent_quota.py).
func TestPythonConfluentQuota(t *testing.T) {
	needPythonModule(t, "confluent_kafka")
	b := startBroker(t)
	b.createTopic(t, "py-metered", 1, nil)
	name := "py-slow"
	res, err := b.admin(t).AlterClientQuotas(ctxT(t, 10*time.Second), []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &name}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 100 * 1024}}},
	})
	if err != nil || res[0].Err != nil {
		t.Fatalf("setting the quota: %v %v", err, res)
	}
	runPythonScript(t, b, "confluent_quota.py", 100*time.Second)
}
