package groups

import (
	"context"
	"errors"
	"github.com/sluice-mq/sluice/internal/testutil"
	"sync"
	"testing"
	"time"
)

const (
	testSession   = 10 * time.Second
	testRebalance = 30 * time.Second
)

// fakeClock is the coordinator's clock in tests; only Advance moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// newTestCoordinator returns a coordinator on a fake clock that only moves,
// and only expires anything, when the test says so.
func newTestCoordinator(t *testing.T, opts Options) (*Coordinator, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	opts.ManualTick = true
	c := New(opts)
	t.Cleanup(c.Close)
	return c, clk
}

// advance moves the clock and runs the expiry pass, as the ticker would.
func advance(c *Coordinator, clk *fakeClock, d time.Duration) {
	clk.Advance(d)
	c.Tick()
}

// joinReq is a consumer JoinRequest whose protocol metadata names the
// client and the protocol, so tests can tell whose metadata they got.
func joinReq(group, memberID, clientID string, protocols ...string) JoinRequest {
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	ps := make([]Protocol, len(protocols))
	for i, p := range protocols {
		ps[i] = Protocol{Name: p, Metadata: []byte(clientID + "/" + p)}
	}
	return JoinRequest{
		Group:            group,
		MemberID:         memberID,
		ClientID:         clientID,
		ClientHost:       "/127.0.0.1",
		ProtocolType:     "consumer",
		Protocols:        ps,
		SessionTimeout:   testSession,
		RebalanceTimeout: testRebalance,
	}
}

func goJoin(ctx context.Context, c *Coordinator, r JoinRequest) <-chan JoinResult {
	ch := make(chan JoinResult, 1)
	go func() { ch <- c.Join(ctx, r) }()
	return ch
}

func goSync(ctx context.Context, c *Coordinator, r SyncRequest) <-chan SyncResult {
	ch := make(chan SyncResult, 1)
	go func() { ch <- c.Sync(ctx, r) }()
	return ch
}

// recv waits (in wall time, generously) for a blocked call's answer.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a blocked call to return")
		panic("unreachable")
	}
}

// waitFor polls cond until it holds, for conditions reached by other
// goroutines (a blocked Join registering itself).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, what, cond)
}

// waiting counts the members of a group blocked in Join and in Sync.
func (c *Coordinator) waiting(group string) (joins, syncs int) {
	g, _ := c.lockGroup(group, false)
	if g == nil {
		return 0, 0
	}
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m.join != nil {
			joins++
		}
		if m.sync != nil {
			syncs++
		}
	}
	return joins, syncs
}

func waitJoining(t *testing.T, c *Coordinator, group string, n int) {
	t.Helper()
	waitFor(t, "members blocked in Join", func() bool { j, _ := c.waiting(group); return j == n })
}

func waitSyncing(t *testing.T, c *Coordinator, group string, n int) {
	t.Helper()
	waitFor(t, "members blocked in Sync", func() bool { _, s := c.waiting(group); return s == n })
}

func groupState(c *Coordinator, group string) string {
	d, ok := c.Describe(group)
	if !ok {
		return "<unknown>"
	}
	return d.State
}

func wantState(t *testing.T, c *Coordinator, group, want string) {
	t.Helper()
	if got := groupState(c, group); got != want {
		t.Fatalf("group %q state = %s, want %s", group, got, want)
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: error = %v, want %v", what, got, want)
	}
}

func mustJoin(t *testing.T, c *Coordinator, r JoinRequest) JoinResult {
	t.Helper()
	res := c.Join(context.Background(), r)
	if res.Err != nil {
		t.Fatalf("join %s/%s: %v", r.Group, r.ClientID, res.Err)
	}
	return res
}

func mustSync(t *testing.T, c *Coordinator, r SyncRequest) SyncResult {
	t.Helper()
	res := c.Sync(context.Background(), r)
	if res.Err != nil {
		t.Fatalf("sync %s/%s: %v", r.Group, r.MemberID, res.Err)
	}
	return res
}

func memberIDs(ms []Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.MemberID
	}
	return ids
}

// twoMemberGroup brings group "g" to Stable with members a (leader) and b,
// generation 2, each assigned "assign-<client>". It goes the way a real
// client pair does without an initial delay: a joins alone (generation 1),
// b's join starts a rebalance, a learns of it by heartbeat and rejoins.
func twoMemberGroup(t *testing.T, c *Coordinator) (a, b JoinResult) {
	t.Helper()
	a = mustJoin(t, c, joinReq("g", "", "a"))
	mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation,
		Assignments: map[string][]byte{a.MemberID: []byte("assign-a")}})
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 1)
	wantErr(t, "heartbeat during rebalance", c.Heartbeat("g", a.MemberID, "", a.Generation), ErrRebalanceInProgress)
	a = mustJoin(t, c, joinReq("g", a.MemberID, "a"))
	b = recv(t, bch)
	if b.Err != nil || a.Generation != 2 || b.Generation != 2 {
		t.Fatalf("rejoin: a=%+v b=%+v", a, b)
	}
	sch := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 2})
	waitSyncing(t, c, "g", 1)
	mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 2, Assignments: map[string][]byte{
		a.MemberID: []byte("assign-a"), b.MemberID: []byte("assign-b"),
	}})
	if s := recv(t, sch); s.Err != nil || string(s.Assignment) != "assign-b" {
		t.Fatalf("follower sync = %+v", s)
	}
	wantState(t, c, "g", StateStable)
	return a, b
}
