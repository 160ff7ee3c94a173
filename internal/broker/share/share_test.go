package share

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

// check verifies a partition's invariants: the window is ordered, every
// record kept lies in it, Start is the first of them (or End), and the
// acquired count is the records with an owner.
func check(t testing.TB, p *Partition) {
	t.Helper()
	if p.Start > p.End {
		t.Fatalf("start %d past end %d", p.Start, p.End)
	}
	first, owned := p.End, 0
	for off, r := range p.recs {
		if off < p.Start || off >= p.End {
			t.Fatalf("record %d outside the window %d..%d", off, p.Start, p.End)
		}
		first = min(first, off)
		if r.owner != "" {
			owned++
		}
		if r.count < 1 {
			t.Fatalf("record %d with delivery count %d", off, r.count)
		}
	}
	if first != p.Start {
		t.Fatalf("start %d, first record to settle %d", p.Start, first)
	}
	if owned != p.acquired {
		t.Fatalf("acquired count %d, records owned %d", p.acquired, owned)
	}
}

func TestPartitionAcknowledgements(t *testing.T) {
	p := &Partition{}
	p.Init(10)
	lock := t0.Add(30 * time.Second)
	if r := p.AcquireNew("a", lock, 10, 14); r != (Range{10, 14, 1}) {
		t.Fatalf("acquired %+v", r)
	}
	check(t, p)
	// Another member's acknowledgement changes nothing.
	if _, err := p.Ack("b", 10, 10, []int8{AckAccept}, lock, 5); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("b acking a's record: %v", err)
	}
	// Per offset: accept 10, release 11, reject 12, gap 13, renew 14.
	c, err := p.Ack("a", 10, 14, []int8{AckAccept, AckRelease, AckReject, AckGap, AckRenew}, t0.Add(time.Hour), 5)
	if err != nil {
		t.Fatal(err)
	}
	if c != (AckCounts{Accepted: 2, Released: 1, Rejected: 1, Renewed: 1}) {
		t.Fatalf("counts %+v", c)
	}
	check(t, p)
	if p.Start != 11 || p.Pending() != 2 || p.Acquired() != 1 {
		t.Fatalf("start %d pending %d acquired %d, want 11, 2 (11 released, 14 renewed), 1", p.Start, p.Pending(), p.Acquired())
	}
	// The released record comes back, with delivery count 2, to anyone.
	if rs := p.AcquireAvailable("b", lock, 10); len(rs) != 1 || rs[0] != (Range{11, 11, 2}) {
		t.Fatalf("reacquired %+v", rs)
	}
	// The renewed lock holds past the old deadline; b's expires.
	if rel, arch := p.Expire(lock, 5); rel != 1 || arch != 0 {
		t.Fatalf("expired %d/%d, want b's record only", rel, arch)
	}
	check(t, p)
	// A settled offset acknowledged again is no error (a client's gap),
	// an accepted one released is.
	if _, err := p.Ack("a", 10, 10, []int8{AckAccept}, lock, 5); err != nil {
		t.Fatalf("accepting a settled offset: %v", err)
	}
	if _, err := p.Ack("a", 12, 12, []int8{AckRelease}, lock, 5); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("releasing a rejected record: %v", err)
	}
	if _, err := p.Ack("a", 14, 20, []int8{AckAccept}, lock, 5); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("acknowledging past the end: %v", err)
	}
	if _, err := p.Ack("a", 14, 14, []int8{9}, lock, 5); !errors.Is(err, ErrInvalidAckType) {
		t.Fatalf("unknown type: %v", err)
	}
	// A range from far below zero must not look short by overflow.
	if _, err := p.Ack("a", math.MinInt64, 14, []int8{AckAccept}, lock, 5); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("range from MinInt64: %v", err)
	}
	if _, err := p.Ack("a", 13, 14, []int8{1, 1, 1}, lock, 5); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("types not matching the range: %v", err)
	}
}

func TestPartitionDeliveryLimitArchives(t *testing.T) {
	p := &Partition{}
	p.Init(0)
	p.AcquireNew("a", t0, 0, 0)
	for delivery := 1; ; delivery++ {
		c, err := p.Ack("a", 0, 0, []int8{AckRelease}, t0, 3)
		if err != nil {
			t.Fatal(err)
		}
		check(t, p)
		if delivery == 3 {
			if c.Archived != 1 || p.Pending() != 0 || p.Start != 1 {
				t.Fatalf("after 3 deliveries: %+v, pending %d, start %d", c, p.Pending(), p.Start)
			}
			break
		}
		if c.Released != 1 {
			t.Fatalf("delivery %d: %+v", delivery, c)
		}
		if rs := p.AcquireAvailable("a", t0, 1); len(rs) != 1 || int(rs[0].Count) != delivery+1 {
			t.Fatalf("delivery %d: reacquired %+v", delivery+1, rs)
		}
	}
	// A lock timing out counts as a delivery too.
	p.AcquireNew("a", t0, 1, 1)
	if rel, _ := p.Expire(t0, 2); rel != 1 {
		t.Fatalf("first timeout released %d", rel)
	}
	p.AcquireAvailable("a", t0, 1)
	if _, arch := p.Expire(t0, 2); arch != 1 || p.Start != 2 {
		t.Fatalf("timed out twice at limit 2: archived %d, start %d", arch, p.Start)
	}
	check(t, p)
}

func TestPartitionLimitsAndClamp(t *testing.T) {
	p := &Partition{}
	p.Init(0)
	p.AcquireNew("a", t0, 0, 9)
	if p.Room(10) != 0 || p.Room(15) != 5 {
		t.Fatalf("room %d/%d", p.Room(10), p.Room(15))
	}
	p.Skip(12) // a transaction marker and an aborted batch
	check(t, p)
	if p.End != 12 || p.Start != 0 {
		t.Fatalf("window %d..%d", p.Start, p.End)
	}
	p.Clamp(5) // retention deleted 0..4
	check(t, p)
	if p.Start != 5 || p.Acquired() != 5 {
		t.Fatalf("after clamp: start %d acquired %d", p.Start, p.Acquired())
	}
	p.Ack("a", 5, 9, []int8{AckAccept}, t0, 5)
	if p.Start != 12 {
		t.Fatalf("everything settled: start %d, want the end 12", p.Start)
	}
}

func TestPartitionStateRoundTrip(t *testing.T) {
	p := &Partition{}
	p.Init(100)
	p.AcquireNew("a", t0, 100, 104)
	p.Ack("a", 100, 100, []int8{AckAccept}, t0, 5)
	p.Ack("a", 102, 102, []int8{AckRelease}, t0, 5)
	q := RestorePartition(p.State())
	check(t, q)
	if q.Start != 101 || q.End != 105 || q.Pending() != 4 || q.Acquired() != 0 {
		t.Fatalf("restored %+v", q.State())
	}
	// A damaged state cannot make a restore loop over the int64 line.
	huge := RestorePartition(PartitionState{Start: math.MinInt64, End: math.MaxInt64, Records: []RecState{{First: math.MinInt64, Last: math.MaxInt64, Count: 1}}})
	if huge.Pending() != 0 || huge.Start < 0 {
		t.Fatalf("restored a damaged state: start %d, pending %d", huge.Start, huge.Pending())
	}
	// Restored records are available with their counts.
	rs := q.AcquireAvailable("b", t0, 10)
	if fmt.Sprint(rs) != fmt.Sprint([]Range{{101, 104, 2}}) {
		t.Fatalf("reacquired %+v", rs)
	}
}

func TestGroupMembershipAndSessions(t *testing.T) {
	g := NewGroup("g")
	topics := []TopicInfo{{ID: TopicID{1}, Name: "t", Partitions: 2}, {ID: TopicID{2}, Name: "u", Partitions: 1}}
	res, err := g.Heartbeat("m1", 0, nil, []string{"t"}, "c", "h", topics, t0, 5)
	if err != nil || res.Epoch != 1 || len(res.Assignment) != 1 || len(res.Assignment[0].Partitions) != 2 {
		t.Fatalf("join: %+v %v", res, err)
	}
	res2, _ := g.Heartbeat("m2", 0, nil, []string{"t", "u"}, "c", "h", topics, t0, 5)
	if len(res2.Assignment) != 2 {
		t.Fatalf("m2 assigned %+v, want every partition of t and u", res2.Assignment)
	}
	// Unchanged: no assignment sent.
	if res, _ = g.Heartbeat("m1", res.Epoch, nil, nil, "c", "h", topics, t0, 5); res.Assignment != nil {
		t.Fatalf("steady heartbeat sent %+v", res.Assignment)
	}
	if _, err := g.Heartbeat("m1", res.Epoch+5, nil, nil, "c", "h", topics, t0, 5); !errors.Is(err, ErrFencedEpoch) {
		t.Fatalf("epoch ahead: %v", err)
	}
	if _, err := g.Heartbeat("zz", 3, nil, nil, "c", "h", topics, t0, 5); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("unknown member: %v", err)
	}

	tp := TP{Topic: TopicID{1}, Partition: 0}
	if _, err := g.OpenSession("m1", 1, true, nil, nil, nil, 5); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("no session yet: %v", err)
	}
	if _, err := g.OpenSession("m1", 0, false, nil, nil, nil, 5); !errors.Is(err, ErrSessionEpoch) {
		t.Fatalf("acknowledge opening a session: %v", err)
	}
	parts, err := g.OpenSession("m1", 0, true, []TP{tp}, nil, "conn1", 5)
	if err != nil || !parts[tp] {
		t.Fatalf("open: %v %v", parts, err)
	}
	if _, err := g.OpenSession("m1", 2, true, nil, nil, nil, 5); !errors.Is(err, ErrSessionEpoch) {
		t.Fatalf("skipped epoch: %v", err)
	}
	if parts, err = g.OpenSession("m1", 1, true, nil, []TP{tp}, nil, 5); err != nil || parts[tp] {
		t.Fatalf("forget: %v %v", parts, err)
	}
	g.Partition(tp).Init(0)
	g.Partition(tp).AcquireNew("m1", t0, 0, 3)
	// The connection closing ends the session and releases m1's records;
	// another connection's close does not.
	if closed, _ := g.CloseConnSession("m1", "conn2", 5); closed {
		t.Fatal("closed by another connection")
	}
	if closed, n := g.CloseConnSession("m1", "conn1", 5); !closed || n != 4 {
		t.Fatalf("connection close: %v, released %d", closed, n)
	}
	// A silent member is removed.
	g.Heartbeat("m2", res2.Epoch, nil, nil, "c", "h", topics, t0.Add(40*time.Second), 5)
	g.ExpireMembers(t0.Add(50*time.Second), 45*time.Second, 5)
	if g.HasMember("m1") || !g.HasMember("m2") || g.State() != "Stable" {
		t.Fatalf("after expiry: m1 %v m2 %v", g.HasMember("m1"), g.HasMember("m2"))
	}
	if _, err := g.Heartbeat("m2", -1, nil, nil, "c", "h", topics, t0, 5); err != nil || g.State() != "Empty" {
		t.Fatalf("leave: %v, state %s", err, g.State())
	}
}

func TestConfigs(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{ConfigAutoOffsetReset, "earliest", true}, {ConfigAutoOffsetReset, "by_duration:PT1H", false},
		{ConfigLockDuration, "1000", true}, {ConfigLockDuration, "999", false},
		{ConfigDeliveryLimit, "10", true}, {ConfigDeliveryLimit, "11", false},
		{ConfigMaxRecordLocks, "abc", false}, {"share.isolation.level", "read_committed", false},
	} {
		if err := CheckConfig(tc.name, tc.value); (err == nil) != tc.ok {
			t.Errorf("%s=%s: %v", tc.name, tc.value, err)
		}
	}
	c := Resolve(DefaultConfig(), map[string]string{ConfigLockDuration: "1500", ConfigAutoOffsetReset: "earliest"})
	if c.LockDuration != 1500*time.Millisecond || !c.Earliest || c.DeliveryLimit != 5 || c.MaxRecordLocks != 2000 {
		t.Fatalf("resolved %+v", c)
	}
}

// FuzzPartition runs random commands (acknowledgements come from the
// network) against a share-partition and checks its invariants after each.
func FuzzPartition(f *testing.F) {
	f.Add([]byte{0, 5, 1, 0, 2, 2, 3, 1, 4, 0})
	f.Add([]byte{0, 9, 2, 1, 1, 3, 5, 2, 6, 1, 0, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := &Partition{}
		p.Init(0)
		now := t0
		members := []string{"a", "b"}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%8, int64(ops[i+1])
			m := members[arg%2]
			switch op {
			case 0:
				n := arg%16 + 1
				if p.Room(20) >= int(n) {
					p.AcquireNew(m, now.Add(time.Second), p.End, p.End+n-1)
				}
			case 1:
				p.AcquireAvailable(m, now.Add(time.Second), int(arg%8))
			case 2, 3:
				first := p.Start + arg%8
				last := first + int64(ops[i]>>4)%4
				p.Ack(m, first, last, []int8{int8(arg % 5)}, now.Add(time.Second), 3)
			case 4:
				now = now.Add(time.Duration(arg) * 10 * time.Millisecond)
				p.Expire(now, 3)
			case 5:
				p.ReleaseMember(m, 3)
			case 6:
				if p.Acquired() == 0 {
					p.Skip(p.End + arg%4)
				}
			case 7:
				q := RestorePartition(p.State())
				check(t, q)
			}
			check(t, p)
		}
	})
}
