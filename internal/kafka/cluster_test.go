package kafka

import (
	"context"
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

// threeNodes is a made-up cluster seen from broker 1: brokers 1 and 2
// have a TLS listener, 3 has none; of topic "t", partition 0 is led here,
// 1 by broker 2 at epoch 7 with 3 out of sync, and 2 has no leader, its
// replica on 3 offline. Broker 3 is the controller and coordinates
// everything but the group "lost".
type threeNodes struct{}

func (threeNodes) Self() int32 { return 1 }

func (threeNodes) Brokers() []Broker {
	return []Broker{
		{ID: 1, Rack: "a", Addr: "n1.test:9092", TLSAddr: "n1.test:9093"},
		{ID: 2, Rack: "b", Addr: "n2.test:9092", TLSAddr: "n2.test:9093"},
		{ID: 3, Rack: "c", Addr: "n3.test:9092"},
	}
}

func (threeNodes) Controller() int32 { return 3 }

func (threeNodes) Coordinator(_ int8, key string) int32 {
	if key == "lost" {
		return -1
	}
	return 3
}

func (threeNodes) Partition(_ string, p int32) Replicas {
	switch p {
	case 0:
		return Replicas{Leader: 1, LeaderEpoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}
	case 1:
		return Replicas{Leader: 2, LeaderEpoch: 7, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 1}}
	default:
		return Replicas{Leader: -1, LeaderEpoch: 4, Replicas: []int32{3, 2}, ISR: []int32{2}, Offline: []int32{3}}
	}
}

// clusterConn is a connection to broker 1 of threeNodes, whose broker
// holds topic "t" with three partitions.
func clusterConn(t *testing.T, cl Cluster) *conn {
	t.Helper()
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := broker.New(broker.Options{
		DataDir: t.TempDir(), AutoCreateTopics: true, Defaults: broker.Defaults{Partitions: 3},
		Storage: storage.Options{Sync: storage.SyncNever},
	}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if _, err := b.TopicOrCreate("t"); err != nil {
		t.Fatal(err)
	}
	g := groups.New(groups.Options{ManualTick: true})
	t.Cleanup(g.Close)
	s, err := NewServer(Options{AdvertisedAddr: "n1.test:9092", ClusterID: "c", DataDir: "/data", Cluster: cl}, b, g)
	if err != nil {
		t.Fatal(err)
	}
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return &conn{s: s, nc: nc, ctx: context.Background(), clientID: "cli"}
}

// wireTrip encodes resp at its version and decodes it back, as a client
// would read it, so that tagged fields are checked on the wire.
func wireTrip[Resp kmsg.Response](t *testing.T, resp Resp, into Resp) Resp {
	t.Helper()
	into.SetVersion(resp.GetVersion())
	if err := into.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("decoding our own %T: %v", resp, err)
	}
	return into
}

type brokerSeen struct {
	id   int32
	host string
	port int32
	rack string
}

func TestMetadataListsTheCluster(t *testing.T) {
	c := clusterConn(t, threeNodes{})
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("t")
	req.Topics = append(req.Topics, rt)
	resp := wireTrip(t, call[*kmsg.MetadataResponse](t, c, req, 12), kmsg.NewPtrMetadataResponse())

	var seen []brokerSeen
	for _, b := range resp.Brokers {
		seen = append(seen, brokerSeen{b.NodeID, b.Host, b.Port, deref(b.Rack)})
	}
	want := []brokerSeen{{1, "n1.test", 9092, "a"}, {2, "n2.test", 9092, "b"}, {3, "n3.test", 9092, "c"}}
	if !slices.Equal(seen, want) {
		t.Fatalf("brokers %v, want %v", seen, want)
	}
	if resp.ControllerID != 3 {
		t.Errorf("controller %d, want 3", resp.ControllerID)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("topics %+v", resp.Topics)
	}
	for _, p := range resp.Topics[0].Partitions {
		r := threeNodes{}.Partition("t", p.Partition)
		wantCode := int16(0)
		if r.Leader < 0 {
			wantCode = kerr.LeaderNotAvailable.Code
		}
		if p.Leader != r.Leader || p.LeaderEpoch != r.LeaderEpoch || !slices.Equal(p.Replicas, r.Replicas) ||
			!slices.Equal(p.ISR, r.ISR) || !slices.Equal(p.OfflineReplicas, r.Offline) || p.ErrorCode != wantCode {
			t.Errorf("partition %d: %+v, want %+v (error %d)", p.Partition, p, r, wantCode)
		}
	}

	// A client of the TLS listener is told the TLS listeners; broker 3
	// has none, so it is left out.
	c.overTLS = true
	c.adv = advertised{"n1.test", 9093}
	resp = call[*kmsg.MetadataResponse](t, c, req, 12)
	seen = seen[:0]
	for _, b := range resp.Brokers {
		seen = append(seen, brokerSeen{b.NodeID, b.Host, b.Port, deref(b.Rack)})
	}
	want = []brokerSeen{{1, "n1.test", 9093, "a"}, {2, "n2.test", 9093, "b"}}
	if !slices.Equal(seen, want) {
		t.Fatalf("TLS brokers %v, want %v", seen, want)
	}
}

func TestDescribeClusterAndCoordinatorInACluster(t *testing.T) {
	c := clusterConn(t, threeNodes{})
	dc := call[*kmsg.DescribeClusterResponse](t, c, kmsg.NewPtrDescribeClusterRequest(), 1)
	if dc.ErrorCode != 0 || dc.ControllerID != 3 || len(dc.Brokers) != 3 || deref(dc.Brokers[1].Rack) != "b" || dc.Brokers[2].Host != "n3.test" {
		t.Fatalf("describe cluster %+v", dc)
	}

	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = "g"
	fc := call[*kmsg.FindCoordinatorResponse](t, c, req, 3)
	if fc.ErrorCode != 0 || fc.NodeID != 3 || fc.Host != "n3.test" || fc.Port != 9092 {
		t.Fatalf("coordinator of g: %+v", fc)
	}
	req.CoordinatorKeys = []string{"g", "lost"}
	fc = call[*kmsg.FindCoordinatorResponse](t, c, req, 4)
	if len(fc.Coordinators) != 2 || fc.Coordinators[0].NodeID != 3 ||
		fc.Coordinators[1].ErrorCode != kerr.CoordinatorNotAvailable.Code || fc.Coordinators[1].NodeID != -1 {
		t.Fatalf("coordinators %+v", fc.Coordinators)
	}
}

func TestDescribeLogDirsOnlyHostedReplicas(t *testing.T) {
	c := clusterConn(t, threeNodes{})
	resp := call[*kmsg.DescribeLogDirsResponse](t, c, kmsg.NewPtrDescribeLogDirsRequest(), 4)
	var parts []int32
	for _, d := range resp.Dirs {
		for _, tp := range d.Topics {
			if tp.Topic == "t" {
				for _, p := range tp.Partitions {
					parts = append(parts, p.Partition)
				}
			}
		}
	}
	if !slices.Equal(parts, []int32{0, 1}) { // 2's replicas are on 3 and 2
		t.Fatalf("partitions here %v, want [0 1]", parts)
	}
}

// produce sends one batch to each partition of "t" at version v and
// returns the decoded answer.
func produceAll(t *testing.T, c *conn, v int16) *kmsg.ProduceResponse {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(v)
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	for p := range int32(3) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = producedBatch(t)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := lookup(0).prepare(c, req)()
	if err != nil {
		t.Fatal(err)
	}
	return wireTrip(t, resp.(*kmsg.ProduceResponse), kmsg.NewPtrProduceResponse())
}

func TestProduceToAFollowerIsNotLeader(t *testing.T) {
	c := clusterConn(t, threeNodes{})
	resp := produceAll(t, c, 11)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 {
		t.Errorf("partition 0, led here: error %d", ps[0].ErrorCode)
	}
	if ps[1].ErrorCode != kerr.NotLeaderForPartition.Code || ps[1].CurrentLeader.LeaderID != 2 || ps[1].CurrentLeader.LeaderEpoch != 7 {
		t.Errorf("partition 1, led by 2: %+v", ps[1])
	}
	if ps[2].ErrorCode != kerr.NotLeaderForPartition.Code || ps[2].CurrentLeader.LeaderID != -1 {
		t.Errorf("partition 2, no leader: %+v", ps[2])
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 2 || resp.Brokers[0].Host != "n2.test" || resp.Brokers[0].Port != 9092 || deref(resp.Brokers[0].Rack) != "b" {
		t.Errorf("node endpoints %+v, want broker 2's alone", resp.Brokers)
	}
	// Before v10 there is no current leader to tell.
	resp = produceAll(t, c, 9)
	if ps := resp.Topics[0].Partitions; ps[1].ErrorCode != kerr.NotLeaderForPartition.Code || ps[1].CurrentLeader.LeaderID != -1 || len(resp.Brokers) != 0 {
		t.Errorf("v9: %+v, brokers %+v", ps[1], resp.Brokers)
	}
}

// A server without a Cluster is a single node: its answers are those of
// SingleNode, and every partition takes produces.
func TestSingleNodeView(t *testing.T) {
	c := clusterConn(t, nil)
	if !c.s.single || c.s.self != NodeID {
		t.Fatalf("default cluster: single %v, self %d", c.s.single, c.s.self)
	}
	for _, p := range produceAll(t, c, 11).Topics[0].Partitions {
		if p.ErrorCode != 0 || p.CurrentLeader.LeaderID != -1 {
			t.Errorf("partition %d: %+v", p.Partition, p)
		}
	}
	req := kmsg.NewPtrMetadataRequest()
	resp := call[*kmsg.MetadataResponse](t, c, req, 12)
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != NodeID || resp.Brokers[0].Rack != nil || resp.ControllerID != NodeID {
		t.Fatalf("brokers %+v, controller %d", resp.Brokers, resp.ControllerID)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.Leader != NodeID || p.LeaderEpoch != 0 || !slices.Equal(p.Replicas, []int32{NodeID}) || !slices.Equal(p.ISR, []int32{NodeID}) || len(p.OfflineReplicas) != 0 {
			t.Errorf("partition %+v", p)
		}
	}
}

func TestFetchFromAFollowerIsNotLeader(t *testing.T) {
	c := clusterConn(t, threeNodes{})
	produceAll(t, c, 11) // a record in partition 0, led here
	topic, _ := c.s.broker.Topic("t")
	fetch := func(v int16) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.SessionEpoch = -1
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "t", topic.ID
		for p := range int32(3) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return wireTrip(t, call[*kmsg.FetchResponse](t, c, req, v), kmsg.NewPtrFetchResponse())
	}
	resp := fetch(16)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || len(ps[0].RecordBatches) == 0 {
		t.Errorf("partition 0, led here: %+v", ps[0])
	}
	if ps[1].ErrorCode != kerr.NotLeaderForPartition.Code || ps[1].CurrentLeader.LeaderID != 2 || ps[1].CurrentLeader.LeaderEpoch != 7 {
		t.Errorf("partition 1, led by 2: %+v", ps[1])
	}
	if ps[2].ErrorCode != kerr.NotLeaderForPartition.Code || ps[2].CurrentLeader.LeaderID != -1 {
		t.Errorf("partition 2, no leader: %+v", ps[2])
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 2 || resp.Brokers[0].Host != "n2.test" || deref(resp.Brokers[0].Rack) != "b" {
		t.Errorf("node endpoints %+v, want broker 2's alone", resp.Brokers)
	}
	// v12-15: the current leader without endpoints; before v12 neither.
	if resp := fetch(12); resp.Topics[0].Partitions[1].CurrentLeader.LeaderID != 2 || len(resp.Brokers) != 0 {
		t.Errorf("v12: %+v, brokers %+v", resp.Topics[0].Partitions[1], resp.Brokers)
	}
	if resp := fetch(11); resp.Topics[0].Partitions[1].ErrorCode != kerr.NotLeaderForPartition.Code || resp.Topics[0].Partitions[1].CurrentLeader.LeaderID != -1 {
		t.Errorf("v11: %+v", resp.Topics[0].Partitions[1])
	}
}
