package test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterCommittedOffsetsSurviveCoordinatorLoss: in a cluster a
// group's committed offsets are replicated (metadata commands): when the
// group's coordinator is killed, the group's new coordinator on another
// node answers OffsetFetch with them, and a consumer of the group resumes
// where the group left off.
func TestClusterCommittedOffsetsSurviveCoordinatorLoss(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 30*time.Second, "three nodes, one leader", func() bool { return agreedLeader(t, nodes, 3, all) != 0 })
	seeds := []string{nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := ctxT(t, 90*time.Second)
	const topic, group = "offsets-ha", "ha-group"
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 60, LeaderEpoch: -1, Metadata: "m"})
	waitFor(t, 20*time.Second, "the commit", func() bool {
		r, err := adm.CommitOffsets(ctx, group, offs)
		return err == nil && r.Ok()
	})
	coords := adm.FindGroupCoordinators(ctx, group)
	co, ok := coords[group]
	if !ok || co.Err != nil {
		t.Fatalf("coordinator: %+v", coords)
	}
	t.Logf("group coordinated by node %d; killing it", co.NodeID)
	victim := nodes[co.NodeID-1]
	victim.Kill()

	var survivors []string
	for _, b := range nodes {
		if b != victim {
			survivors = append(survivors, b.Kafka)
		}
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(survivors...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm2 := kadm.NewClient(cl2)
	var got kadm.OffsetResponses
	waitFor(t, 30*time.Second, "OffsetFetch from the new coordinator", func() bool {
		got, err = adm2.FetchOffsets(ctxT(t, 5*time.Second), group)
		return err == nil && got.Error() == nil
	})
	o, ok := got.Lookup(topic, 0)
	if !ok || o.At != 60 || o.Metadata != "m" {
		t.Fatalf("after the coordinator's loss: %+v (found %v), want offset 60", o, ok)
	}
	// A consumer of the group resumes there.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(survivors...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fs := consumer.PollRecords(ctx, 1)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if r := fs.Records(); len(r) == 0 || r[0].Offset != 60 {
		t.Fatalf("the group's consumer resumed at %v, want offset 60", r)
	}
}
