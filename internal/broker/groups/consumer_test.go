package groups

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

var (
	topicA = TopicInfo{ID: TopicID{1}, Name: "a", Partitions: 6}
	topicB = TopicInfo{ID: TopicID{2}, Name: "b", Partitions: 3}
)

// cclient is a consumer-protocol member as a test drives it: it owns what
// its last answer assigned (revoking at once) and heartbeats with that.
type cclient struct {
	t      *testing.T
	c      *Coordinator
	group  string
	id     string
	epoch  int32
	owned  tpSet
	topics []TopicInfo
	subs   []string
}

func newCClient(t *testing.T, c *Coordinator, id string, topics []TopicInfo, subs ...string) *cclient {
	return &cclient{t: t, c: c, group: "g", id: id, owned: tpSet{}, topics: topics, subs: subs}
}

func (cl *cclient) req() ConsumerHeartbeatRequest {
	r := ConsumerHeartbeatRequest{Group: cl.group, MemberID: cl.id, MemberEpoch: cl.epoch,
		RebalanceTimeoutMs: 30000, SubscribedTopicNames: cl.subs, Topics: cl.topics}
	for _, p := range cl.owned.sorted() {
		r.Owned = append(r.Owned, TopicPartitions{ID: p.topic, Partitions: []int32{p.part}})
	}
	if r.Owned == nil {
		r.Owned = []TopicPartitions{}
	}
	return r
}

// beat sends a heartbeat and adopts the answer.
func (cl *cclient) beat() ConsumerHeartbeatResult {
	cl.t.Helper()
	res := cl.c.ConsumerHeartbeat(cl.req())
	if res.Err != nil {
		cl.t.Fatalf("%s: heartbeat: %v", cl.id, res.Err)
	}
	cl.epoch = res.MemberEpoch
	if res.Assignment != nil {
		cl.owned = tpSet{}
		for _, t := range res.Assignment {
			for _, p := range t.Partitions {
				cl.owned[tp{t.ID, p}] = struct{}{}
			}
		}
	}
	return res
}

// settle heartbeats every client until nothing changes and checks that no
// partition was ever owned by two clients at once.
func settle(t *testing.T, cls ...*cclient) {
	t.Helper()
	for range 20 {
		changed := false
		for _, cl := range cls {
			before, e := cl.owned.clone(), cl.epoch
			cl.beat()
			if !before.equal(cl.owned) || e != cl.epoch {
				changed = true
			}
			checkExclusive(t, cls...)
		}
		if !changed {
			return
		}
	}
	t.Fatal("group did not settle")
}

func checkExclusive(t *testing.T, cls ...*cclient) {
	t.Helper()
	seen := map[tp]string{}
	for _, cl := range cls {
		for p := range cl.owned {
			if o, ok := seen[p]; ok {
				t.Fatalf("partition %v owned by %s and %s", p, o, cl.id)
			}
			seen[p] = cl.id
		}
	}
}

func TestConsumerGroupJoinAssignsEverything(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := newCClient(t, c, "m1", []TopicInfo{topicA, topicB}, "a", "b")
	res := a.beat()
	if res.MemberEpoch != 1 || len(a.owned) != 9 {
		t.Fatalf("epoch %d, owned %d; want epoch 1 and all 9 partitions", res.MemberEpoch, len(a.owned))
	}
	if res.HeartbeatInterval != defaultConsumerHeartbeatInterval {
		t.Fatalf("heartbeat interval %v", res.HeartbeatInterval)
	}
	d, ok, isConsumer := c.DescribeConsumer("g")
	if !ok || !isConsumer || d.State != StateStable || d.Epoch != 1 || len(d.Members) != 1 {
		t.Fatalf("describe: %+v %v %v", d, ok, isConsumer)
	}
}

func TestConsumerGroupRevokeBeforeAssign(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := newCClient(t, c, "m1", []TopicInfo{topicA}, "a")
	a.beat()
	b := newCClient(t, c, "m2", []TopicInfo{topicA}, "a")
	res := b.beat()
	// m2 joined at the new epoch but everything is still m1's.
	if len(b.owned) != 0 || res.MemberEpoch != 2 {
		t.Fatalf("m2 got %v at epoch %d before m1 revoked", b.owned, res.MemberEpoch)
	}
	// m1 hears it must revoke three partitions; its epoch stays.
	old := a.owned.clone()
	resA := c.ConsumerHeartbeat(a.req())
	if resA.Err != nil || resA.MemberEpoch != 1 || len(resA.Assignment) != 1 || len(resA.Assignment[0].Partitions) != 3 {
		t.Fatalf("m1 answer %+v", resA)
	}
	// m2 still gets nothing while m1 reports the old partitions.
	if b.beat(); len(b.owned) != 0 {
		t.Fatalf("m2 got %v before m1 acknowledged the revocation", b.owned)
	}
	a.owned = old
	if resA = c.ConsumerHeartbeat(a.req()); resA.MemberEpoch != 1 {
		t.Fatalf("m1 moved on without revoking: %+v", resA)
	}
	settle(t, a, b)
	if len(a.owned) != 3 || len(b.owned) != 3 || a.epoch != 2 || b.epoch != 2 {
		t.Fatalf("after settling: m1 %d at %d, m2 %d at %d", len(a.owned), a.epoch, len(b.owned), b.epoch)
	}
	if d, _, _ := c.DescribeConsumer("g"); d.State != StateStable {
		t.Fatalf("state %s", d.State)
	}
}

func TestConsumerGroupLeaveAndExpiry(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{ConsumerSessionTimeout: 10 * time.Second})
	cls := []*cclient{}
	for i := range 3 {
		cls = append(cls, newCClient(t, c, fmt.Sprintf("m%d", i), []TopicInfo{topicA}, "a"))
		cls[i].beat()
	}
	settle(t, cls...)
	for _, cl := range cls {
		if len(cl.owned) != 2 {
			t.Fatalf("%s owns %d", cl.id, len(cl.owned))
		}
	}
	// m0 leaves.
	r := cls[0].req()
	r.MemberEpoch = -1
	if res := c.ConsumerHeartbeat(r); res.Err != nil || res.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", res)
	}
	settle(t, cls[1], cls[2])
	if len(cls[1].owned)+len(cls[2].owned) != 6 || len(cls[1].owned) != 3 {
		t.Fatalf("after leave: %d %d", len(cls[1].owned), len(cls[2].owned))
	}
	// m2 goes silent and expires; m1 takes everything.
	advance(c, clk, 6*time.Second)
	cls[1].beat()
	advance(c, clk, 6*time.Second)
	settle(t, cls[1])
	if len(cls[1].owned) != 6 {
		t.Fatalf("after expiry m1 owns %d", len(cls[1].owned))
	}
	if res := c.ConsumerHeartbeat(cls[2].req()); !errors.Is(res.Err, ErrUnknownMemberID) {
		t.Fatalf("expired member's heartbeat: %v", res.Err)
	}
}

func TestConsumerGroupEpochFencing(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := newCClient(t, c, "m1", []TopicInfo{topicA}, "a")
	a.beat()
	r := a.req()
	r.MemberEpoch = 5
	if res := c.ConsumerHeartbeat(r); !errors.Is(res.Err, ErrFencedMemberEpoch) {
		t.Fatalf("epoch ahead: %v", res.Err)
	}
	b := newCClient(t, c, "m2", []TopicInfo{topicA}, "a")
	b.beat()
	settle(t, a, b)
	// The previous epoch with a subset of the assignment is accepted (a
	// lost answer); with a partition the member no longer has, fenced.
	r = a.req()
	r.MemberEpoch = a.epoch - 1
	if res := c.ConsumerHeartbeat(r); res.Err != nil {
		t.Fatalf("previous epoch, owned subset: %v", res.Err)
	}
	r.Owned = append(r.Owned, TopicPartitions{ID: topicA.ID, Partitions: []int32{0, 1, 2, 3, 4, 5}})
	if res := c.ConsumerHeartbeat(r); !errors.Is(res.Err, ErrFencedMemberEpoch) {
		t.Fatalf("previous epoch, not a subset: %v", res.Err)
	}
	r.MemberEpoch = 0
	r.Owned = nil
	if res := c.ConsumerHeartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "x", MemberEpoch: 0,
		RebalanceTimeoutMs: 1000, SubscribedTopicNames: []string{"a"}, ServerAssignor: ptr("sticky")}); !errors.Is(res.Err, ErrUnsupportedAssignor) {
		t.Fatalf("unknown assignor: %v", res.Err)
	}
	if res := c.ConsumerHeartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "x", MemberEpoch: 0,
		RebalanceTimeoutMs: 1000, SubscribedTopicRegex: ptr("(")}); !errors.Is(res.Err, ErrInvalidRegex) {
		t.Fatalf("bad regex: %v", res.Err)
	}
}

func TestConsumerGroupTopicChangesBumpEpoch(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := newCClient(t, c, "m1", []TopicInfo{topicA}, "a", "b")
	a.beat()
	if len(a.owned) != 6 {
		t.Fatalf("owned %d", len(a.owned))
	}
	a.topics = []TopicInfo{topicA, topicB} // b created
	settle(t, a)
	if len(a.owned) != 9 || a.epoch != 2 {
		t.Fatalf("after create: %d at %d", len(a.owned), a.epoch)
	}
	grown := topicA
	grown.Partitions = 8
	a.topics = []TopicInfo{grown} // a grown, b deleted
	settle(t, a)
	if len(a.owned) != 8 {
		t.Fatalf("after growth and delete: %d", len(a.owned))
	}
}

func TestConsumerGroupRegexSubscription(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	internal := TopicInfo{ID: TopicID{3}, Name: "__consumer_offsets", Partitions: 1, Internal: true}
	a := newCClient(t, c, "m1", []TopicInfo{topicA, topicB, internal})
	r := a.req()
	r.SubscribedTopicRegex = ptr(".*")
	res := c.ConsumerHeartbeat(r)
	n := 0
	for _, t := range res.Assignment {
		n += len(t.Partitions)
		if t.ID == internal.ID {
			break
		}
	}
	if res.Err != nil || n != 9 {
		t.Fatalf("regex .* got %d partitions (%+v)", n, res)
	}
	// Full match, as Kafka: "a" does not match "b".
	b := newCClient(t, c, "m2", []TopicInfo{topicA, topicB})
	b.group = "g2"
	r = b.req()
	r.SubscribedTopicRegex = ptr("a")
	res = c.ConsumerHeartbeat(r)
	if res.Err != nil || len(res.Assignment) != 1 || res.Assignment[0].ID != topicA.ID {
		t.Fatalf("regex a: %+v", res)
	}
}

func TestConsumerAndClassicShareGroupIDs(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := newCClient(t, c, "m1", []TopicInfo{topicA}, "a")
	a.beat()
	jr := joinReq("g", "", "classic")
	jr.SessionTimeout, jr.RebalanceTimeout = testSession, testRebalance
	if res := c.Join(context.Background(), jr); !errors.Is(res.Err, ErrInconsistentProtocol) {
		t.Fatalf("classic join to a live consumer group: %v", res.Err)
	}
	if err := c.Delete("g"); !errors.Is(err, ErrNonEmptyGroup) {
		t.Fatalf("delete of a live consumer group: %v", err)
	}
	if l := c.List(); len(l) != 1 || l[0].Type != TypeConsumer || l[0].State != StateStable {
		t.Fatalf("list: %+v", l)
	}
	r := a.req()
	r.MemberEpoch = -1
	c.ConsumerHeartbeat(r)
	// Empty now: a classic member converts it.
	if res := c.Join(context.Background(), jr); res.Err != nil {
		t.Fatalf("classic join to an empty consumer group: %v", res.Err)
	}
	b := newCClient(t, c, "m2", []TopicInfo{topicA}, "a")
	if res := c.ConsumerHeartbeat(b.req()); !errors.Is(res.Err, ErrGroupNotFound) {
		t.Fatalf("consumer heartbeat to a live classic group: %v", res.Err)
	}
}

func TestConsumerGroupCommitValidation(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := newCClient(t, c, "m1", []TopicInfo{topicA}, "a")
	a.beat()
	if err := c.ValidateCommit("g", "m1", "", a.epoch); err != nil {
		t.Fatalf("current epoch: %v", err)
	}
	if err := c.ValidateCommit("g", "m1", "", a.epoch-1); !errors.Is(err, ErrStaleMemberEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	if err := c.ValidateCommit("g", "nobody", "", 1); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("unknown member: %v", err)
	}
	if err := c.ValidateCommit("g", "", "", -1); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("simple commit to a live group: %v", err)
	}
	id := "m1"
	if err := c.ValidateOffsetFetch("g", &id, a.epoch+1); !errors.Is(err, ErrStaleMemberEpoch) {
		t.Fatalf("offset fetch with a wrong epoch: %v", err)
	}
	if !c.SubscribedTo("g", "a") || c.SubscribedTo("g", "b") {
		t.Fatalf("SubscribedTo: a %v, b %v", c.SubscribedTo("g", "a"), c.SubscribedTo("g", "b"))
	}
	if err := c.ValidateConsumerTxnCommit("g", "m1", a.epoch-1); !errors.Is(err, ErrStaleMemberEpoch) {
		t.Fatalf("transactional commit with an old epoch: %v", err)
	}
	if err := c.ValidateConsumerTxnCommit("g", "", -1); err != nil {
		t.Fatalf("transactional commit without member: %v", err)
	}
	if err := c.ValidateConsumerTxnCommit("g", "m1", a.epoch); err != nil {
		t.Fatalf("transactional commit at the current epoch: %v", err)
	}
}

func TestAssignUniformBalancedAndSticky(t *testing.T) {
	parts := map[TopicID]int32{topicA.ID: 12}
	all := map[TopicID]bool{topicA.ID: true}
	spec := assignSpec{members: []string{"a", "b", "c"}, subs: []map[TopicID]bool{all, all, all}, partitions: parts}
	first := assignUniform(spec)
	for m, s := range first {
		if len(s) != 4 {
			t.Fatalf("%s got %d of 12 over 3", m, len(s))
		}
	}
	// d joins: only one partition of each old member moves.
	spec = assignSpec{members: []string{"a", "b", "c", "d"}, subs: []map[TopicID]bool{all, all, all, all}, partitions: parts, prev: first}
	second := assignUniform(spec)
	for _, m := range []string{"a", "b", "c"} {
		kept := 0
		for p := range second[m] {
			if _, ok := first[m][p]; ok {
				kept++
			}
		}
		if len(second[m]) != 3 || kept != 3 {
			t.Fatalf("%s: %d partitions, %d kept", m, len(second[m]), kept)
		}
	}
	if len(second["d"]) != 3 {
		t.Fatalf("d got %d", len(second["d"]))
	}
	// Heterogeneous: b subscribes to topic b only.
	spec = assignSpec{members: []string{"x", "y"}, subs: []map[TopicID]bool{{topicA.ID: true, topicB.ID: true}, {topicB.ID: true}},
		partitions: map[TopicID]int32{topicA.ID: 6, topicB.ID: 3}}
	h := assignUniform(spec)
	if len(h["x"])+len(h["y"]) != 9 || len(h["y"]) != 3 {
		t.Fatalf("heterogeneous: x %d y %d", len(h["x"]), len(h["y"]))
	}
}

func TestAssignRange(t *testing.T) {
	all := map[TopicID]bool{topicA.ID: true, topicB.ID: true}
	spec := assignSpec{members: []string{"a", "b"}, subs: []map[TopicID]bool{all, all},
		partitions: map[TopicID]int32{topicA.ID: 5, topicB.ID: 5}}
	out := assignRange(spec)
	for _, p := range []int32{0, 1, 2} {
		if _, ok := out["a"][tp{topicA.ID, p}]; !ok {
			t.Fatalf("a lacks a-%d: %v", p, out["a"])
		}
		if _, ok := out["a"][tp{topicB.ID, p}]; !ok {
			t.Fatalf("a lacks b-%d (co-partitioning)", p)
		}
	}
	if len(out["a"]) != 6 || len(out["b"]) != 4 {
		t.Fatalf("a %d b %d", len(out["a"]), len(out["b"]))
	}
}

func TestConsumerGroupRangeAssignorChosen(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	r := ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", RebalanceTimeoutMs: 1000,
		SubscribedTopicNames: []string{"a"}, ServerAssignor: ptr(AssignorRange), Topics: []TopicInfo{topicA}}
	if res := c.ConsumerHeartbeat(r); res.Err != nil {
		t.Fatal(res.Err)
	}
	if d, _, _ := c.DescribeConsumer("g"); d.Assignor != AssignorRange {
		t.Fatalf("assignor %q", d.Assignor)
	}
}

func ptr[T any](v T) *T { return &v }

// FuzzConsumerGroupHeartbeat drives a consumer group with arbitrary
// heartbeats (joins, stale and future epochs, leaves, owned partitions
// reported or not, topics growing and vanishing, time passing): the
// coordinator must never panic, and no partition may ever be owned
// (assigned or pending revocation) by two members at once.
func FuzzConsumerGroupHeartbeat(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 2, 1, 0, 0, 1, 1, 1, 2, 0, 3, 3, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 4, 2, 1, 1, 1, 9, 9, 9, 2, 5, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c, clk := newTestCoordinator(t, Options{ConsumerSessionTimeout: 10 * time.Second})
		ops = ops[:min(len(ops), 300)] // a hundred heartbeats is plenty
		epochs := map[string]int32{}
		owned := map[string][]TopicPartitions{}
		topics := []TopicInfo{topicA, topicB}
		for len(ops) >= 3 {
			who, what, arg := ops[0]%4, ops[1]%8, ops[2]
			ops = ops[3:]
			id := fmt.Sprintf("m%d", who)
			r := ConsumerHeartbeatRequest{Group: "g", MemberID: id, MemberEpoch: epochs[id],
				RebalanceTimeoutMs: int32(arg) * 100, Topics: topics, Owned: owned[id]}
			if r.Owned == nil {
				r.Owned = []TopicPartitions{}
			}
			switch what {
			case 0: // join
				r.MemberEpoch, r.Owned = 0, nil
				r.SubscribedTopicNames = []string{"a", "b"}[:1+arg%2]
				if arg%3 == 0 {
					r.ServerAssignor = ptr(AssignorRange)
				}
			case 1: // leave
				r.MemberEpoch = -1 - int32(arg%2)
			case 2: // a wrong epoch
				r.MemberEpoch += int32(arg%5) - 2
			case 3: // an unchanged keepalive
				r.Owned, r.RebalanceTimeoutMs = nil, -1
			case 4: // topics change
				grown := topicA
				grown.Partitions = 1 + int32(arg%10)
				topics = []TopicInfo{grown}
				if arg%2 == 0 {
					topics = append(topics, topicB)
				}
				r.Topics = topics
			case 5: // time passes
				advance(c, clk, time.Duration(arg)*100*time.Millisecond)
				continue
			case 6: // a regex subscription
				r.SubscribedTopicRegex = ptr([]string{"a|b", ".*", "b"}[arg%3])
			case 7: // a static member joins (or rejoins) under one instance id
				r.MemberEpoch, r.Owned = 0, nil
				r.InstanceID = ptr(fmt.Sprintf("i%d", arg%2))
				r.SubscribedTopicNames = []string{"a"}
			}
			res := c.ConsumerHeartbeat(r)
			if res.Err == nil && r.MemberEpoch >= 0 {
				epochs[id] = res.MemberEpoch
				if res.Assignment != nil {
					owned[id] = res.Assignment
				}
			} else if res.Err == nil {
				delete(epochs, id)
				delete(owned, id)
			}
			checkOwners(t, c)
		}
	})
}

// checkOwners checks, inside the coordinator, that no partition is held by
// two members and that the owners index agrees with the members.
func checkOwners(t *testing.T, c *Coordinator) {
	t.Helper()
	g, _ := c.lockGroup("g", false)
	if g == nil {
		return
	}
	defer g.mu.Unlock()
	cg := g.consumer
	if cg == nil {
		return
	}
	seen := map[tp]string{}
	for id, m := range cg.members {
		for _, s := range []tpSet{m.assigned, m.pendingRevoke} {
			for p := range s {
				if o, ok := seen[p]; ok {
					t.Fatalf("partition %v held by %s and %s", p, o, id)
				}
				seen[p] = id
				if cg.owners[p] != id {
					t.Fatalf("partition %v held by %s, owners index says %q", p, id, cg.owners[p])
				}
			}
		}
	}
	for p, id := range cg.owners {
		if seen[p] != id {
			t.Fatalf("owners index has %v for %s, who does not hold it", p, id)
		}
	}
}

func TestConsumerGroupStaticMemberTemporaryLeave(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{ConsumerSessionTimeout: 10 * time.Second})
	a := newCClient(t, c, "a1", []TopicInfo{topicA}, "a")
	b := newCClient(t, c, "b1", []TopicInfo{topicA}, "a")
	staticReq := func(cl *cclient) ConsumerHeartbeatRequest {
		r := cl.req()
		r.InstanceID = ptr("inst-a")
		return r
	}
	if res := c.ConsumerHeartbeat(staticReq(a)); res.Err != nil {
		t.Fatal(res.Err)
	} else {
		a.epoch = res.MemberEpoch
	}
	b.beat()
	for range 5 { // settle with a's instance id on every heartbeat
		res := c.ConsumerHeartbeat(staticReq(a))
		a.epoch = res.MemberEpoch
		if res.Assignment != nil {
			a.owned = tpSet{}
			for _, tt := range res.Assignment {
				for _, p := range tt.Partitions {
					a.owned[tp{tt.ID, p}] = struct{}{}
				}
			}
		}
		b.beat()
	}
	if len(a.owned) != 3 || len(b.owned) != 3 {
		t.Fatalf("a %d b %d", len(a.owned), len(b.owned))
	}
	epoch := a.epoch
	// a restarts: leaves with -2, keeping its partitions.
	r := staticReq(a)
	r.MemberEpoch = -2
	if res := c.ConsumerHeartbeat(r); res.Err != nil || res.MemberEpoch != -2 {
		t.Fatalf("temporary leave: %+v", res)
	}
	if b.beat(); len(b.owned) != 3 {
		t.Fatalf("b took a's partitions while a was away: %d", len(b.owned))
	}
	// Another live member with the same instance id is refused.
	other := newCClient(t, c, "x", []TopicInfo{topicA}, "a")
	r = staticReq(other)
	r.MemberEpoch = 0
	a2 := newCClient(t, c, "a2", []TopicInfo{topicA}, "a")
	r2 := staticReq(a2)
	r2.Owned = nil
	res := c.ConsumerHeartbeat(r2)
	if res.Err != nil || res.MemberEpoch != epoch || len(res.Assignment) != 1 || len(res.Assignment[0].Partitions) != 3 {
		t.Fatalf("the new incarnation: %+v (want epoch %d and a's 3 partitions)", res, epoch)
	}
	if res := c.ConsumerHeartbeat(r); !errors.Is(res.Err, ErrUnreleasedInstanceID) {
		t.Fatalf("a second member with a live instance id: %v", res.Err)
	}
	if d, _, _ := c.DescribeConsumer("g"); d.Epoch != epoch || len(d.Members) != 2 {
		t.Fatalf("the static restart rebalanced: epoch %d (was %d), %d members", d.Epoch, epoch, len(d.Members))
	}
	// Away for good: its session expires and b takes everything.
	r2.MemberEpoch, r2.Owned = -2, nil
	c.ConsumerHeartbeat(r2)
	advance(c, clk, 6*time.Second)
	b.beat()
	advance(c, clk, 6*time.Second)
	settle(t, b)
	if len(b.owned) != 6 {
		t.Fatalf("after the away member expired b owns %d", len(b.owned))
	}
}

// BenchmarkAssignUniform: the target assignment of 100 members over 10
// topics of 100 partitions, from the previous one (one member joined).
func BenchmarkAssignUniform(b *testing.B) {
	parts := map[TopicID]int32{}
	all := map[TopicID]bool{}
	for i := range 10 {
		id := TopicID{byte(i + 1)}
		parts[id], all[id] = 100, true
	}
	members := make([]string, 100)
	subs := make([]map[TopicID]bool, 100)
	for i := range members {
		members[i], subs[i] = fmt.Sprintf("m%03d", i), all
	}
	prev := assignUniform(assignSpec{members: members[:99], subs: subs[:99], partitions: parts})
	b.ResetTimer()
	for b.Loop() {
		assignUniform(assignSpec{members: members, subs: subs, partitions: parts, prev: prev})
	}
}

// BenchmarkConsumerHeartbeat: a full heartbeat of one member of a settled
// group of 100 members over 10 topics of 100 partitions, with 1,000
// topics in the broker.
func BenchmarkConsumerHeartbeat(b *testing.B) {
	c := New(Options{ManualTick: true})
	defer c.Close()
	var topics []TopicInfo
	var names []string
	for i := range 1000 {
		topics = append(topics, TopicInfo{ID: TopicID{byte(i >> 8), byte(i), 1}, Name: fmt.Sprintf("t%04d", i), Partitions: 100})
		if i < 10 {
			names = append(names, topics[i].Name)
		}
	}
	owned := map[string][]TopicPartitions{}
	epochs := map[string]int32{}
	beat := func(id string) ConsumerHeartbeatResult {
		r := ConsumerHeartbeatRequest{Group: "g", MemberID: id, MemberEpoch: epochs[id], RebalanceTimeoutMs: 30000,
			SubscribedTopicNames: names, Topics: topics, Owned: owned[id]}
		if r.MemberEpoch == 0 {
			r.Owned = nil
		} else if r.Owned == nil {
			r.Owned = []TopicPartitions{}
		}
		res := c.ConsumerHeartbeat(r)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		epochs[id] = res.MemberEpoch
		if res.Assignment != nil {
			owned[id] = res.Assignment
		}
		return res
	}
	for round := 0; round < 5; round++ {
		for i := range 100 {
			beat(fmt.Sprintf("m%03d", i))
		}
	}
	b.ResetTimer()
	for b.Loop() {
		beat("m050")
	}
}

func TestConsumerGroupServerMadeMemberIDAndUnknownGroup(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	res := c.ConsumerHeartbeat(ConsumerHeartbeatRequest{Group: "g", RebalanceTimeoutMs: 1000,
		SubscribedTopicNames: []string{"a"}, Topics: []TopicInfo{topicA}})
	if res.Err != nil || len(res.MemberID) != 36 || res.MemberEpoch != 1 {
		t.Fatalf("v0 join without a member id: %+v", res)
	}
	// After a restart the coordinator knows neither group nor member: the
	// member is told to rejoin.
	res = c.ConsumerHeartbeat(ConsumerHeartbeatRequest{Group: "gone", MemberID: "m", MemberEpoch: 4, RebalanceTimeoutMs: -1})
	if !errors.Is(res.Err, ErrUnknownMemberID) {
		t.Fatalf("heartbeat to an unknown group: %v", res.Err)
	}
	for _, r := range []ConsumerHeartbeatRequest{
		{Group: "g", MemberID: "m", MemberEpoch: -3},
		{Group: "g", MemberID: "m", RebalanceTimeoutMs: -1, SubscribedTopicNames: []string{"a"}},
		{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1000},
		{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1000, SubscribedTopicNames: []string{"a"}, Owned: []TopicPartitions{{ID: topicA.ID, Partitions: []int32{0}}}},
		{Group: "g", MemberEpoch: 3},
	} {
		if res := c.ConsumerHeartbeat(r); !errors.Is(res.Err, ErrInvalidRequest) {
			t.Errorf("%+v: %v, want an invalid request", r, res.Err)
		}
	}
}
