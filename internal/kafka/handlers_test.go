package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testConn is a connection to a server with a real metadata store, broker
// and group coordinator but no topics (so no logs are opened).
func testConn(t *testing.T) *conn {
	t.Helper()
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := broker.New(broker.Options{DataDir: t.TempDir(), Defaults: broker.Defaults{Partitions: 3}}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	g := groups.New(groups.Options{ManualTick: true})
	t.Cleanup(g.Close)
	s, err := NewServer(Options{AdvertisedAddr: "broker.test:9092", ClusterID: "cluster-1", DataDir: "/data"}, b, g)
	if err != nil {
		t.Fatal(err)
	}
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return &conn{s: s, nc: nc, ctx: context.Background(), clientID: "cli"}
}

// call runs a request at a version through the dispatch table.
func call[Resp kmsg.Response](t *testing.T, c *conn, req kmsg.Request, version int16) Resp {
	t.Helper()
	req.SetVersion(version)
	resp, err := lookup(req.Key()).handle(c, req)
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp.(Resp)
}

func TestFindCoordinatorShapes(t *testing.T) {
	c := testConn(t)
	for _, tc := range []struct {
		version int16
		keyType int8
		code    int16
	}{
		{0, 0, 0}, {3, 1, 0}, {4, 0, 0}, {4, 1, 0},
		{3, 2, 0}, {4, 2, 0}, // share-group state keys (KIP-932)
		{3, 3, kerr.InvalidRequest.Code}, {4, 3, kerr.InvalidRequest.Code},
	} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorKeys, req.CoordinatorType = "g", []string{"g1", "g2"}, tc.keyType
		resp := call[*kmsg.FindCoordinatorResponse](t, c, req, tc.version)
		if tc.version < 4 {
			if resp.ErrorCode != tc.code || tc.code == 0 && (resp.NodeID != NodeID || resp.Host != "broker.test" || resp.Port != 9092) {
				t.Errorf("v%d type %d: %+v", tc.version, tc.keyType, resp)
			}
			continue
		}
		if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "g2" {
			t.Fatalf("v%d: coordinators %+v", tc.version, resp.Coordinators)
		}
		for _, co := range resp.Coordinators {
			if co.ErrorCode != tc.code || tc.code == 0 && co.NodeID != NodeID {
				t.Errorf("v%d type %d: %+v", tc.version, tc.keyType, co)
			}
		}
	}
}

func TestDescribeClusterEndpointType(t *testing.T) {
	c := testConn(t)
	for _, tc := range []struct {
		version  int16
		endpoint int8
		code     int16
	}{
		{0, 1, 0}, {1, 1, 0}, {1, 2, kerr.UnsupportedEndpointType.Code},
	} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = tc.endpoint
		resp := call[*kmsg.DescribeClusterResponse](t, c, req, tc.version)
		if resp.ErrorCode != tc.code {
			t.Errorf("v%d endpoint %d: code %d, want %d", tc.version, tc.endpoint, resp.ErrorCode, tc.code)
		}
		if tc.code == 0 && (resp.ClusterID != "cluster-1" || resp.ControllerID != NodeID || len(resp.Brokers) != 1) {
			t.Errorf("v%d: %+v", tc.version, resp)
		}
	}
}

// TestGroupLifecycle walks one member through the group APIs: the
// member id round trip, join, sync, describe, list, leave, delete.
func TestGroupLifecycle(t *testing.T) {
	c := testConn(t)
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("sub")
	join.Protocols = append(join.Protocols, p)

	jr := call[*kmsg.JoinGroupResponse](t, c, join, 7)
	if jr.ErrorCode != kerr.MemberIDRequired.Code || jr.MemberID == "" {
		t.Fatalf("first join: code %d, member %q", jr.ErrorCode, jr.MemberID)
	}
	join.MemberID = jr.MemberID
	jr = call[*kmsg.JoinGroupResponse](t, c, join, 7)
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != join.MemberID || deref(jr.Protocol) != "range" ||
		deref(jr.ProtocolType) != "consumer" || len(jr.Members) != 1 {
		t.Fatalf("second join: %+v", jr)
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", join.MemberID, jr.Generation
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = join.MemberID, []byte("assigned")
	sync.GroupAssignment = append(sync.GroupAssignment, a)
	if sr := call[*kmsg.SyncGroupResponse](t, c, sync, 5); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assigned" {
		t.Fatalf("sync: %+v", sr)
	}

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g", "nope"}
	dr := call[*kmsg.DescribeGroupsResponse](t, c, describe, 5)
	if g := dr.Groups[0]; g.State != "Stable" || len(g.Members) != 1 || g.Members[0].ClientID != "cli" ||
		g.Members[0].ClientHost != "/pipe" || string(g.Members[0].MemberAssignment) != "assigned" {
		t.Errorf("describe g: %+v", g)
	}
	if g := dr.Groups[1]; g.State != "Dead" || g.ErrorCode != 0 {
		t.Errorf("describe unknown: %+v", g)
	}

	for _, tc := range []struct {
		states, types []string
		want          []string
	}{
		{nil, nil, []string{"g"}},
		{[]string{"stable"}, nil, []string{"g"}},
		{[]string{"Empty"}, nil, nil},
		{nil, []string{"Classic"}, []string{"g"}},
		{nil, []string{"consumer"}, nil},
	} {
		list := kmsg.NewPtrListGroupsRequest()
		list.StatesFilter, list.TypesFilter = tc.states, tc.types
		var got []string
		for _, g := range call[*kmsg.ListGroupsResponse](t, c, list, 5).Groups {
			got = append(got, g.Group)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("list states %v types %v: %v, want %v", tc.states, tc.types, got, tc.want)
		}
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	if code := call[*kmsg.DeleteGroupsResponse](t, c, del, 2).Groups[0].ErrorCode; code != kerr.NonEmptyGroup.Code {
		t.Errorf("delete with a member: code %d", code)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	for _, id := range []string{join.MemberID, "stranger"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		leave.Members = append(leave.Members, m)
	}
	lr := call[*kmsg.LeaveGroupResponse](t, c, leave, 3)
	if lr.ErrorCode != 0 || len(lr.Members) != 2 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr)
	}

	for _, want := range []int16{0, kerr.GroupIDNotFound.Code} {
		if code := call[*kmsg.DeleteGroupsResponse](t, c, del, 2).Groups[0].ErrorCode; code != want {
			t.Errorf("delete: code %d, want %d", code, want)
		}
	}
}

func TestOffsetCommitAndFetchWithoutTopics(t *testing.T) {
	c := testConn(t)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "missing"
	rt.Partitions = append(rt.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	commit.Topics = append(commit.Topics, rt)
	cr := call[*kmsg.OffsetCommitResponse](t, c, commit, 8)
	if code := cr.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("commit to a missing topic: code %d", code)
	}

	for _, version := range []int16{1, 7, 8} {
		fetch := kmsg.NewPtrOffsetFetchRequest()
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "missing", []int32{0}
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = "missing", []int32{0}
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.Topics = "g", []kmsg.OffsetFetchRequestGroupTopic{gt}
		fetch.Group, fetch.Topics, fetch.Groups = "g", []kmsg.OffsetFetchRequestTopic{ft}, []kmsg.OffsetFetchRequestGroup{rg}
		fr := call[*kmsg.OffsetFetchResponse](t, c, fetch, version)
		var p kmsg.OffsetFetchResponseTopicPartition
		if version >= 8 {
			p = kmsg.OffsetFetchResponseTopicPartition(fr.Groups[0].Topics[0].Partitions[0])
		} else {
			p = fr.Topics[0].Partitions[0]
		}
		if p.Offset != -1 || p.ErrorCode != 0 || deref(p.Metadata) != "" {
			t.Errorf("v%d fetch without a commit: %+v", version, p)
		}
	}
}

func TestAlterList(t *testing.T) {
	for _, tc := range []struct {
		list, items string
		add         bool
		want        string
	}{
		{"delete", "compact", true, "delete,compact"},
		{"delete", "delete", true, "delete"},
		{"", "compact", true, "compact"},
		{"delete, compact", "delete", false, "compact"},
		{"delete", "compact", false, "delete"},
		{"compact,delete", "compact,delete", false, ""},
	} {
		if got := alterList(tc.list, tc.items, tc.add); got != tc.want {
			t.Errorf("alterList(%q, %q, %v) = %q, want %q", tc.list, tc.items, tc.add, got, tc.want)
		}
	}
}

func TestCodeAndMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int16
	}{
		{nil, 0},
		{reqErr(kerr.InvalidReplicationFactor, "rf"), kerr.InvalidReplicationFactor.Code},
		{broker.ErrUnknownTopic, kerr.UnknownTopicOrPartition.Code},
		{errors.New("boom"), kerr.UnknownServerError.Code},
	} {
		code, msg := codeAndMessage(tc.err)
		if code != tc.code || (msg == nil) != (tc.err == nil) {
			t.Errorf("codeAndMessage(%v) = %d, %v", tc.err, code, msg)
		}
	}
}

func TestHelpers(t *testing.T) {
	dup := duplicated([]string{"a", "b", "a", "c", "b"}, func(s string) string { return s })
	if len(dup) != 2 || !dup["a"] || !dup["b"] {
		t.Errorf("duplicated = %v", dup)
	}
	if got := clientHost(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5}); got != "/10.0.0.1" {
		t.Errorf("clientHost = %q", got)
	}
	keys := []string{}
	for _, e := range testConn(t).s.broker.BrokerConfigs(NodeID) {
		keys = append(keys, e.Key)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("broker configs not sorted: %v", keys)
	}
	for _, k := range []string{"log.retention.ms", "num.partitions", "auto.create.topics.enable", "log.cleaner.min.cleanable.ratio", "compression.type"} {
		if !slices.Contains(keys, k) {
			t.Errorf("broker configs lack %s", k)
		}
	}
}

// TestEmptyRequestsEncode answers an empty request of every group and admin
// API at every supported version and encodes the answer.
func TestEmptyRequestsEncode(t *testing.T) {
	c := testConn(t)
	c.ctx = canceled() // a join or sync that would block gives up at once
	mine := []int16{8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 32, 33, 35, 37, 42, 44, 47, 60}
	for _, key := range mine {
		a := lookup(key)
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			resp, err := a.handle(c, req)
			if abandoned(err) {
				continue // a join or sync the connection gave up on has no answer
			}
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			resp.SetVersion(v)
			_ = resp.AppendTo(nil)
		}
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// ListOffsets v0 (Burrow 1.2 sends it) answers the offset v1+ gives as the
// only entry of OldStyleOffsets.
func TestListOffsetsV0(t *testing.T) {
	c := testConn(t)
	if _, err := c.s.broker.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := c.s.broker.Partition("t", 0)
	if _, pend, err := p.Append(storage.BuildBatch(0, 1, [][]byte{[]byte("a"), []byte("b")})); err != nil || pend.Wait() != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "t"
	for _, ts := range []int64{-1, -2} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.MaxNumOffsets = ts, 1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := call[*kmsg.ListOffsetsResponse](t, c, req, 0)
	got := resp.Topics[0].Partitions
	if len(got) != 2 || fmt.Sprint(got[0].OldStyleOffsets) != "[2]" || fmt.Sprint(got[1].OldStyleOffsets) != "[0]" || got[0].ErrorCode != 0 {
		t.Fatalf("v0 answer %+v", got)
	}
	// What v0 encodes is what a v0 reader decodes.
	back := kmsg.NewPtrListOffsetsResponse()
	back.Version = 0
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil || fmt.Sprint(back.Topics[0].Partitions[0].OldStyleOffsets) != "[2]" {
		t.Fatalf("v0 round trip: %v %+v", err, back.Topics)
	}
}
