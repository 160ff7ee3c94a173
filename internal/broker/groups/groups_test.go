package groups

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSingleMemberJoinSync(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	j := mustJoin(t, c, joinReq("g", "", "solo", "range", "roundrobin"))
	if !strings.HasPrefix(j.MemberID, "solo-") || len(j.MemberID) != len("solo-")+36 {
		t.Fatalf("member id %q is not client id + uuid", j.MemberID)
	}
	if j.Generation != 1 || j.LeaderID != j.MemberID || j.Protocol != "range" || j.ProtocolType != "consumer" {
		t.Fatalf("join = %+v", j)
	}
	if len(j.Members) != 1 || string(j.Members[0].Metadata) != "solo/range" || j.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("leader's members = %+v", j.Members)
	}
	wantState(t, c, "g", StateCompletingRebalance)
	s := mustSync(t, c, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: 1, ProtocolType: "consumer", Protocol: "range",
		Assignments: map[string][]byte{j.MemberID: []byte("all")}})
	if string(s.Assignment) != "all" || s.Protocol != "range" || s.ProtocolType != "consumer" {
		t.Fatalf("sync = %+v", s)
	}
	wantState(t, c, "g", StateStable)
	if err := c.Heartbeat("g", j.MemberID, "", 1); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	d, _ := c.Describe("g")
	if d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].Assignment) != "all" ||
		string(d.Members[0].Metadata) != "solo/range" {
		t.Fatalf("describe = %+v", d)
	}
	if got := c.List(); !slices.Equal(got, []GroupSummary{{Group: "g", ProtocolType: "consumer", State: StateStable, Type: TypeClassic}}) {
		t.Fatalf("list = %+v", got)
	}
	// A follower-style rejoin of the only member (also the leader) rebalances.
	j2 := mustJoin(t, c, joinReq("g", j.MemberID, "solo", "range", "roundrobin"))
	if j2.Generation != 2 || j2.LeaderID != j.MemberID {
		t.Fatalf("leader rejoin = %+v", j2)
	}
}

func TestTwoMembersInitialDelay(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: 3 * time.Second})
	ach := goJoin(context.Background(), c, joinReq("g", "", "a"))
	waitJoining(t, c, "g", 1)
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 2)

	// The delay ends with a new member having arrived, so it is extended once.
	advance(c, clk, 3*time.Second)
	wantState(t, c, "g", StatePreparingRebalance)
	advance(c, clk, 3*time.Second)
	a, b := recv(t, ach), recv(t, bch)
	if a.Err != nil || b.Err != nil || a.Generation != 1 || b.Generation != 1 {
		t.Fatalf("a=%+v b=%+v", a, b)
	}
	if a.LeaderID != a.MemberID || b.LeaderID != a.MemberID {
		t.Fatalf("first to join should lead: a=%s leader=%s/%s", a.MemberID, a.LeaderID, b.LeaderID)
	}
	if !slices.Equal(memberIDs(a.Members), []string{a.MemberID, b.MemberID}) || b.Members != nil {
		t.Fatalf("leader members %v, follower members %v", memberIDs(a.Members), b.Members)
	}
	if string(a.Members[1].Metadata) != "b/range" {
		t.Fatalf("leader got b's metadata %q", a.Members[1].Metadata)
	}

	bs := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 1})
	waitSyncing(t, c, "g", 1)
	wantErr(t, "follower heartbeat while waiting for the leader", c.Heartbeat("g", b.MemberID, "", 1), nil)
	as := mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 1,
		Assignments: map[string][]byte{a.MemberID: []byte("p0"), b.MemberID: []byte("p1")}})
	if string(as.Assignment) != "p0" {
		t.Fatalf("leader assignment %q", as.Assignment)
	}
	if s := recv(t, bs); s.Err != nil || string(s.Assignment) != "p1" {
		t.Fatalf("follower sync = %+v", s)
	}
	// A follower that syncs again in Stable gets its assignment at once.
	if s := mustSync(t, c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 1}); string(s.Assignment) != "p1" {
		t.Fatalf("repeated sync = %+v", s)
	}
}

func TestThirdMemberTriggersRebalance(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a, b := twoMemberGroup(t, c)

	cch := goJoin(context.Background(), c, joinReq("g", "", "c"))
	waitJoining(t, c, "g", 1)
	wantState(t, c, "g", StatePreparingRebalance)
	wantErr(t, "a's heartbeat", c.Heartbeat("g", a.MemberID, "", 2), ErrRebalanceInProgress)
	wantErr(t, "b's heartbeat", c.Heartbeat("g", b.MemberID, "", 2), ErrRebalanceInProgress)
	wantErr(t, "commit during PreparingRebalance", c.ValidateCommit("g", b.MemberID, "", 2), nil)
	wantErr(t, "sync during PreparingRebalance", c.Sync(context.Background(),
		SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 2}).Err, ErrRebalanceInProgress)

	// A follower rejoining with unchanged protocols waits for the others.
	bch := goJoin(context.Background(), c, joinReq("g", b.MemberID, "b"))
	waitJoining(t, c, "g", 2)
	a3 := mustJoin(t, c, joinReq("g", a.MemberID, "a"))
	b3, c3 := recv(t, bch), recv(t, cch)
	if a3.Generation != 3 || b3.Generation != 3 || c3.Generation != 3 {
		t.Fatalf("generations %d %d %d, want 3", a3.Generation, b3.Generation, c3.Generation)
	}
	if a3.LeaderID != a.MemberID || len(a3.Members) != 3 || b3.Members != nil || c3.Members != nil {
		t.Fatalf("leader %s kept? members %v", a3.LeaderID, memberIDs(a3.Members))
	}
	wantErr(t, "heartbeat with the old generation", c.Heartbeat("g", b.MemberID, "", 2), ErrIllegalGeneration)
	wantErr(t, "heartbeat in CompletingRebalance", c.Heartbeat("g", b.MemberID, "", 3), nil)
	// A retried join while completing returns the same generation.
	if r := mustJoin(t, c, joinReq("g", c3.MemberID, "c")); r.Generation != 3 || r.Members != nil {
		t.Fatalf("retried join = %+v", r)
	}
}

func TestFollowerRejoinInStableDoesNotRebalance(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	_, b := twoMemberGroup(t, c)
	r := mustJoin(t, c, joinReq("g", b.MemberID, "b"))
	if r.Generation != 2 || r.LeaderID == b.MemberID {
		t.Fatalf("rejoin = %+v", r)
	}
	wantState(t, c, "g", StateStable)
	// Changing its subscription does rebalance.
	ch := goJoin(context.Background(), c, joinReq("g", b.MemberID, "b", "range", "sticky"))
	waitJoining(t, c, "g", 1)
	wantState(t, c, "g", StatePreparingRebalance)
	c.Close()
	wantErr(t, "join released by Close", recv(t, ch).Err, ErrCoordinatorNotAvailable)
}

func TestSessionExpiry(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{})
	a, b := twoMemberGroup(t, c)
	advance(c, clk, 6*time.Second)
	wantErr(t, "a's heartbeat", c.Heartbeat("g", a.MemberID, "", 2), nil)
	advance(c, clk, 3*time.Second)
	wantState(t, c, "g", StateStable) // b's session (10s) has 1s left
	advance(c, clk, time.Second)
	wantState(t, c, "g", StatePreparingRebalance)
	wantErr(t, "expired member's heartbeat", c.Heartbeat("g", b.MemberID, "", 2), ErrUnknownMemberID)
	wantErr(t, "survivor's heartbeat", c.Heartbeat("g", a.MemberID, "", 2), ErrRebalanceInProgress)
	a3 := mustJoin(t, c, joinReq("g", a.MemberID, "a"))
	if a3.Generation != 3 || !slices.Equal(memberIDs(a3.Members), []string{a.MemberID}) {
		t.Fatalf("rejoin = %+v", a3)
	}
	// The last member expiring leaves an Empty group that stays listed.
	advance(c, clk, testSession)
	wantState(t, c, "g", StateEmpty)
	if got := c.List(); len(got) != 1 || got[0].State != StateEmpty || got[0].ProtocolType != "consumer" {
		t.Fatalf("list = %+v", got)
	}
	if d, _ := c.Describe("g"); len(d.Members) != 0 {
		t.Fatalf("describe = %+v", d)
	}
}

func TestRebalanceTimeoutRemovesStraggler(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{})
	a, b := twoMemberGroup(t, c)
	cch := goJoin(context.Background(), c, joinReq("g", "", "c"))
	waitJoining(t, c, "g", 1)
	ach := goJoin(context.Background(), c, joinReq("g", a.MemberID, "a"))
	waitJoining(t, c, "g", 2)

	// b keeps heartbeating, so only the rebalance timeout (30s) removes it.
	for range 3 {
		advance(c, clk, 9*time.Second)
		wantErr(t, "straggler's heartbeat", c.Heartbeat("g", b.MemberID, "", 2), ErrRebalanceInProgress)
	}
	wantState(t, c, "g", StatePreparingRebalance)
	advance(c, clk, 3*time.Second)
	a3, c3 := recv(t, ach), recv(t, cch)
	if a3.Err != nil || c3.Err != nil || a3.Generation != 3 || a3.LeaderID != a.MemberID {
		t.Fatalf("a=%+v c=%+v", a3, c3)
	}
	if !slices.Equal(memberIDs(a3.Members), []string{a.MemberID, c3.MemberID}) {
		t.Fatalf("members %v", memberIDs(a3.Members))
	}
	wantErr(t, "removed straggler's heartbeat", c.Heartbeat("g", b.MemberID, "", 3), ErrUnknownMemberID)
}

func TestLeaderLeftOutRejoinedMemberLeads(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{})
	a, b := twoMemberGroup(t, c)
	// b rejoins with a new subscription; a (the leader) never does.
	bch := goJoin(context.Background(), c, joinReq("g", b.MemberID, "b", "range", "sticky"))
	waitJoining(t, c, "g", 1)
	advance(c, clk, testRebalance)
	b3 := recv(t, bch)
	if b3.Generation != 3 || b3.LeaderID != b.MemberID || len(b3.Members) != 1 {
		t.Fatalf("b = %+v", b3)
	}
	wantErr(t, "old leader's heartbeat", c.Heartbeat("g", a.MemberID, "", 2), ErrUnknownMemberID)
}

func TestLeaveTriggersRebalance(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a, b := twoMemberGroup(t, c)
	err, per := c.Leave("g", []LeaveMember{{MemberID: b.MemberID}, {MemberID: "nobody"}})
	if err != nil || per[0] != nil || per[1] != ErrUnknownMemberID {
		t.Fatalf("leave = %v %v", err, per)
	}
	wantState(t, c, "g", StatePreparingRebalance)
	wantErr(t, "heartbeat after leave", c.Heartbeat("g", a.MemberID, "", 2), ErrRebalanceInProgress)
	a3 := mustJoin(t, c, joinReq("g", a.MemberID, "a"))
	if a3.Generation != 3 || len(a3.Members) != 1 {
		t.Fatalf("rejoin = %+v", a3)
	}
	// The last member leaving empties the group (and bumps the generation).
	if err, per := c.Leave("g", []LeaveMember{{MemberID: a.MemberID}}); err != nil || per[0] != nil {
		t.Fatalf("leave = %v %v", err, per)
	}
	wantState(t, c, "g", StateEmpty)
	if err, per := c.Leave("unknown", []LeaveMember{{MemberID: "x"}}); err != nil || per[0] != ErrUnknownMemberID {
		t.Fatalf("leave unknown group = %v %v", err, per)
	}
}

func TestLeaveReleasesWaitingJoin(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a, _ := twoMemberGroup(t, c)
	ach := goJoin(context.Background(), c, joinReq("g", a.MemberID, "a"))
	waitJoining(t, c, "g", 1)
	c.Leave("g", []LeaveMember{{MemberID: a.MemberID}})
	wantErr(t, "join of a member that left", recv(t, ach).Err, ErrUnknownMemberID)
}

func TestStaticMemberRejoinWithoutRebalance(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: time.Second})
	static := func(client, memberID string) JoinRequest {
		r := joinReq("g", memberID, client)
		r.InstanceID = "instance-" + client
		return r
	}
	ach := goJoin(context.Background(), c, static("a", ""))
	waitJoining(t, c, "g", 1)
	bch := goJoin(context.Background(), c, static("b", ""))
	waitJoining(t, c, "g", 2)
	advance(c, clk, time.Second)
	advance(c, clk, time.Second)
	a, b := recv(t, ach), recv(t, bch)
	if a.Generation != 1 || a.Members[1].InstanceID != "instance-b" {
		t.Fatalf("a = %+v", a)
	}
	bs := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, InstanceID: "instance-b", Generation: 1})
	waitSyncing(t, c, "g", 1)
	mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, InstanceID: "instance-a", Generation: 1,
		Assignments: map[string][]byte{a.MemberID: []byte("pa"), b.MemberID: []byte("pb")}})
	recv(t, bs)

	// b restarts: same instance id, no member id, same subscription.
	b2 := mustJoin(t, c, static("b", ""))
	if b2.MemberID == b.MemberID || b2.Generation != 1 || b2.LeaderID != a.MemberID || b2.Members != nil {
		t.Fatalf("static rejoin = %+v", b2)
	}
	wantState(t, c, "g", StateStable)
	wantErr(t, "old incarnation's heartbeat", c.Heartbeat("g", b.MemberID, "instance-b", 1), ErrFencedInstanceID)
	wantErr(t, "old incarnation's commit", c.ValidateCommit("g", b.MemberID, "instance-b", 1), ErrFencedInstanceID)
	wantErr(t, "old incarnation's join", c.Join(context.Background(), static("b", b.MemberID)).Err, ErrFencedInstanceID)
	wantErr(t, "leader's heartbeat", c.Heartbeat("g", a.MemberID, "instance-a", 1), nil)
	if s := mustSync(t, c, SyncRequest{Group: "g", MemberID: b2.MemberID, InstanceID: "instance-b", Generation: 1}); string(s.Assignment) != "pb" {
		t.Fatalf("new incarnation's assignment %q", s.Assignment)
	}

	// The static leader restarts. An old client is not told it leads; a
	// KIP-814 client is, with the members, but must skip the assignment.
	a2 := mustJoin(t, c, static("a", ""))
	if a2.LeaderID != a.MemberID || a2.LeaderID == a2.MemberID || a2.Members != nil || a2.SkipAssignment {
		t.Fatalf("old-client leader rejoin = %+v", a2)
	}
	r := static("a", "")
	r.SupportsSkipAssignment = true
	a3 := mustJoin(t, c, r)
	if a3.LeaderID != a3.MemberID || !a3.SkipAssignment || len(a3.Members) != 2 || a3.Generation != 1 {
		t.Fatalf("KIP-814 leader rejoin = %+v", a3)
	}
	wantState(t, c, "g", StateStable)

	// Leaving by instance id alone removes the static member.
	if err, per := c.Leave("g", []LeaveMember{{InstanceID: "instance-b"}}); err != nil || per[0] != nil {
		t.Fatalf("leave = %v %v", err, per)
	}
	wantState(t, c, "g", StatePreparingRebalance)
	if err, per := c.Leave("g", []LeaveMember{{InstanceID: "instance-b"}}); err != nil || per[0] != ErrUnknownMemberID {
		t.Fatalf("second leave = %v %v", err, per)
	}
}

func TestStaticMemberKeptAcrossMissedRejoin(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{})
	ra := joinReq("g", "", "a")
	ra.InstanceID = "ia"
	a := mustJoin(t, c, ra)
	mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 1, Assignments: map[string][]byte{a.MemberID: []byte("x")}})
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 1)
	// a is static and does not rejoin within the rebalance timeout: it stays
	// in the generation (and is not the leader, since it did not rejoin).
	for range 6 {
		c.Heartbeat("g", a.MemberID, "ia", 1)
		advance(c, clk, testRebalance/6)
	}
	b := recv(t, bch)
	if b.Generation != 2 || b.LeaderID != b.MemberID || len(b.Members) != 2 {
		t.Fatalf("b = %+v", b)
	}
	wantErr(t, "static member's stale heartbeat", c.Heartbeat("g", a.MemberID, "ia", 1), ErrIllegalGeneration)
}

func TestStaticMemberProtocolChangeRebalances(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	r := joinReq("g", "", "a")
	r.InstanceID = "ia"
	a := mustJoin(t, c, r)
	mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 1})
	r2 := joinReq("g", "", "a", "sticky")
	r2.InstanceID = "ia"
	a2 := mustJoin(t, c, r2) // sole member: rebalances and completes at once
	if a2.Generation != 2 || a2.Protocol != "sticky" || a2.LeaderID != a2.MemberID {
		t.Fatalf("rejoin = %+v", a2)
	}
}

func TestMemberIDRequired(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{})
	r := joinReq("g", "", "k")
	r.RequireKnownMemberID = true
	first := c.Join(context.Background(), r)
	wantErr(t, "first join", first.Err, ErrMemberIDRequired)
	if !strings.HasPrefix(first.MemberID, "k-") {
		t.Fatalf("assigned member id %q", first.MemberID)
	}
	wantState(t, c, "g", StateEmpty)
	r.MemberID = first.MemberID
	j := mustJoin(t, c, r)
	if j.MemberID != first.MemberID || j.Generation != 1 || j.LeaderID != j.MemberID {
		t.Fatalf("join = %+v", j)
	}

	// A pending member id that is never used expires with the session timeout.
	r2 := joinReq("g", "", "k2")
	r2.RequireKnownMemberID = true
	p := c.Join(context.Background(), r2)
	wantErr(t, "pending join", p.Err, ErrMemberIDRequired)
	advance(c, clk, testSession)
	r2.MemberID = p.MemberID
	wantErr(t, "expired pending id", c.Join(context.Background(), r2).Err, ErrUnknownMemberID)

	// Unknown member ids, with and without a group.
	wantErr(t, "unknown member id", c.Join(context.Background(), joinReq("g", "made-up", "x")).Err, ErrUnknownMemberID)
	wantErr(t, "unknown group", c.Join(context.Background(), joinReq("nope", "made-up", "x")).Err, ErrUnknownMemberID)
	if _, ok := c.Describe("nope"); ok {
		t.Fatal("a failed join created a group")
	}
}

func TestPendingMemberDelaysJoinPhase(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	a := mustJoin(t, c, joinReq("g", "", "a"))
	mustSync(t, c, SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 1})
	r := joinReq("g", "", "b")
	r.RequireKnownMemberID = true
	p := c.Join(context.Background(), r)
	wantErr(t, "first join", p.Err, ErrMemberIDRequired)
	wantState(t, c, "g", StateStable) // a pending id alone does not rebalance
	r.MemberID = p.MemberID
	bch := goJoin(context.Background(), c, r)
	waitJoining(t, c, "g", 1)
	a2 := mustJoin(t, c, joinReq("g", a.MemberID, "a"))
	if b := recv(t, bch); b.Generation != 2 || a2.Generation != 2 || len(a2.Members) != 2 {
		t.Fatalf("a=%+v b=%+v", a2, b)
	}
}

func TestHeartbeatAndCommitValidation(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	// Simple commits (no group membership) into an unknown or Empty group.
	wantErr(t, "simple commit, unknown group", c.ValidateCommit("offsets-only", "", "", -1), nil)
	if got := c.List(); len(got) != 1 || got[0].State != StateEmpty {
		t.Fatalf("list = %+v", got)
	}
	wantErr(t, "generation commit, unknown group", c.ValidateCommit("nope", "m", "", 3), ErrIllegalGeneration)
	wantErr(t, "member commit, unknown group", c.ValidateCommit("nope", "m", "", -1), ErrUnknownMemberID)
	wantErr(t, "heartbeat, unknown group", c.Heartbeat("nope", "m", "", 1), ErrUnknownMemberID)
	wantErr(t, "heartbeat, empty group id", c.Heartbeat("", "m", "", 1), ErrInvalidGroupID)

	j := mustJoin(t, c, joinReq("g", "", "a"))
	wantErr(t, "commit in CompletingRebalance", c.ValidateCommit("g", j.MemberID, "", 1), ErrRebalanceInProgress)
	wantErr(t, "txn commit in CompletingRebalance", c.ValidateTxnCommit("g", j.MemberID, "", 1), nil)
	mustSync(t, c, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: 1})

	wantErr(t, "heartbeat", c.Heartbeat("g", j.MemberID, "", 1), nil)
	wantErr(t, "heartbeat, stale generation", c.Heartbeat("g", j.MemberID, "", 0), ErrIllegalGeneration)
	wantErr(t, "heartbeat, unknown member", c.Heartbeat("g", "stranger", "", 1), ErrUnknownMemberID)
	wantErr(t, "heartbeat, unknown instance", c.Heartbeat("g", j.MemberID, "ghost", 1), ErrUnknownMemberID)
	wantErr(t, "sync, stale generation", c.Sync(context.Background(), SyncRequest{Group: "g", MemberID: j.MemberID, Generation: 7}).Err, ErrIllegalGeneration)
	wantErr(t, "sync, wrong protocol", c.Sync(context.Background(), SyncRequest{Group: "g", MemberID: j.MemberID, Generation: 1, Protocol: "sticky"}).Err, ErrInconsistentProtocol)

	wantErr(t, "commit", c.ValidateCommit("g", j.MemberID, "", 1), nil)
	wantErr(t, "commit, stale generation", c.ValidateCommit("g", j.MemberID, "", 0), ErrIllegalGeneration)
	wantErr(t, "commit, unknown member", c.ValidateCommit("g", "stranger", "", 1), ErrUnknownMemberID)
	wantErr(t, "simple commit into a live group", c.ValidateCommit("g", "", "", -1), ErrUnknownMemberID)
	wantErr(t, "simple txn commit into a live group", c.ValidateTxnCommit("g", "", "", -1), nil)
}

func TestInconsistentProtocols(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	bad := joinReq("g", "", "a")
	bad.ProtocolType = ""
	wantErr(t, "no protocol type", c.Join(context.Background(), bad).Err, ErrInconsistentProtocol)
	bad = joinReq("g", "", "a")
	bad.Protocols = nil
	wantErr(t, "no protocols", c.Join(context.Background(), bad).Err, ErrInconsistentProtocol)
	if _, ok := c.Describe("g"); ok {
		t.Fatal("a rejected join created the group")
	}

	a := mustJoin(t, c, joinReq("g", "", "a", "range", "roundrobin"))
	other := joinReq("g", "", "b", "range")
	other.ProtocolType = "connect"
	wantErr(t, "other protocol type", c.Join(context.Background(), other).Err, ErrInconsistentProtocol)
	wantErr(t, "no common protocol", c.Join(context.Background(), joinReq("g", "", "b", "sticky")).Err, ErrInconsistentProtocol)
	// A known member may not move off the group's protocols either...
	bch := goJoin(context.Background(), c, joinReq("g", "", "b", "sticky", "roundrobin"))
	waitJoining(t, c, "g", 1)
	wantErr(t, "member switching to an unshared protocol",
		c.Join(context.Background(), joinReq("g", a.MemberID, "a", "cooperative")).Err, ErrInconsistentProtocol)
	// ...but the vote picks the one protocol everyone supports.
	a2 := mustJoin(t, c, joinReq("g", a.MemberID, "a", "range", "roundrobin"))
	if b := recv(t, bch); a2.Protocol != "roundrobin" || b.Protocol != "roundrobin" {
		t.Fatalf("protocol = %q/%q, want roundrobin", a2.Protocol, b.Protocol)
	}
	wantErr(t, "session timeout too short",
		c.Join(context.Background(), JoinRequest{Group: "g", ClientID: "x", ProtocolType: "consumer",
			Protocols: []Protocol{{Name: "range"}}, SessionTimeout: time.Second}).Err, ErrInvalidSessionTimeout)
	wantErr(t, "empty group id", c.Join(context.Background(), joinReq("", "", "x")).Err, ErrInvalidGroupID)
}

func TestProtocolVote(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: time.Second})
	chs := []<-chan JoinResult{
		goJoin(context.Background(), c, joinReq("g", "", "a", "roundrobin", "range", "sticky")),
		goJoin(context.Background(), c, joinReq("g", "", "b", "range", "roundrobin")),
		goJoin(context.Background(), c, joinReq("g", "", "c", "cooperative", "range", "roundrobin")),
	}
	waitJoining(t, c, "g", 3)
	advance(c, clk, time.Second)
	advance(c, clk, time.Second)
	for _, ch := range chs {
		if r := recv(t, ch); r.Protocol != "range" {
			t.Fatalf("protocol = %q, want range (2 votes to 1)", r.Protocol)
		}
	}
}

func TestDelete(t *testing.T) {
	c, _ := newTestCoordinator(t, Options{})
	wantErr(t, "delete unknown", c.Delete("nope"), nil)
	j := mustJoin(t, c, joinReq("g", "", "a"))
	if !c.HasMembers("g") {
		t.Fatal("HasMembers = false")
	}
	wantErr(t, "delete non-empty", c.Delete("g"), ErrNonEmptyGroup)
	c.Leave("g", []LeaveMember{{MemberID: j.MemberID}})
	if c.HasMembers("g") {
		t.Fatal("HasMembers = true after leave")
	}
	wantErr(t, "delete empty", c.Delete("g"), nil)
	if _, ok := c.Describe("g"); ok || len(c.List()) != 0 {
		t.Fatal("deleted group still known")
	}
	// The name can be used again, from generation 1.
	if j := mustJoin(t, c, joinReq("g", "", "a")); j.Generation != 1 {
		t.Fatalf("generation after delete = %d", j.Generation)
	}
}

func TestLeaderMissingSyncRebalances(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: time.Second})
	ach := goJoin(context.Background(), c, joinReq("g", "", "a"))
	waitJoining(t, c, "g", 1)
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 2)
	advance(c, clk, time.Second)
	advance(c, clk, time.Second)
	a, b := recv(t, ach), recv(t, bch)
	bs := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 1})
	waitSyncing(t, c, "g", 1)
	// The leader never syncs (nor heartbeats): its session expires.
	advance(c, clk, testSession)
	wantErr(t, "follower's sync", recv(t, bs).Err, ErrRebalanceInProgress)
	wantErr(t, "expired leader's sync", c.Sync(context.Background(), SyncRequest{Group: "g", MemberID: a.MemberID, Generation: 1}).Err, ErrUnknownMemberID)
	b2 := mustJoin(t, c, joinReq("g", b.MemberID, "b"))
	if b2.Generation != 2 || b2.LeaderID != b.MemberID {
		t.Fatalf("b = %+v", b2)
	}
}

func TestLeaderHeartbeatingButNotSyncing(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: time.Second})
	ach := goJoin(context.Background(), c, joinReq("g", "", "a"))
	waitJoining(t, c, "g", 1)
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 2)
	advance(c, clk, time.Second)
	advance(c, clk, time.Second)
	a, b := recv(t, ach), recv(t, bch)
	bs := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 1})
	waitSyncing(t, c, "g", 1)
	// The leader heartbeats but never syncs: the sync phase times out after
	// the rebalance timeout and the leader is removed.
	for range 4 {
		c.Heartbeat("g", a.MemberID, "", 1)
		advance(c, clk, testRebalance/4)
	}
	wantErr(t, "follower's sync", recv(t, bs).Err, ErrRebalanceInProgress)
	wantErr(t, "leader's heartbeat", c.Heartbeat("g", a.MemberID, "", 1), ErrUnknownMemberID)
}

func TestRebalanceDuringSyncReleasesFollowers(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: time.Second})
	ach := goJoin(context.Background(), c, joinReq("g", "", "a"))
	waitJoining(t, c, "g", 1)
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 2)
	advance(c, clk, time.Second)
	advance(c, clk, time.Second)
	_, b := recv(t, ach), recv(t, bch)
	bs := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 1})
	waitSyncing(t, c, "g", 1)
	cch := goJoin(context.Background(), c, joinReq("g", "", "c"))
	wantErr(t, "follower's sync", recv(t, bs).Err, ErrRebalanceInProgress)
	c.Close()
	wantErr(t, "join after close", recv(t, cch).Err, ErrCoordinatorNotAvailable)
}

func TestAbandonedJoin(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{})
	a, b := twoMemberGroup(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cch := goJoin(ctx, c, joinReq("g", "", "c"))
	waitJoining(t, c, "g", 1)
	cancel()
	wantErr(t, "cancelled join", recv(t, cch).Err, context.Canceled)
	// The new member is gone; the rebalance it started goes on without it.
	wantState(t, c, "g", StatePreparingRebalance)
	d, _ := c.Describe("g")
	if len(d.Members) != 2 {
		t.Fatalf("members after abandoned join: %+v", d.Members)
	}

	// A member that was in the last generation and abandons its rejoin
	// stays a member until its session expires.
	ctx, cancel = context.WithCancel(context.Background())
	ach := goJoin(ctx, c, joinReq("g", a.MemberID, "a"))
	waitJoining(t, c, "g", 1)
	cancel()
	wantErr(t, "cancelled rejoin", recv(t, ach).Err, context.Canceled)
	if d, _ := c.Describe("g"); len(d.Members) != 2 {
		t.Fatalf("members after abandoned rejoin: %+v", d.Members)
	}
	bch := goJoin(context.Background(), c, joinReq("g", b.MemberID, "b"))
	waitJoining(t, c, "g", 1)
	advance(c, clk, testSession)
	if b3 := recv(t, bch); b3.Generation != 3 || len(b3.Members) != 1 || b3.LeaderID != b.MemberID {
		t.Fatalf("b = %+v", b3)
	}
}

func TestCloseReleasesWaiters(t *testing.T) {
	c, clk := newTestCoordinator(t, Options{InitialRebalanceDelay: time.Second})
	ach := goJoin(context.Background(), c, joinReq("g", "", "a"))
	waitJoining(t, c, "g", 1)
	bch := goJoin(context.Background(), c, joinReq("g", "", "b"))
	waitJoining(t, c, "g", 2)
	advance(c, clk, time.Second)
	advance(c, clk, time.Second)
	_, b := recv(t, ach), recv(t, bch)
	bs := goSync(context.Background(), c, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: 1})
	waitSyncing(t, c, "g", 1)
	c2 := goJoin(context.Background(), c, joinReq("h", "", "c")) // in its initial delay
	waitJoining(t, c, "h", 1)
	c.Close()
	wantErr(t, "waiting sync", recv(t, bs).Err, ErrCoordinatorNotAvailable)
	wantErr(t, "waiting join", recv(t, c2).Err, ErrCoordinatorNotAvailable)
	wantErr(t, "heartbeat after close", c.Heartbeat("g", b.MemberID, "", 1), ErrCoordinatorNotAvailable)
	wantErr(t, "join after close", c.Join(context.Background(), joinReq("g", "", "e")).Err, ErrCoordinatorNotAvailable)
	c.Close() // idempotent
}

func TestBackgroundTicker(t *testing.T) {
	c := New(Options{MinSessionTimeout: time.Millisecond, TickInterval: time.Millisecond})
	defer c.Close()
	r := joinReq("g", "", "a")
	r.SessionTimeout = 20 * time.Millisecond
	j := mustJoin(t, c, r)
	mustSync(t, c, SyncRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation})
	// Nobody heartbeats: the ticker expires the session in real time.
	waitFor(t, "the session to expire", func() bool { return groupState(c, "g") == StateEmpty })
}
