package kafka

import (
	"context"
	"net"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzShareRequests runs share group requests (heartbeat, fetch,
// acknowledge, offsets, describe) with fuzzed fields against one real
// broker holding a topic with records and a joined member, so that
// whatever a client sends (offsets out of range, reversed or huge
// acknowledgement ranges, unknown types, epochs, partitions and topic ids)
// is answered without panicking or hanging.
func FuzzShareRequests(f *testing.F) {
	m, err := meta.Open(f.TempDir(), meta.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	b, err := broker.New(broker.Options{DataDir: f.TempDir(), Defaults: broker.Defaults{Partitions: 1}}, m)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	tp, err := b.CreateTopic("t", 2, nil, false)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range tp.Partitions {
		if _, pend, err := p.Append(storage.BuildBatch(0, 1, [][]byte{[]byte("a"), []byte("b"), []byte("c")})); err != nil || pend.Wait() != nil {
			f.Fatal(err)
		}
	}
	g := groups.New(groups.Options{ManualTick: true})
	f.Cleanup(g.Close)
	s, err := NewServer(Options{AdvertisedAddr: "broker.test:9092", ClusterID: "cluster-1", DataDir: "/data"}, b, g)
	if err != nil {
		f.Fatal(err)
	}
	nc, peer := net.Pipe()
	f.Cleanup(func() { nc.Close(); peer.Close() })
	c := &conn{s: s, nc: nc, ctx: context.Background(), clientID: "cli"}
	if err := b.Shares().AlterConfigs("g", map[string]string{"share.auto.offset.reset": "earliest"}, nil, false); err != nil {
		f.Fatal(err)
	}
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = "g", "member-1", []string{"t"}
	if resp, err := lookup(76).handle(c, hb); err != nil || resp.(*kmsg.ShareGroupHeartbeatResponse).ErrorCode != 0 {
		f.Fatalf("join: %v %+v", err, resp)
	}

	// Requests are built from fuzzed fields, not decoded from fuzzed
	// bytes: decoding is kmsg's (FuzzDecodeRequest); this target is about
	// what the share handlers and the core make of any values.
	f.Add(uint8(1), int32(0), int64(0), int64(1), []byte{1}, int32(0), int32(2), false)
	f.Add(uint8(1), int32(1), int64(0), int64(2), []byte{2}, int32(1), int32(5), false)
	f.Add(uint8(2), int32(2), int64(0), int64(2), []byte{1, 3, 2}, int32(1), int32(1), false)
	f.Add(uint8(2), int32(-1), int64(-9), int64(1<<40), []byte{4}, int32(0), int32(0), true)
	f.Add(uint8(3), int32(0), int64(1), int64(0), []byte(nil), int32(0), int32(0), false)
	f.Add(uint8(4), int32(-1), int64(0), int64(0), []byte(nil), int32(0), int32(0), false)
	f.Add(uint8(5), int32(0), int64(2), int64(0), []byte(nil), int32(0), int32(0), false)
	f.Add(uint8(6), int32(0), int64(0), int64(0), []byte(nil), int32(-1), int32(0), false)

	f.Fuzz(func(t *testing.T, op uint8, epoch int32, first, last int64, types []byte, partition int32, maxRecords int32, otherTopic bool) {
		topicID := tp.ID
		if otherTopic {
			topicID[0] ^= 0xff
		}
		ackTypes := make([]int8, len(types))
		for i, b := range types {
			ackTypes[i] = int8(b)
		}
		var req kmsg.Request
		switch op % 7 {
		case 0: // heartbeat
			r := kmsg.NewPtrShareGroupHeartbeatRequest()
			r.GroupID, r.MemberID, r.MemberEpoch, r.SubscribedTopicNames = "g", "member-1", epoch, []string{"t"}
			req = r
		case 1, 2: // fetch, with acknowledgements
			r := kmsg.NewPtrShareFetchRequest()
			r.GroupID, r.MemberID, r.ShareSessionEpoch, r.MaxRecords, r.MaxBytes = kmsg.StringPtr("g"), kmsg.StringPtr("member-1"), epoch, maxRecords, maxRecords*100
			p := kmsg.ShareFetchRequestTopicPartition{Partition: partition}
			if op%7 == 2 {
				p.AcknowledgementBatches = []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{{FirstOffset: first, LastOffset: last, AcknowledgeTypes: ackTypes}}
			}
			r.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: topicID, Partitions: []kmsg.ShareFetchRequestTopicPartition{p}}}
			r.IsRenewAck = len(types) > 0 && types[0] == 4
			req = r
		case 3: // acknowledge
			r := kmsg.NewPtrShareAcknowledgeRequest()
			r.GroupID, r.MemberID, r.ShareSessionEpoch = kmsg.StringPtr("g"), kmsg.StringPtr("member-1"), epoch
			r.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: topicID, Partitions: []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: partition,
				AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: first, LastOffset: last, AcknowledgeTypes: ackTypes}}}}}}
			req = r
		case 4: // offsets described
			r := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
			r.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "g", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "t", Partitions: []int32{partition}}}}}
			req = r
		case 5: // offsets altered (refused while the member is there)
			r := kmsg.NewPtrAlterShareGroupOffsetsRequest()
			r.GroupID = "g"
			r.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: partition, StartOffset: first}}}}
			req = r
		case 6:
			r := kmsg.NewPtrShareGroupDescribeRequest()
			r.GroupIDs = []string{"g", ""}
			req = r
		}
		a := lookup(req.Key())
		req.SetVersion(a.max)
		if _, err := a.handle(c, req); err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(a.key), err)
		}
		// Whatever happened, the member can still heartbeat and fetch.
		keep := kmsg.NewPtrShareGroupHeartbeatRequest()
		keep.GroupID, keep.MemberID, keep.SubscribedTopicNames = "g", "member-1", []string{"t"}
		if resp, err := lookup(76).handle(c, keep); err != nil || resp.(*kmsg.ShareGroupHeartbeatResponse).ErrorCode != 0 {
			t.Fatalf("rejoin: %v %+v", err, resp)
		}
	})
}
