package test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStaticMemberRestartKeepsAssignmentWithoutRebalance: a consumer with
// group.instance.id that restarts (a new member id, the same instance id)
// takes its place back without a new generation, while the other member
// keeps consuming undisturbed (KIP-345).
func TestStaticMemberRestartKeepsAssignmentWithoutRebalance(t *testing.T) {
	b := startBroker(t)
	const topic, group = "static", "g-static"
	b.createTopic(t, topic, 4, nil)
	adm := b.admin(t)
	member := func(instance string) *kgo.Client {
		return b.client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.InstanceID(instance), kgo.SessionTimeout(30*time.Second),
			kgo.HeartbeatInterval(200*time.Millisecond),
			// Eager balancing: the cooperative default follows a rebalance
			// with a second one once partitions are revoked, and the test
			// must measure the group only after it has settled.
			kgo.Balancers(kgo.RoundRobinBalancer()))
	}
	a, other := member("a"), member("b")
	pollBoth := func(clients ...*kgo.Client) {
		for _, c := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			c.PollFetches(ctx)
			cancel()
		}
	}
	type view struct {
		generation int32
		members    map[string]string // instance id -> member id
	}
	describe := func() (view, string) {
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return view{}, ""
		}
		g := gs[group]
		v := view{members: map[string]string{}}
		for _, m := range g.Members {
			if m.InstanceID != nil {
				v.members[*m.InstanceID] = m.MemberID
			}
		}
		return v, g.State
	}
	gen := func(c *kgo.Client) int32 {
		_, g := c.GroupMetadata()
		return g
	}
	var before view
	waitFor(t, 30*time.Second, "both static members in a stable group, agreeing on its generation", func() bool {
		pollBoth(a, other)
		v, state := describe()
		before = v
		before.generation = gen(other)
		return state == "Stable" && len(v.members) == 2 && before.generation > 0 && gen(a) == before.generation
	})

	// a goes away without leaving (static members do not send LeaveGroup)
	// and comes back under the same instance id.
	a.Close()
	a2 := member("a")
	waitFor(t, 30*time.Second, "the restarted member to take its place", func() bool {
		pollBoth(a2, other)
		v, state := describe()
		return state == "Stable" && len(v.members) == 2 && v.members["a"] != before.members["a"] && gen(a2) > 0
	})
	if g := gen(other); g != before.generation {
		t.Fatalf("generation moved from %d to %d: the restart caused a rebalance", before.generation, g)
	}
	if g := gen(a2); g != before.generation {
		t.Fatalf("restarted member is in generation %d, want %d", g, before.generation)
	}
}
