package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka share groups (KIP-932), driven by franz-go's share consumer
// (kgo.ShareGroup): records handed out one by one under acquisition locks,
// settled by accept, release and reject.

// setShareConfigs sets share group configs with IncrementalAlterConfigs on
// the GROUP resource, as kafka-configs.sh --entity-type groups does.
func setShareConfigs(t *testing.T, b *broker, group string, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for k, v := range configs {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = k, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), b.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
		t.Fatalf("set share group configs %v: %v", configs, err)
	}
}

// produceValues produces values to partition 0 of topic, acks=all.
func produceValues(t *testing.T, b *broker, topic string, values ...string) {
	t.Helper()
	cl := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Value: []byte(v), Partition: 0})
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func shareValues(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// shareConsumer is a share group member of franz-go.
func shareConsumer(t *testing.T, b *broker, group, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return b.client(t, append([]kgo.Opt{
		kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200 * time.Millisecond),
	}, opts...)...)
}

// pollSome polls until it gets records or the step's time is up.
func pollSome(t *testing.T, cl *kgo.Client, within time.Duration) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Logf("poll %s/%d: %v", topic, p, err)
			}
		})
		if rs := fs.Records(); len(rs) > 0 {
			return rs
		}
	}
	return nil
}

// shareOffsets describes one group's share-partition 0 of topic: -1 and
// -1 before the group exists or has started on it.
func shareOffsets(t *testing.T, adm *kadm.Client, group, topic string) (start, lag int64) {
	t.Helper()
	ds, err := adm.DescribeShareGroupOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := ds[group]
	if ok && d.Err == kerr.GroupIDNotFound {
		return -1, -1 // no member joined yet
	}
	if !ok || d.Err != nil {
		t.Fatalf("describe share group offsets of %s: %v", group, d.Err)
	}
	o, ok := d.Offsets[topic][0]
	if !ok {
		return -1, -1
	}
	return o.StartOffset, o.Lag
}

// Several members on one partition each get their own records: what one
// holds under its lock no other is given, and together they get every
// record exactly once.
func TestShareGroupMembersGetDisjointRecords(t *testing.T) {
	b := startBroker(t)
	const topic, group, n = "share-disjoint", "sg-disjoint", 200
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceValues(t, b, topic, shareValues("v", n)...)

	var mu sync.Mutex
	seen := map[string]string{}
	var dups []string
	record := func(who string, rs []*kgo.Record) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if prev, ok := seen[string(r.Value)]; ok {
				dups = append(dups, fmt.Sprintf("%s by %s and %s", r.Value, prev, who))
			}
			seen[string(r.Value)] = who
		}
	}
	// a takes some records and holds them (no poll, no ack: locked for
	// 30 s); b, on the same partition, is given others.
	a := shareConsumer(t, b, group, topic, kgo.ShareMaxRecords(20), kgo.ShareMaxRecordsStrict())
	held := pollSome(t, a, 15*time.Second)
	if len(held) == 0 {
		t.Fatal("member a got no records")
	}
	record("a", held)
	c := shareConsumer(t, b, group, topic, kgo.ShareMaxRecords(20), kgo.ShareMaxRecordsStrict())
	got := pollSome(t, c, 15*time.Second)
	if len(got) == 0 {
		t.Fatal("member c got no records while a held its own")
	}
	record("c", got)
	if len(dups) > 0 {
		t.Fatalf("records given to two members at once: %v", dups)
	}
	// Both go on (each poll accepts the previous one's records) until
	// every record was had.
	var wg sync.WaitGroup
	for name, cl := range map[string]*kgo.Client{"a": a, "c": c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(seen) == n
				mu.Unlock()
				if done {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				record(name, cl.PollFetches(ctx).Records())
				cancel()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(dups) > 0 {
		t.Fatalf("records delivered twice: %v", dups)
	}
	if len(seen) != n {
		t.Fatalf("%d of %d records consumed", len(seen), n)
	}
	// Another share group is a queue of its own: it gets every record.
	setShareConfigs(t, b, "sg-other", map[string]string{"share.auto.offset.reset": "earliest"})
	other := shareConsumer(t, b, "sg-other", topic)
	got2 := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got2) < n && time.Now().Before(deadline) {
		for _, r := range pollSome(t, other, time.Until(deadline)) {
			got2[string(r.Value)] = true
		}
	}
	if len(got2) != n {
		t.Fatalf("a second share group got %d of %d records", len(got2), n)
	}
}

// A released record comes back with a higher delivery count; a rejected
// one never comes back; and past the delivery count limit a record is
// archived.
func TestShareGroupReleaseRejectAndDeliveryLimit(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-acks", "sg-acks"
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.count.limit": "3"})
	produceValues(t, b, topic, "release-me", "reject-me", "poison")
	adm := b.admin(t)

	cl := shareConsumer(t, b, group, topic)
	deliveries := map[string][]int32{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if start, _ := shareOffsets(t, adm, group, topic); start == 3 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		rs := cl.PollFetches(ctx).Records()
		cancel()
		for _, r := range rs {
			v := string(r.Value)
			deliveries[v] = append(deliveries[v], r.DeliveryCount())
			switch {
			case v == "reject-me":
				cl.MarkAcks(kgo.AckReject, r)
			case v == "poison":
				cl.MarkAcks(kgo.AckRelease, r) // every time: archived at the limit
			case v == "release-me" && r.DeliveryCount() == 1:
				cl.MarkAcks(kgo.AckRelease, r)
			default:
				cl.MarkAcks(kgo.AckAccept, r)
			}
		}
		if len(rs) > 0 {
			if err := cl.FlushAcks(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string][]int32{"release-me": {1, 2}, "reject-me": {1}, "poison": {1, 2, 3}}
	if fmt.Sprint(deliveries) != fmt.Sprint(want) {
		t.Fatalf("delivery counts seen = %v, want %v", deliveries, want)
	}
	if start, lag := shareOffsets(t, adm, group, topic); start != 3 || lag != 0 {
		t.Fatalf("share-partition start %d lag %d, want 3 and 0: every record settled", start, lag)
	}
	// Nothing more comes: the rejected and archived records stay settled.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if rs := cl.PollFetches(ctx).Records(); len(rs) > 0 {
		t.Fatalf("settled records delivered again: %q", rs[0].Value)
	}
	// The metrics count what happened: release-me released once, poison
	// twice and then archived, reject-me rejected; release-me accepted.
	sc := b.scrape(t)
	for name, want := range map[string]float64{
		"sluice_share_acks_released_total":       3,
		"sluice_share_acks_rejected_total":       1,
		"sluice_share_records_archived_total":    1,
		"sluice_share_acks_accepted_total":       1,
		"sluice_share_records_redelivered_total": 3,
		"sluice_share_records_acquired_total":    6,
	} {
		if v, ok := sc.value(name); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v, ok := sc.value("sluice_share_lag", "group="+group, "topic="+topic, "partition=0"); !ok || v != 0 {
		t.Errorf("sluice_share_lag = %v (present %v), want 0", v, ok)
	}
	if v, ok := sc.value("sluice_share_group_members", "group="+group); !ok || v != 1 {
		t.Errorf("sluice_share_group_members = %v (present %v), want 1", v, ok)
	}
}

// rawShareMember joins a share group and acquires records with raw
// requests, then goes silent with its connection open: a member that
// hangs without acknowledging.
func rawShareMember(t *testing.T, b *broker, group, topic string) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	t.Helper()
	cl := b.client(t)
	ctx := ctxT(t, 20*time.Second)
	id := make([]byte, 16)
	rand.Read(id)
	member := hex.EncodeToString(id)[:22]
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.MemberEpoch, hb.SubscribedTopicNames = group, member, 0, []string{topic}
	hr, err := hb.RequestWith(ctx, cl)
	if err != nil || hr.ErrorCode != 0 || hr.Assignment == nil || len(hr.Assignment.TopicPartitions) != 1 {
		t.Fatalf("raw member join: %v %+v", err, hr)
	}
	tid := hr.Assignment.TopicPartitions[0].TopicID
	f := kmsg.NewPtrShareFetchRequest()
	f.GroupID, f.MemberID, f.ShareSessionEpoch = &group, &member, 0
	f.MaxWaitMillis, f.MaxBytes, f.MaxRecords, f.BatchSize = 5000, 1<<20, 500, 500
	f.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: tid, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
	fr, err := f.RequestWith(ctx, cl)
	if err != nil || fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("raw member fetch: %v %+v", err, fr)
	}
	return fr.Topics[0].Partitions[0].AcquiredRecords
}

// A member that acquires records and then neither acknowledges nor
// heartbeats has its records given to another member once their
// acquisition lock times out, with delivery count 2.
func TestShareGroupLockTimeoutRedelivers(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-locks", "sg-locks"
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": "1000"})
	produceValues(t, b, topic, shareValues("x", 5)...)

	acq := rawShareMember(t, b, group, topic)
	if len(acq) != 1 || acq[0].FirstOffset != 0 || acq[0].LastOffset != 4 || acq[0].DeliveryCount != 1 {
		t.Fatalf("raw member acquired %+v, want offsets 0-4 once", acq)
	}
	cl := shareConsumer(t, b, group, topic)
	got := map[string]int32{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 5 && time.Now().Before(deadline) {
		for _, r := range pollSome(t, cl, time.Until(deadline)) {
			got[string(r.Value)] = r.DeliveryCount()
		}
	}
	for _, v := range shareValues("x", 5) {
		if got[v] != 2 {
			t.Fatalf("after the lock timed out got %v, want every record with delivery count 2", got)
		}
	}
}

// Acknowledged records stay acknowledged across a kill -9 of the broker:
// a member after the restart is given only what was never accepted.
func TestShareGroupStateSurvivesKill(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-restart", "sg-restart"
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceValues(t, b, topic, shareValues("old", 10)...)

	cl := shareConsumer(t, b, group, topic)
	accepted := 0
	deadline := time.Now().Add(20 * time.Second)
	for accepted < 10 && time.Now().Before(deadline) {
		rs := pollSome(t, cl, time.Until(deadline))
		cl.MarkAcks(kgo.AckAccept, rs...)
		if err := cl.FlushAcks(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		accepted += len(rs)
	}
	if accepted != 10 {
		t.Fatalf("accepted %d of 10", accepted)
	}
	b.Kill()
	b.Restart()
	produceValues(t, b, topic, shareValues("new", 3)...)
	adm := b.admin(t)
	if start, _ := shareOffsets(t, adm, group, topic); start != 10 {
		t.Fatalf("share-partition start offset after restart = %d, want 10", start)
	}
	cl2 := shareConsumer(t, b, group, topic)
	got := map[string]bool{}
	deadline = time.Now().Add(20 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		for _, r := range pollSome(t, cl2, time.Until(deadline)) {
			got[string(r.Value)] = true
			if r.DeliveryCount() != 1 {
				t.Errorf("%s delivered with count %d", r.Value, r.DeliveryCount())
			}
		}
	}
	for v := range got {
		if v[:3] == "old" {
			t.Fatalf("acknowledged record %s delivered again after the restart", v)
		}
	}
	if len(got) != 3 {
		t.Fatalf("after the restart got %v, want new0-new2", got)
	}
}

// A member whose connection dies (its process killed) has its records
// given to another member at once, not after their lock times out: as in
// Kafka, a share session lives on its connection.
func TestShareGroupDeadConnectionReleases(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-cut", "sg-cut"
	b.createTopic(t, topic, 1, nil)
	// A lock far longer than the test: only the closed connection can
	// release the records.
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": "3600000"})
	produceValues(t, b, topic, shareValues("y", 4)...)

	d := &cuttable{}
	dead := b.client(t, kgo.Dialer(d.dial))
	ctx := ctxT(t, 20*time.Second)
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, "doomed-member-0000000", []string{topic}
	hr, err := hb.RequestWith(ctx, dead)
	if err != nil || hr.ErrorCode != 0 || hr.Assignment == nil {
		t.Fatalf("join: %v %+v", err, hr)
	}
	f := kmsg.NewPtrShareFetchRequest()
	f.GroupID, f.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(hb.MemberID)
	f.MaxWaitMillis, f.MaxBytes, f.MaxRecords, f.BatchSize = 5000, 1<<20, 500, 500
	f.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: hr.Assignment.TopicPartitions[0].TopicID, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}}}
	fr, err := f.RequestWith(ctx, dead)
	if err != nil || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions[0].AcquiredRecords) != 1 {
		t.Fatalf("fetch: %v %+v", err, fr)
	}
	d.Cut()

	cl := shareConsumer(t, b, group, topic)
	got := map[string]int32{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		for _, r := range pollSome(t, cl, time.Until(deadline)) {
			got[string(r.Value)] = r.DeliveryCount()
		}
	}
	for _, v := range shareValues("y", 4) {
		if got[v] != 2 {
			t.Fatalf("after the connection died got %v, want every record with delivery count 2", got)
		}
	}
}

// Share groups in the admin APIs: ListGroups by type and state,
// ShareGroupDescribe, the share-group offset APIs and DeleteGroups.
func TestShareGroupAdmin(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-admin", "sg-admin"
	b.createTopic(t, topic, 2, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceValues(t, b, topic, shareValues("z", 6)...)
	adm := b.admin(t)

	c1 := shareConsumer(t, b, group, topic, kgo.ClientID("one"))
	c2 := shareConsumer(t, b, group, topic, kgo.ClientID("two"))
	got := 0
	deadline := time.Now().Add(20 * time.Second)
	for got < 6 && time.Now().Before(deadline) {
		for _, cl := range []*kgo.Client{c1, c2} {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			rs := cl.PollFetches(ctx).Records()
			cancel()
			cl.MarkAcks(kgo.AckAccept, rs...)
			if err := cl.FlushAcks(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			got += len(rs)
		}
	}
	if got != 6 {
		t.Fatalf("consumed %d of 6", got)
	}

	var ds kadm.DescribedShareGroups
	waitFor(t, 10*time.Second, "both members described", func() bool {
		var err error
		ds, err = adm.DescribeShareGroups(ctxT(t, 5*time.Second), group)
		return err == nil && len(ds[group].Members) == 2
	})
	d := ds[group]
	if d.Err != nil || d.GroupState != "Stable" {
		t.Fatalf("described %+v", d)
	}
	for _, m := range d.Members {
		if ps := m.Assignment[topic]; len(ps) != 2 {
			t.Fatalf("member %s (%s) assigned %v, want both partitions", m.MemberID, m.ClientID, m.Assignment)
		}
	}
	listed, err := adm.ListGroupsByType(ctxT(t, 5*time.Second), []string{"share"}, "Stable")
	if err != nil || listed[group].ProtocolType != "share" {
		t.Fatalf("ListGroups type share, state Stable: %v %+v", err, listed)
	}
	if cs, err := adm.ListGroupsByType(ctxT(t, 5*time.Second), []string{"consumer", "classic"}); err != nil || len(cs) != 0 {
		t.Fatalf("ListGroups of other types: %v %+v", err, cs)
	}
	offs, err := adm.DescribeShareGroupOffsets(ctxT(t, 5*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for p, o := range offs[group].Offsets[topic] {
		if o.Lag != 0 {
			t.Fatalf("partition %d lag %d after all was accepted", p, o.Lag)
		}
		total += o.StartOffset
	}
	if total != 6 {
		t.Fatalf("share-partition start offsets sum to %d, want 6: %+v", total, offs[group].Offsets)
	}

	// Its configs, as kafka-configs.sh --describe --entity-type groups
	// shows them: the one set, and the defaults.
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dres := kmsg.NewDescribeConfigsRequestResource()
	dres.ResourceType, dres.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	dreq.Resources = append(dreq.Resources, dres)
	rc, err := dreq.RequestWith(ctxT(t, 5*time.Second), c1)
	if err != nil || len(rc.Resources) != 1 || rc.Resources[0].ErrorCode != 0 {
		t.Fatalf("describe group configs: %v %+v", err, rc)
	}
	gotConfigs := map[string]string{}
	for _, c := range rc.Resources[0].Configs {
		gotConfigs[c.Name] = *c.Value + "/" + c.Source.String()
	}
	if gotConfigs["share.auto.offset.reset"] != "earliest/GROUP_CONFIG" || gotConfigs["share.record.lock.duration.ms"] != "30000/DEFAULT_CONFIG" {
		t.Fatalf("group configs described: %v", gotConfigs)
	}

	// An unknown group config is refused.
	bad := kmsg.NewPtrIncrementalAlterConfigsRequest()
	br := kmsg.NewIncrementalAlterConfigsRequestResource()
	br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	bc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	bc.Name, bc.Value = "share.record.lock.duration.ms", kmsg.StringPtr("10")
	br.Configs = append(br.Configs, bc)
	bad.Resources = append(bad.Resources, br)
	if r, err := bad.RequestWith(ctxT(t, 5*time.Second), c1); err != nil || r.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("lock duration 10 ms: %v %+v", err, r)
	}

	// The management API lists it read-only, beside consumer groups.
	sgs := decodeJSON[[]map[string]any](t, b.api(t, "GET", "/api/kafka/share-groups", nil, 200))
	if len(sgs) != 1 || sgs[0]["group_id"] != group || sgs[0]["members"] != float64(2) || sgs[0]["lag"] != float64(0) {
		t.Fatalf("/api/kafka/share-groups: %v", sgs)
	}
	one := decodeJSON[map[string]any](t, b.api(t, "GET", "/api/kafka/share-groups/"+group, nil, 200))
	if ps, _ := one["partitions"].([]any); len(ps) != 2 || one["configs"].(map[string]any)["share.auto.offset.reset"] != "earliest" {
		t.Fatalf("/api/kafka/share-groups/%s: %v", group, one)
	}
	b.api(t, "GET", "/api/kafka/share-groups/nope", nil, 404)

	// sluice group list and describe show it.
	if out := mustCLI(t, b, "", "group", "list"); !strings.Contains(out, group) || !strings.Contains(out, "share") {
		t.Fatalf("sluice group list:\n%s", out)
	}
	out := mustCLI(t, b, "", "group", "describe", group)
	for _, want := range []string{"State:        Stable", "share (KIP-932", "Members:      2", "Total lag:    0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("sluice group describe lacks %q:\n%s", want, out)
		}
	}

	// A group with members is not deleted nor its offsets altered.
	if rs, err := adm.DeleteGroups(ctxT(t, 5*time.Second), group); err != nil || rs[group].Err != kerr.NonEmptyGroup {
		t.Fatalf("DeleteGroups of a live share group: %v %+v", err, rs)
	}
	alter := kadm.Offsets{}
	alter.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0})
	if rs, err := adm.AlterShareGroupOffsets(ctxT(t, 5*time.Second), group, alter); err == nil {
		if e, _ := rs.Lookup(topic, 0); e != kerr.NonEmptyGroup {
			t.Fatalf("AlterShareGroupOffsets of a live group: %v", rs)
		}
	}
	c1.Close()
	c2.Close()
	waitFor(t, 10*time.Second, "group empty after its members left", func() bool {
		ls, err := adm.ListGroupsByType(ctxT(t, 5*time.Second), []string{"share"}, "Empty")
		return err == nil && len(ls) == 1
	})
	rs, err := adm.AlterShareGroupOffsets(ctxT(t, 5*time.Second), group, alter)
	if e, _ := rs.Lookup(topic, 0); err != nil || e != nil {
		t.Fatalf("AlterShareGroupOffsets: %v %v", err, rs)
	}
	if o, _ := func() (kadm.ShareOffset, bool) {
		offs, _ := adm.DescribeShareGroupOffsets(ctxT(t, 5*time.Second), group)
		return offs[group].Offsets.Lookup(topic, 0)
	}(); o.StartOffset != 0 || o.Lag <= 0 {
		t.Fatalf("after altering to 0: %+v", o)
	}
	if rs, err := adm.DeleteShareGroupOffsets(ctxT(t, 5*time.Second), group, topic); err != nil || rs[topic] != nil {
		t.Fatalf("DeleteShareGroupOffsets: %v %v", err, rs)
	}
	if offs, err := adm.DescribeShareGroupOffsets(ctxT(t, 5*time.Second), group); err != nil || len(offs[group].Offsets[topic]) != 0 {
		t.Fatalf("offsets after DeleteShareGroupOffsets: %v %+v", err, offs[group].Offsets)
	}
	if rs, err := adm.DeleteGroups(ctxT(t, 5*time.Second), group); err != nil || rs[group].Err != nil {
		t.Fatalf("DeleteGroups: %v %+v", err, rs)
	}
	if ls, err := adm.ListGroupsByType(ctxT(t, 5*time.Second), []string{"share"}); err != nil || len(ls) != 0 {
		t.Fatalf("share groups after deletion: %v %+v", err, ls)
	}
}

// kill -9 of the broker while a member consumes and acknowledges (the
// kill races the member's acknowledgement of a batch): no record whose
// acceptance the broker confirmed is delivered again, and every record is
// delivered, before or after the kills.
func TestShareGroupKillMidStream(t *testing.T) {
	b := startBroker(t)
	const topic, group, n = "share-crash", "sg-crash", 3000
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceValues(t, b, topic, shareValues("c", n)...)

	// confirmed: accepted, and the broker said so. Such a record must not
	// be delivered again (one delivered, the broker killed before its
	// acceptance was confirmed, may be).
	confirmed := map[string]bool{}
	var violations []string
	delivered := map[string]int{}
	// consume polls and accepts until all is delivered or, with killAt > 0,
	// until killAt records were delivered: then it kills the broker while
	// its acknowledgement of the last batch is on the way, and returns.
	consume := func(killAt int) {
		var mu sync.Mutex
		failed := false
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka), kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
			kgo.FetchMaxWait(200*time.Millisecond), kgo.ShareMaxRecords(100), kgo.RetryTimeout(2*time.Second),
			kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
				if rs.Error() != nil {
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { go cl.Close() }() // its broker may be gone
		deadline := time.Now().Add(30 * time.Second)
		for len(delivered) < n && time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			rs := cl.PollFetches(ctx).Records()
			cancel()
			if len(rs) == 0 {
				continue
			}
			for _, r := range rs {
				if confirmed[string(r.Value)] {
					violations = append(violations, fmt.Sprintf("%s (offset %d, delivery count %d)", r.Value, r.Offset, r.DeliveryCount()))
				}
				delivered[string(r.Value)]++
			}
			mu.Lock()
			failed = false
			mu.Unlock()
			cl.MarkAcks(kgo.AckAccept, rs...)
			kill := killAt > 0 && len(delivered) >= killAt
			var killed sync.WaitGroup
			if kill {
				killed.Add(1)
				go func() { defer killed.Done(); b.Kill() }()
			}
			fctx, fcancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := cl.FlushAcks(fctx)
			fcancel()
			mu.Lock()
			ok := err == nil && !failed
			mu.Unlock()
			if ok {
				for _, r := range rs {
					confirmed[string(r.Value)] = true
				}
			}
			if kill {
				killed.Wait()
				return
			}
		}
	}
	check := func(when string) {
		if len(violations) > 0 {
			t.Fatalf("%s: %d records delivered again after their acceptance was confirmed, first %s", when, len(violations), violations[0])
		}
	}
	for round := 1; round <= 2; round++ {
		consume(round * n / 3)
		b.Restart()
		check(fmt.Sprintf("round %d", round))
	}
	consume(0)
	check("at the end")
	if len(delivered) != n {
		t.Fatalf("%d of %d records delivered", len(delivered), n)
	}
	again := 0
	for _, k := range delivered {
		if k > 1 {
			again++
		}
	}
	t.Logf("%d records, %d acceptances confirmed, %d delivered again (unconfirmed when the broker died)", n, len(confirmed), again)
}

// Only committed records are handed out: an aborted transaction's records
// and the transaction markers are settled without delivery, an open
// transaction's records wait for its commit.
func TestShareGroupReadsCommitted(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-txn", "sg-txn"
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	tx := b.client(t, kgo.TransactionalID("share-txn-producer"), kgo.DefaultProduceTopic(topic))
	ctx := ctxT(t, 20*time.Second)
	inTxn := func(commit bool, values ...string) {
		t.Helper()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	inTxn(false, "aborted-1", "aborted-2")
	inTxn(true, "committed-1")
	// An open transaction: its record is not handed out yet.
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("later")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl := shareConsumer(t, b, group, topic)
	rs := pollSome(t, cl, 15*time.Second)
	if len(rs) != 1 || string(rs[0].Value) != "committed-1" {
		var vs []string
		for _, r := range rs {
			vs = append(vs, string(r.Value))
		}
		t.Fatalf("got %q, want only committed-1", vs)
	}
	cl.MarkAcks(kgo.AckAccept, rs...)
	if err := cl.FlushAcks(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Offsets: aborted 0-1, marker 2, committed 3, marker 4, open 5.
	if start, _ := shareOffsets(t, b.admin(t), group, topic); start != 5 {
		t.Fatalf("start offset %d, want 5: aborted records and markers settled, the open transaction next", start)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	rs = pollSome(t, cl, 15*time.Second)
	if len(rs) != 1 || string(rs[0].Value) != "later" {
		t.Fatalf("after the commit got %d records, want later", len(rs))
	}
}

// The share protocol's errors, with raw requests: sessions (KIP-932's
// epochs), acknowledgements of records not held, unknown members, and a
// group id held by a consumer group.
func TestShareGroupProtocolErrors(t *testing.T) {
	b := startBroker(t)
	const topic, group = "share-errs", "sg-errs"
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceValues(t, b, topic, "e0", "e1")
	cl := b.client(t)
	ctx := ctxT(t, 20*time.Second)
	code := func(c int16) error { return kerr.ErrorForCode(c) }

	hb := func(member string, epoch int32, topics []string) *kmsg.ShareGroupHeartbeatResponse {
		t.Helper()
		r := kmsg.NewPtrShareGroupHeartbeatRequest()
		r.GroupID, r.MemberID, r.MemberEpoch, r.SubscribedTopicNames = group, member, epoch, topics
		resp, err := r.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := hb("m-unknown-000000000000", 3, nil); code(r.ErrorCode) != kerr.UnknownMemberID {
		t.Fatalf("heartbeat of an unknown member: %v", code(r.ErrorCode))
	}
	if r := hb("m-nosub-00000000000000", 0, nil); code(r.ErrorCode) != kerr.InvalidRequest {
		t.Fatalf("join without subscription: %v", code(r.ErrorCode))
	}
	joined := hb("m-one-0000000000000000", 0, []string{topic})
	if joined.ErrorCode != 0 || joined.MemberEpoch < 1 || joined.Assignment == nil {
		t.Fatalf("join: %+v", joined)
	}
	tid := joined.Assignment.TopicPartitions[0].TopicID
	member := "m-one-0000000000000000"

	fetch := func(epoch int32, acks ...kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) *kmsg.ShareFetchResponse {
		t.Helper()
		r := kmsg.NewPtrShareFetchRequest()
		r.GroupID, r.MemberID, r.ShareSessionEpoch = kmsg.StringPtr(group), kmsg.StringPtr(member), epoch
		r.MaxWaitMillis, r.MaxBytes, r.MaxRecords, r.BatchSize = 1000, 1<<20, 1, 1
		r.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: tid, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, AcknowledgementBatches: acks}}}}
		resp, err := r.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	accept := func(first, last int64) kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch {
		return kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: first, LastOffset: last, AcknowledgeTypes: []int8{1}}
	}
	if r := fetch(1); code(r.ErrorCode) != kerr.ShareSessionNotFound {
		t.Fatalf("epoch 1 without a session: %v", code(r.ErrorCode))
	}
	if r := fetch(0, accept(0, 0)); code(r.ErrorCode) != kerr.InvalidRequest {
		t.Fatalf("acknowledgements opening a session: %v", code(r.ErrorCode))
	}
	r := fetch(0)
	if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions[0].AcquiredRecords) != 1 || r.AcquisitionLockTimeoutMillis != 30000 {
		t.Fatalf("open: %+v", r)
	}
	if acq := r.Topics[0].Partitions[0].AcquiredRecords[0]; acq.FirstOffset != 0 || acq.LastOffset != 0 {
		t.Fatalf("MaxRecords 1 acquired %+v", acq)
	}
	if r := fetch(5); code(r.ErrorCode) != kerr.InvalidShareSessionEpoch {
		t.Fatalf("a skipped epoch: %v", code(r.ErrorCode))
	}
	// Offset 1 is not acquired by this member: INVALID_RECORD_STATE on the
	// partition, and offset 0 in the same batch stays acquired.
	r = fetch(1, accept(0, 1))
	p := r.Topics[0].Partitions[0]
	if r.ErrorCode != 0 || code(p.AcknowledgeErrorCode) != kerr.InvalidRecordState {
		t.Fatalf("acknowledging an offset not held: %v / %v", code(r.ErrorCode), code(p.AcknowledgeErrorCode))
	}
	if len(p.AcquiredRecords) != 1 || p.AcquiredRecords[0].FirstOffset != 1 {
		t.Fatalf("the same fetch acquired %+v, want offset 1", p.AcquiredRecords)
	}
	ack := kmsg.NewPtrShareAcknowledgeRequest()
	ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = kmsg.StringPtr(group), kmsg.StringPtr(member), 0
	if resp, err := ack.RequestWith(ctx, cl); err != nil || code(resp.ErrorCode) != kerr.InvalidShareSessionEpoch {
		t.Fatalf("ShareAcknowledge at epoch 0: %v %v", err, resp)
	}
	ack.ShareSessionEpoch = 2
	ack.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: tid, Partitions: []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: 0,
		AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 1, AcknowledgeTypes: []int8{1}}}}}}}
	if resp, err := ack.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("ShareAcknowledge: %v %+v", err, resp)
	}
	if start, lag := shareOffsets(t, b.admin(t), group, topic); start != 2 || lag != 0 {
		t.Fatalf("after accepting both: start %d lag %d", start, lag)
	}

	// A consumer group's id is not a share group's.
	cg := b.client(t, kgo.ConsumerGroup("a-consumer-group"), kgo.ConsumeTopics(topic))
	waitFor(t, 15*time.Second, "the consumer group to exist", func() bool {
		cg.PollFetches(ctxT(t, 200*time.Millisecond))
		ls, err := b.admin(t).ListGroups(ctxT(t, 5*time.Second))
		return err == nil && len(ls.Groups()) > 0 && ls["a-consumer-group"].Group != ""
	})
	other := kmsg.NewPtrShareGroupHeartbeatRequest()
	other.GroupID, other.MemberID, other.SubscribedTopicNames = "a-consumer-group", "m-two-0000000000000000", []string{topic}
	if resp, err := other.RequestWith(ctx, cl); err != nil || code(resp.ErrorCode) != kerr.InconsistentGroupProtocol {
		t.Fatalf("share heartbeat to a consumer group: %v %v", err, resp)
	}
	// And a share group's id is not a classic or consumer group's.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = group, "consumer", 10000, 10000
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	if resp, err := jg.RequestWith(ctx, cl); err != nil || code(resp.ErrorCode) != kerr.InconsistentGroupProtocol {
		t.Fatalf("JoinGroup of a share group: %v %v", err, resp)
	}
	ch := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	ch.Group, ch.MemberID, ch.RebalanceTimeoutMillis, ch.SubscribedTopicNames = group, "m-three-00000000000000", 10000, []string{topic}
	if resp, err := ch.RequestWith(ctx, cl); err != nil || code(resp.ErrorCode) != kerr.GroupIDNotFound {
		t.Fatalf("ConsumerGroupHeartbeat of a share group: %v %v", err, resp)
	}
	// Configs alone make no group, and the refused joins left none behind.
	setShareConfigs(t, b, "only-configs", map[string]string{"share.delivery.count.limit": "4"})
	ls, err := b.admin(t).ListGroupsByType(ctxT(t, 5*time.Second), []string{"share"})
	if err != nil || len(ls) != 1 || ls[group].Group != group {
		t.Fatalf("share groups: %v %+v", err, ls)
	}
	if ds, err := b.admin(t).DescribeShareGroups(ctxT(t, 5*time.Second), "only-configs"); err == nil && ds["only-configs"].Err != kerr.GroupIDNotFound {
		t.Fatalf("describe a group with configs only: %+v", ds["only-configs"])
	}
}

// The web console lists share groups beside the consumer groups.
func TestConsoleShowsShareGroups(t *testing.T) {
	node := requireBrowser(t)
	b := startBroker(t)
	const topic, group = "share-console", "sg-console"
	b.createTopic(t, topic, 1, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	produceValues(t, b, topic, "a", "b", "c")
	cl := shareConsumer(t, b, group, topic)
	held := 0
	deadline := time.Now().Add(15 * time.Second)
	for held < 3 && time.Now().Before(deadline) {
		held += len(pollSome(t, cl, time.Until(deadline))) // held: the next poll would accept them
	}
	if held != 3 {
		t.Fatalf("member holds %d of 3 records", held)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "browser/share-groups.spec.mjs")
	cmd.Env = append(os.Environ(), "SLUICE_URL=http://"+b.HTTP+"/")
	out, err := cmd.CombinedOutput()
	t.Logf("share-groups.spec.mjs:\n%s", out)
	if err != nil || !strings.Contains(string(out), "0 failed") {
		t.Fatalf("browser checks failed: %v", err)
	}
}

// A stream queue declared over AMQP is a one-partition topic, so a Kafka
// share group works through what AMQP publishers put there: queue
// semantics for Kafka clients over an AMQP stream, one storage.
func TestShareGroupOverAMQPStream(t *testing.T) {
	b := startBroker(t)
	const stream, group = "share-jobs", "sg-jobs"
	ch := b.channel(t)
	declareStream(t, ch, stream, nil)
	setShareConfigs(t, b, group, map[string]string{"share.auto.offset.reset": "earliest"})
	publishConfirmed(t, ch, stream, "j0", "j1", "j2")

	a := shareConsumer(t, b, group, stream)
	c := shareConsumer(t, b, group, stream)
	got := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		for name, cl := range map[string]*kgo.Client{"a": a, "c": c} {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			rs := cl.PollFetches(ctx).Records()
			cancel()
			for _, r := range rs {
				if prev, dup := got[string(r.Value)]; dup {
					t.Fatalf("%s delivered to %s and %s", r.Value, prev, name)
				}
				got[string(r.Value)] = name
			}
			cl.MarkAcks(kgo.AckAccept, rs...)
			if err := cl.FlushAcks(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != 3 {
		t.Fatalf("share group read %v from the AMQP stream, want j0-j2", got)
	}
	if start, lag := shareOffsets(t, b.admin(t), group, stream); start != 3 || lag != 0 {
		t.Fatalf("start %d lag %d after all was accepted", start, lag)
	}
}
