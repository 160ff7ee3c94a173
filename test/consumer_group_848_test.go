package test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The consumer group protocol of KIP-848, driven by franz-go with
// kgo.ServerSideBalancer(): the broker assigns partitions, members revoke
// before others are given their partitions.

// consumed records what consumers processed: a record counts once its
// consumer's commit of it succeeded (a consumer killed between processing
// and committing has its records delivered again, which is not a duplicate
// of the group's work). A duplicate then means two members owned a
// partition at once, or a commit went backwards.
type consumed struct {
	mu     sync.Mutex
	counts map[string]int
	by     map[string]string // value -> consumer that first recorded it
	dups   []string
}

func newConsumed() *consumed {
	return &consumed{counts: map[string]int{}, by: map[string]string{}}
}

func (c *consumed) add(who string, rs []*kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rs {
		v := string(r.Value)
		c.counts[v]++
		if c.counts[v] > 1 {
			c.dups = append(c.dups, fmt.Sprintf("%s (p%d@%d) by %s, first by %s", v, r.Partition, r.Offset, who, c.by[v]))
		} else {
			c.by[v] = who
		}
	}
}

func (c *consumed) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts)
}

// cuttable dials the broker through connections it can cut all at once,
// later dials failing: a client process killed without leaving its group.
type cuttable struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cuttable) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("cut")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cuttable) Cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

// member848 is one consuming member: it polls, commits what it polled and
// only then records it, with rebalances blocked while it does.
type member848 struct {
	name     string
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	dialer   *cuttable
	killed   atomic.Bool
	stopping atomic.Bool
	// lenient: a failed commit does not fail the test (across a broker
	// restart members must rejoin first).
	lenient atomic.Bool
}

func startMember848(t *testing.T, b *broker, name, group string, out *consumed, extra ...kgo.Opt) *member848 {
	t.Helper()
	m := &member848{name: name, done: make(chan struct{}), dialer: &cuttable{}}
	opts := append([]kgo.Opt{
		kgo.Dialer(m.dialer.dial),
		kgo.ConsumerGroup(group),
		kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ClientID(name),
	}, extra...)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if m.killed.Load() {
				m.dialer.Cut()
				return
			}
			if m.stopping.Load() {
				return
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := cl.PollFetches(pctx)
			pcancel()
			rs := fs.Records()
			if m.killed.Load() || m.stopping.Load() {
				rs = nil // stops before committing: the records go to others
			}
			if len(rs) > 0 {
				cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
				err := cl.CommitRecords(cctx, rs...)
				ccancel()
				if err == nil {
					out.add(name, rs)
				} else if ctx.Err() == nil && !m.lenient.Load() {
					t.Errorf("%s: commit of %d records: %v", name, len(rs), err)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

// stop ends polling and closes the client, which leaves the group.
func (m *member848) stop() {
	m.stopping.Store(true) // not mid-commit: a commit must not be cut short unseen
	<-m.done
	m.cancel()
	m.cl.Close()
}

// kill cuts the member off the broker without leaving and stops it.
func (m *member848) kill() {
	m.killed.Store(true)
	<-m.done
	m.cancel()
	go m.cl.Close() // its leave cannot reach the broker
}

func describe848(t *testing.T, adm *kadm.Client, group string) kadm.DescribedConsumerGroup {
	t.Helper()
	ds, err := adm.DescribeConsumerGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		return kadm.DescribedConsumerGroup{}
	}
	return ds[group]
}

// settled reports whether the group is Stable with want members whose
// assignments cover the topic's partitions exactly once.
func settled(d kadm.DescribedConsumerGroup, topic string, partitions, want int) bool {
	if d.Err != nil || d.State != "Stable" || len(d.Members) != want {
		return false
	}
	seen := map[int32]bool{}
	for _, m := range d.Members {
		for p := range m.Assignment[topic] {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == partitions
}

// TestConsumerGroupProtocolHandoverExactlyOnce: franz-go members of a
// KIP-848 group join, leave cleanly and are killed (expiring by session
// timeout) while records are produced; every record is consumed and
// committed once, none twice.
func TestConsumerGroupProtocolHandoverExactlyOnce(t *testing.T) {
	b := startBroker(t, "--consumer-session-timeout=3s", "--consumer-heartbeat-interval=200ms")
	const topic, group, partitions, total = "k848", "g848", 12, 6000
	b.createTopic(t, topic, partitions, nil)
	adm := b.admin(t)
	out := newConsumed()

	prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produced := make(chan error, 1)
	produceUpTo := make(chan int, 8)
	go func() {
		next := 0
		for upTo := range produceUpTo {
			for ; next < upTo; next++ {
				if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(next))}).FirstErr(); err != nil {
					produced <- err
					return
				}
			}
		}
		produced <- nil
	}()
	waitConsumed := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for out.n() < n {
			if time.Now().After(deadline) {
				var missing []int
				out.mu.Lock()
				for i := range total {
					if out.counts[strconv.Itoa(i)] == 0 && len(missing) < 10 {
						missing = append(missing, i)
					}
				}
				out.mu.Unlock()
				offs, _ := adm.FetchOffsets(context.Background(), group)
				ends, _ := adm.ListEndOffsets(context.Background(), topic)
				t.Fatalf("timed out waiting for %s: %d consumed, missing %v; committed %v; ends %v; group %+v", what, out.n(), missing, offs, ends, describe848(t, adm, group))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	c1 := startMember848(t, b, "c1", group, out, kgo.ConsumeTopics(topic))
	c2 := startMember848(t, b, "c2", group, out, kgo.ConsumeTopics(topic))
	waitFor(t, 30*time.Second, "two members sharing 12 partitions", func() bool {
		return settled(describe848(t, adm, group), topic, partitions, 2)
	})
	produceUpTo <- 1500
	waitConsumed(1000, "1000 records consumed by two members")

	c3 := startMember848(t, b, "c3", group, out, kgo.ConsumeTopics(topic))
	produceUpTo <- 3000
	waitFor(t, 30*time.Second, "three members sharing 12 partitions", func() bool {
		return settled(describe848(t, adm, group), topic, partitions, 3)
	})
	d := describe848(t, adm, group)
	if d.AssignorName != "uniform" || d.Epoch < 3 {
		t.Fatalf("group described with assignor %q at epoch %d", d.AssignorName, d.Epoch)
	}
	for _, m := range d.Members {
		if n := len(m.Assignment[topic]); n != 4 {
			t.Fatalf("member %s has %d partitions, want 4 of 12 over 3 (uniform)", m.ClientID, n)
		}
	}
	waitConsumed(2000, "2000 records consumed")

	c1.stop() // leaves with epoch -1
	produceUpTo <- 4500
	waitFor(t, 30*time.Second, "two members after c1 left", func() bool {
		return settled(describe848(t, adm, group), topic, partitions, 2)
	})
	waitConsumed(3500, "3500 records consumed")

	c4 := startMember848(t, b, "c4", group, out, kgo.ConsumeTopics(topic))
	waitFor(t, 30*time.Second, "c4 holding partitions", func() bool {
		d := describe848(t, adm, group)
		for _, m := range d.Members {
			if m.ClientID == "c4" && len(m.Assignment[topic]) > 0 {
				return settled(d, topic, partitions, 3)
			}
		}
		return false
	})
	c4.kill() // no leave: its session expires
	produceUpTo <- total
	close(produceUpTo)
	waitFor(t, 30*time.Second, "c4 expired and its partitions reassigned", func() bool {
		return settled(describe848(t, adm, group), topic, partitions, 2)
	})
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitConsumed(total, "every record consumed")
	c2.stop()
	c3.stop()

	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.dups) > 0 {
		t.Fatalf("%d records consumed twice, e.g. %v", len(out.dups), out.dups[:min(5, len(out.dups))])
	}
	for i := range total {
		if out.counts[strconv.Itoa(i)] != 1 {
			t.Fatalf("record %d consumed %d times", i, out.counts[strconv.Itoa(i)])
		}
	}
	if len(out.counts) != total {
		t.Fatalf("%d distinct records consumed, %d produced", len(out.counts), total)
	}

	// The group, empty now, is listed as a consumer group and keeps its offsets.
	listed, err := adm.ListGroupsByType(ctxT(t, 10*time.Second), []string{"consumer"})
	if err != nil || listed[group].State != "Empty" {
		t.Fatalf("ListGroups(consumer): %+v %v", listed, err)
	}
	if classic, _ := adm.ListGroupsByType(ctxT(t, 10*time.Second), []string{"classic"}); len(classic[group].Group) != 0 {
		t.Fatalf("consumer group listed as classic: %+v", classic)
	}
	offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != total {
		t.Fatalf("committed offsets sum to %d, want %d", sum, total)
	}
}

// TestConsumerGroupProtocolRangeAssignorAndMembersVisible: a member asking
// for the range assignor gets it, and the group, its members and their
// assignment are visible through kadm while it runs; the management API
// lists it too.
func TestConsumerGroupProtocolRangeAssignorAndMembersVisible(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	const topic, group = "k848-range", "g848-range"
	b.createTopic(t, topic, 5, nil)
	adm := b.admin(t)
	out := newConsumed()
	ms := []*member848{
		startMember848(t, b, "r1", group, out, kgo.Balancers(kgo.RangeBalancer()), kgo.ConsumeTopics(topic)),
		startMember848(t, b, "r2", group, out, kgo.Balancers(kgo.RangeBalancer()), kgo.ConsumeTopics(topic)),
	}
	var d kadm.DescribedConsumerGroup
	waitFor(t, 30*time.Second, "two members sharing 5 partitions", func() bool {
		d = describe848(t, adm, group)
		return settled(d, topic, 5, 2)
	})
	if d.AssignorName != "range" {
		t.Fatalf("assignor %q, want range", d.AssignorName)
	}
	sizes := map[int]bool{}
	for _, m := range d.Members {
		ps := slices.Sorted(maps.Keys(m.Assignment[topic]))
		sizes[len(ps)] = true
		if len(m.SubscribedTopics) != 1 || m.SubscribedTopics[0] != topic || m.MemberEpoch != d.Epoch {
			t.Fatalf("member %+v", m)
		}
		for i := 1; i < len(ps); i++ {
			if ps[i] != ps[i-1]+1 {
				t.Fatalf("range assignment not contiguous: %v", ps)
			}
		}
	}
	if !sizes[2] || !sizes[3] {
		t.Fatalf("range over 5 partitions and 2 members gave sizes %v", sizes)
	}
	// The classic DescribeGroups answers GROUP_ID_NOT_FOUND, as Kafka 4 does.
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), b.client(t))
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("DescribeGroups of a consumer group: %+v %v", resp, err)
	}
	g := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/kafka/groups/"+group, nil, 200))
	if g["type"] != "consumer" || g["state"] != "Stable" || g["members"] != float64(2) {
		t.Fatalf("management API group: %v", g)
	}
	assignedRows := 0
	for _, row := range g["offsets"].([]any) {
		if _, ok := row.(map[string]any)["member_id"]; ok {
			assignedRows++
		}
	}
	if assignedRows != 5 {
		t.Fatalf("management API shows %d of 5 partitions assigned: %v", assignedRows, g["offsets"])
	}
	// Offsets of a topic the members subscribe to cannot be deleted.
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = group
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = topic
	dp := kmsg.NewOffsetDeleteRequestTopicPartition()
	dt.Partitions = append(dt.Partitions, dp)
	del.Topics = append(del.Topics, dt)
	dr, err := del.RequestWith(ctxT(t, 10*time.Second), b.client(t))
	if err != nil || dr.ErrorCode != 0 || dr.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("OffsetDelete of a subscribed topic: %+v %v", dr, err)
	}
	cli := mustCLI(t, b, "", "group", "describe", group)
	for _, want := range []string{"consumer (KIP-848, assignor range", "r1", "r2", topic} {
		if !strings.Contains(cli, want) {
			t.Fatalf("sluice group describe lacks %q:\n%s", want, cli)
		}
	}
	for _, m := range ms {
		m.stop()
	}
}

// TestConsumerGroupProtocolAndClassicShareNoGroupID: one group id is either
// a classic group or a consumer group. A classic JoinGroup to a live
// consumer group gets INCONSISTENT_GROUP_PROTOCOL; a ConsumerGroupHeartbeat
// to a live classic group gets GROUP_ID_NOT_FOUND; an emptied group takes
// the other protocol.
func TestConsumerGroupProtocolAndClassicShareNoGroupID(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	const topic = "k848-mixed"
	b.createTopic(t, topic, 2, nil)
	adm := b.admin(t)
	out := newConsumed()
	raw := b.client(t)

	m := startMember848(t, b, "new", "mixed", out, kgo.ConsumeTopics(topic))
	waitFor(t, 30*time.Second, "the consumer group member assigned", func() bool {
		return settled(describe848(t, adm, "mixed"), topic, 2, 1)
	})
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "mixed", "consumer", 10000, 10000
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name, proto.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	join.Protocols = append(join.Protocols, proto)
	jr, err := join.RequestWith(ctxT(t, 10*time.Second), raw)
	if err != nil || jr.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join to a live consumer group: %+v %v", jr, err)
	}

	// A classic consumer in another group; a consumer-protocol heartbeat to it.
	cc := b.client(t, kgo.ConsumerGroup("classic"), kgo.ConsumeTopics(topic))
	waitFor(t, 30*time.Second, "the classic group stable", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		cc.PollFetches(ctx)
		cancel()
		gs, err := adm.DescribeGroups(context.Background(), "classic")
		return err == nil && gs["classic"].State == "Stable"
	})
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis, hb.SubscribedTopicNames = "classic", "m-x", 10000, []string{topic}
	hr, err := hb.RequestWith(ctxT(t, 10*time.Second), raw)
	if err != nil || hr.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("consumer heartbeat to a live classic group: %+v %v", hr, err)
	}
	// An unknown assignor is refused.
	hb.Group, hb.ServerAssignor = "other", kmsg.StringPtr("sticky")
	if hr, err = hb.RequestWith(ctxT(t, 10*time.Second), raw); err != nil || hr.ErrorCode != kerr.UnsupportedAssignor.Code {
		t.Fatalf("unknown assignor: %+v %v", hr, err)
	}

	// Once the consumer group is empty, a classic member takes the id.
	m.stop()
	waitFor(t, 10*time.Second, "the consumer group empty", func() bool {
		return describe848(t, adm, "mixed").State == "Empty"
	})
	join.MemberID = ""
	jr, err = join.RequestWith(ctxT(t, 10*time.Second), raw)
	if err != nil || (jr.ErrorCode != 0 && jr.ErrorCode != kerr.MemberIDRequired.Code) {
		t.Fatalf("classic join to an empty consumer group: %+v %v", jr, err)
	}
}

// TestConsumerGroupProtocolSurvivesRestart: membership is not kept across a
// broker restart, committed offsets are; members rejoin (their heartbeats
// answered UNKNOWN_MEMBER_ID) and carry on from the committed offsets,
// nothing lost or consumed twice.
func TestConsumerGroupProtocolSurvivesRestart(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	const topic, group, total = "k848-restart", "g848-restart", 2000
	b.createTopic(t, topic, 4, nil)
	adm := b.admin(t)
	out := newConsumed()
	prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := prod.ProduceSync(ctxT(t, 30*time.Second), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, total/2)
	m1 := startMember848(t, b, "s1", group, out, kgo.ConsumeTopics(topic))
	m2 := startMember848(t, b, "s2", group, out, kgo.ConsumeTopics(topic))
	m1.lenient.Store(true)
	m2.lenient.Store(true)
	waitFor(t, 60*time.Second, "the first half consumed", func() bool { return out.n() == total/2 })
	b.Stop()
	b.Restart()
	produce(total/2, total)
	waitFor(t, 60*time.Second, "every record consumed after the restart", func() bool { return out.n() == total })
	waitFor(t, 30*time.Second, "both members back in the group", func() bool {
		return settled(describe848(t, adm, group), topic, 4, 2)
	})
	m1.stop()
	m2.stop()
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.dups) > 0 {
		t.Fatalf("%d records consumed twice, e.g. %v", len(out.dups), out.dups[:min(5, len(out.dups))])
	}
}

// TestConsumerGroupProtocolTransactionalPipeline: two consume-transform-
// produce sessions (kgo.GroupTransactSession) in a KIP-848 group, the
// second joining while the first runs: their transactional offset commits
// carry member epochs, and the output read with read_committed holds every
// input record exactly once across the handover.
func TestConsumerGroupProtocolTransactionalPipeline(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	const in, outTopic, n = "k848-txn-in", "k848-txn-out", 1200
	b.createTopic(t, in, 6, nil)
	b.createTopic(t, outTopic, 3, nil)
	src := b.client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for _, v := range values("v", n) {
		if err := src.ProduceSync(ctxT(t, 30*time.Second), &kgo.Record{Topic: in, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	gate := make(chan struct{}) // a waits here after its first quarter, until b is in
	var done [2]atomic.Int64
	run := func(name string, who int) {
		defer wg.Done()
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(b.Kafka), kgo.TransactionalID(name), kgo.ConsumerGroup("k848-txn"),
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
			kgo.FetchMaxPartitionBytes(1000), // small transactions
		)
		if err != nil {
			t.Error(err)
			return
		}
		defer sess.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := sess.PollFetches(ctx)
			cancel()
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Errorf("%s: begin: %v", name, err)
				return
			}
			ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
			for _, r := range recs {
				sess.Produce(ctx, &kgo.Record{Topic: outTopic, Value: r.Value}, nil)
			}
			committed, err := sess.End(ctx, kgo.TryCommit) // a failure aborts; the records come again
			cancel()
			if committed && err == nil {
				if done[who].Add(int64(len(recs))) >= n/4 && who == 0 {
					select {
					case <-gate:
					case <-stop:
						return
					}
				}
			}
		}
	}
	wg.Add(1)
	go run("k848-txn-a", 0)
	watch := b.client(t, kgo.ConsumeTopics(outTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]bool{}
	started := false
	ctx := ctxT(t, 2*time.Minute)
	for len(seen) < n {
		fs := watch.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("output has %d of %d records", len(seen), n)
		}
		for _, r := range fs.Records() {
			seen[string(r.Value)] = true
		}
		if !started && len(seen) >= n/4 {
			started = true
			wg.Add(1)
			go run("k848-txn-b", 1)
			adm := b.admin(t)
			waitFor(t, 30*time.Second, "b in the group with partitions", func() bool {
				return settled(describe848(t, adm, "k848-txn"), in, 6, 2)
			})
			close(gate)
		}
	}
	close(stop)
	wg.Wait()
	if got, want := readAll(t, b, outTopic, 3, true), sortedJoin(values("v", n)); !equalStrings(got, want) {
		t.Fatalf("read_committed output: %d records for %d inputs", len(got), n)
	}
	if done[1].Load() == 0 {
		t.Fatalf("the second session committed nothing (first: %d)", done[0].Load())
	}
}

// TestConsumerGroupProtocolRegexFollowsTopics: a member subscribed by regex
// (franz-go kgo.ConsumeRegex sends SubscribedTopicRegex, RE2 matched by the
// broker) is assigned a matching topic created while the group runs, and
// its partitions added later, and consumes their records.
func TestConsumerGroupProtocolRegexFollowsTopics(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	adm := b.admin(t)
	b.createTopic(t, "re-a", 2, nil)
	b.createTopic(t, "other", 1, nil)
	out := newConsumed()
	m := startMember848(t, b, "rx", "g848-re", out, kgo.ConsumeRegex(), kgo.ConsumeTopics("re-.*"),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	defer m.stop()
	assigned := func() map[string]int {
		got := map[string]int{}
		for _, mm := range describe848(t, adm, "g848-re").Members {
			for tp, ps := range mm.Assignment {
				got[tp] = len(ps)
			}
		}
		return got
	}
	waitFor(t, 30*time.Second, "re-a assigned", func() bool { return assigned()["re-a"] == 2 })
	b.createTopic(t, "re-b", 1, nil)
	waitFor(t, 30*time.Second, "re-b assigned once created", func() bool { return assigned()["re-b"] == 1 })
	if _, err := adm.CreatePartitions(ctxT(t, 10*time.Second), 2, "re-b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "re-b's new partitions assigned", func() bool { return assigned()["re-b"] == 3 })
	if n := assigned()["other"]; n != 0 {
		t.Fatalf("a topic the regex does not match was assigned (%d partitions)", n)
	}
	prod := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i, tp := range []struct {
		topic string
		part  int32
	}{{"re-a", 1}, {"re-b", 2}, {"other", 0}} {
		r := &kgo.Record{Topic: tp.topic, Partition: tp.part, Value: []byte(strconv.Itoa(i))}
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "records of re-a and re-b consumed", func() bool { return out.n() == 2 })
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.counts["0"] != 1 || out.counts["1"] != 1 || out.counts["2"] != 0 {
		t.Fatalf("consumed %v", out.counts)
	}
}

// TestConsumerGroupProtocolStaticMemberRestart: a static KIP-848 member
// (kgo.InstanceID) that closes leaves with epoch -2, keeping its
// partitions; its next incarnation takes them back at the same group
// epoch, without a rebalance of the other member.
func TestConsumerGroupProtocolStaticMemberRestart(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	const topic, group = "k848-static", "g848-static"
	b.createTopic(t, topic, 4, nil)
	adm := b.admin(t)
	out := newConsumed()
	s1 := startMember848(t, b, "s1", group, out, kgo.ConsumeTopics(topic), kgo.InstanceID("inst-1"))
	other := startMember848(t, b, "o", group, out, kgo.ConsumeTopics(topic))
	defer other.stop()
	var before kadm.DescribedConsumerGroup
	waitFor(t, 30*time.Second, "two members sharing 4 partitions", func() bool {
		before = describe848(t, adm, group)
		return settled(before, topic, 4, 2)
	})
	mine := func(d kadm.DescribedConsumerGroup, client string) []int32 {
		for _, m := range d.Members {
			if m.ClientID == client {
				return slices.Sorted(maps.Keys(m.Assignment[topic]))
			}
		}
		return nil
	}
	was := mine(before, "s1")
	var oldID string
	for _, m := range before.Members {
		if m.ClientID == "s1" {
			oldID = m.MemberID
		}
	}
	s1.stop() // leaves with -2
	d := describe848(t, adm, group)
	if len(d.Members) != 2 || !slices.Equal(mine(d, "s1"), was) || d.Epoch != before.Epoch {
		t.Fatalf("after the static member's leave: %+v (before: epoch %d, s1 had %v)", d, before.Epoch, was)
	}
	s2 := startMember848(t, b, "s1", group, out, kgo.ConsumeTopics(topic), kgo.InstanceID("inst-1"))
	defer s2.stop()
	waitFor(t, 30*time.Second, "the new incarnation holding the old partitions", func() bool {
		d = describe848(t, adm, group)
		for _, m := range d.Members {
			if m.ClientID == "s1" && m.MemberID != oldID && settled(d, topic, 4, 2) {
				return slices.Equal(mine(d, "s1"), was)
			}
		}
		return false
	})
	if d.Epoch != before.Epoch {
		t.Fatalf("the static restart moved the group epoch from %d to %d", before.Epoch, d.Epoch)
	}
}

// TestConsumerGroupProtocolCommitMarksOnRevoke: franz-go's usual pattern
// for no duplicates across rebalances (AutoCommitMarks, records marked
// once processed, marked offsets committed in OnPartitionsRevoked, polls
// blocking rebalances) in a KIP-848 group whose members join and leave
// cleanly while records arrive: every record is processed exactly once.
func TestConsumerGroupProtocolCommitMarksOnRevoke(t *testing.T) {
	b := startBroker(t, "--consumer-heartbeat-interval=200ms")
	const topic, group, partitions, total = "k848-marks", "g848-marks", 12, 4000
	b.createTopic(t, topic, partitions, nil)
	adm := b.admin(t)
	out := newConsumed()
	type marker struct {
		cl       *kgo.Client
		stopping atomic.Bool
		done     chan struct{}
	}
	start := func(name string) *marker {
		m := &marker{done: make(chan struct{})}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka), kgo.ClientID(name),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.AutoCommitMarks(), kgo.AutoCommitInterval(300*time.Millisecond), kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
				if err := cl.CommitMarkedOffsets(ctx); err != nil {
					t.Errorf("%s: commit on revoke: %v", name, err)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		m.cl = cl
		go func() {
			defer close(m.done)
			for !m.stopping.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				fs := cl.PollFetches(ctx)
				cancel()
				rs := fs.Records()
				out.add(name, rs) // processed
				cl.MarkCommitRecords(rs...)
				cl.AllowRebalance()
			}
		}()
		return m
	}
	stop := func(m *marker) {
		m.stopping.Store(true)
		<-m.done
		m.cl.Close() // revokes everything (committing the marks) and leaves
	}
	prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			prod.Produce(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := prod.Flush(ctxT(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	consumedAtLeast := func(n int) {
		waitFor(t, 60*time.Second, fmt.Sprintf("%d records processed", n), func() bool { return out.n() >= n })
	}
	m1, m2 := start("k1"), start("k2")
	produce(0, 1000)
	consumedAtLeast(500)
	m3 := start("k3")
	produce(1000, 2000)
	waitFor(t, 30*time.Second, "three members", func() bool {
		return settled(describe848(t, adm, group), topic, partitions, 3)
	})
	consumedAtLeast(1500)
	stop(m1)
	produce(2000, 3000)
	m4 := start("k4")
	consumedAtLeast(2500)
	stop(m2)
	produce(3000, total)
	consumedAtLeast(total)
	stop(m3)
	stop(m4)
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.dups) > 0 {
		t.Fatalf("%d records processed twice, e.g. %v", len(out.dups), out.dups[:min(5, len(out.dups))])
	}
	if len(out.counts) != total {
		t.Fatalf("%d distinct records processed, %d produced", len(out.counts), total)
	}
}
