package test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// javaGroupPartition is where Kafka keeps a group's offsets in
// __consumer_offsets: abs(groupId.hashCode()) % 50, Java's String.hashCode
// (these test groups are ASCII: one UTF-16 unit a byte).
func javaGroupPartition(group string) int32 {
	var h int32
	for i := 0; i < len(group); i++ {
		h = 31*h + int32(group[i])
	}
	if h == -1<<31 {
		return 0
	}
	if h < 0 {
		h = -h
	}
	return h % 50
}

// offsetsTopicCommit is one __consumer_offsets record, decoded with kmsg.
type offsetsTopicCommit struct {
	partition int32 // of __consumer_offsets
	offset    int64 // of the record
	key       kmsg.OffsetCommitKey
	value     kmsg.OffsetCommitValue
	tombstone bool // a null value: the offset was deleted
}

// readConsumerOffsets reads __consumer_offsets from the start until its
// end offsets and decodes every record as Kafka's OffsetCommitKey/Value.
func readConsumerOffsets(t *testing.T, b *broker) []offsetsTopicCommit {
	t.Helper()
	ends, err := b.admin(t).ListEndOffsets(ctxT(t, 10*time.Second), "__consumer_offsets")
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets __consumer_offsets: %v %v", err, ends.Error())
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(ends["__consumer_offsets"]) != 50 {
		t.Fatalf("__consumer_offsets has %d partitions, want 50", len(ends["__consumer_offsets"]))
	}
	c := b.client(t, kgo.ConsumeTopics("__consumer_offsets"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []offsetsTopicCommit
	waitFor(t, 20*time.Second, "reading __consumer_offsets to its end", func() bool {
		fs := c.PollFetches(ctxT(t, 2*time.Second))
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			rec := offsetsTopicCommit{partition: r.Partition, offset: r.Offset,
				key: kmsg.NewOffsetCommitKey(), value: kmsg.NewOffsetCommitValue()}
			if err := rec.key.ReadFrom(r.Key); err != nil {
				t.Fatalf("key at %d-%d does not decode: %v", r.Partition, r.Offset, err)
			}
			if r.Value == nil {
				rec.tombstone = true
			} else if err := rec.value.ReadFrom(r.Value); err != nil {
				t.Fatalf("value at %d-%d does not decode: %v", r.Partition, r.Offset, err)
			}
			out = append(out, rec)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
		return len(want) == 0
	})
	return out
}

// The committed offsets are readable as Kafka's internal topic
// __consumer_offsets: listed as internal with 50 partitions, each group in
// the partition Kafka's hash gives it, records in Kafka's key and value
// formats at increasing offsets that stay the same across a restart; the
// topic cannot be written, deleted or created, and a regex subscription
// does not pick it up.
func TestConsumerOffsetsTopic(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "co-in", 3, nil)
	c := b.client(t)
	ctx := ctxT(t, 30*time.Second)
	groups := []string{"co-group", "lag-checkers", "polygenelubricants"} // the last hashes to Integer.MIN_VALUE
	for i, g := range groups {
		for p := range int32(3) {
			if code, err := commitOffset(ctx, c, g, "co-in", p, int64(10*i)+int64(p)); err != nil || code != 0 {
				t.Fatalf("commit %s %d: %v %v", g, p, err, kerr.ErrorForCode(code))
			}
		}
	}
	if code, err := commitOffset(ctx, c, "co-group", "co-in", 0, 42); err != nil || code != 0 { // replaces the first
		t.Fatalf("commit: %v %v", err, kerr.ErrorForCode(code))
	}

	// Listed as internal: only with internal topics included.
	adm := b.admin(t)
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed.Has("__consumer_offsets") {
		t.Fatal("ListTopics without internal topics lists __consumer_offsets")
	}
	listed, err = adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := listed["__consumer_offsets"]; !ok || !d.IsInternal || len(d.Partitions) != 50 {
		t.Fatalf("ListTopicsWithInternal: __consumer_offsets %+v", d)
	}

	check := func(recs []offsetsTopicCommit) {
		t.Helper()
		latest := map[string]int64{}
		last := map[int32]int64{}
		for _, r := range recs {
			if r.tombstone {
				t.Fatalf("a tombstone before any deletion: %+v at %d-%d", r.key, r.partition, r.offset)
			}
			if r.key.Version != 1 || r.value.Version != 3 {
				t.Fatalf("record versions key %d value %d, want 1 and 3", r.key.Version, r.value.Version)
			}
			if want := javaGroupPartition(r.key.Group); r.partition != want {
				t.Fatalf("group %s in partition %d, Kafka puts it in %d", r.key.Group, r.partition, want)
			}
			if prev, ok := last[r.partition]; ok && r.offset <= prev {
				t.Fatalf("offsets not increasing in partition %d: %d after %d", r.partition, r.offset, prev)
			}
			last[r.partition] = r.offset
			if r.key.Topic != "co-in" || r.value.CommitTimestamp <= 0 {
				t.Fatalf("record %+v %+v", r.key, r.value)
			}
			latest[r.key.Group+"/"+string(rune('0'+r.key.Partition))] = r.value.Offset
		}
		want := map[string]int64{"co-group/0": 42, "co-group/1": 1, "co-group/2": 2,
			"lag-checkers/0": 10, "lag-checkers/1": 11, "lag-checkers/2": 12,
			"polygenelubricants/0": 20, "polygenelubricants/1": 21, "polygenelubricants/2": 22}
		if len(latest) != len(want) {
			t.Fatalf("latest offsets read %v, want %v", latest, want)
		}
		for k, v := range want {
			if latest[k] != v {
				t.Fatalf("latest offsets read %v, want %v", latest, want)
			}
		}
	}
	before := readConsumerOffsets(t, b)
	check(before)
	if len(before) != 9 { // the replaced commit is compacted away
		t.Fatalf("read %d records, want 9", len(before))
	}

	// Read-only: produce, delete and create are refused as Kafka refuses them.
	pr := c.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Partition: 0, Value: []byte("x")})
	if err := pr.FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	del, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil || !errors.Is(del["__consumer_offsets"].Err, kerr.InvalidTopicException) {
		t.Fatalf("delete __consumer_offsets: %v %+v", err, del)
	}
	cr, err := adm.CreateTopic(ctx, 1, 1, nil, "__consumer_offsets") // err is cr.Err
	if !errors.Is(cr.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("create __consumer_offsets: %v %v", err, cr.Err)
	}

	// kcat lists it.
	needTool(t, kcatPath)
	if out := b.kcat(t, "", "-L", "-t", "__consumer_offsets").must(t, b, "kcat -L").Stdout; !strings.Contains(out, `topic "__consumer_offsets" with 50 partitions`) {
		t.Fatalf("kcat -L:\n%s", out)
	}

	// A regex subscription consumes user topics, not __consumer_offsets.
	if r := c.ProduceSync(ctx, &kgo.Record{Topic: "co-in", Value: []byte("hi")}); r.FirstErr() != nil {
		t.Fatal(r.FirstErr())
	}
	rc := b.client(t, kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"), kgo.ConsumerGroup("co-regex"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := false
	waitFor(t, 20*time.Second, "the regex consumer to get the user record", func() bool {
		rc.PollFetches(ctxT(t, 2*time.Second)).EachRecord(func(r *kgo.Record) {
			if r.Topic == "__consumer_offsets" {
				t.Fatalf("a regex subscription got a __consumer_offsets record at %d-%d", r.Partition, r.Offset)
			}
			got = got || r.Topic == "co-in"
		})
		return got
	})
	if topics := rc.GetConsumeTopics(); slices.Contains(topics, "__consumer_offsets") || !slices.Contains(topics, "co-in") {
		t.Fatalf("regex consumer's topics: %v", topics)
	}
	rc.Close()

	// The same records at the same offsets after a restart (plus the
	// regex group's commits, if it made any).
	b.Stop()
	b.Restart()
	after := readConsumerOffsets(t, b)
	var kept []offsetsTopicCommit
	for _, r := range after {
		if r.key.Group != "co-regex" {
			kept = append(kept, r)
		}
	}
	check(kept)
	key := func(r offsetsTopicCommit) [3]int64 { return [3]int64{int64(r.partition), r.offset, r.value.Offset} }
	sortRecs := func(rs []offsetsTopicCommit) {
		slices.SortFunc(rs, func(a, b offsetsTopicCommit) int {
			ka, kb := key(a), key(b)
			return slices.Compare(ka[:], kb[:])
		})
	}
	sortRecs(before)
	sortRecs(kept)
	for i := range before {
		if key(before[i]) != key(kept[i]) {
			t.Fatalf("after restart record %d is %v, was %v", i, key(kept[i]), key(before[i]))
		}
	}

	// Deleting a group writes a tombstone (null value) per offset, after
	// the group's earlier records.
	lastOffset := int64(-1)
	for _, r := range after {
		if r.partition == javaGroupPartition("lag-checkers") {
			lastOffset = max(lastOffset, r.offset)
		}
	}
	dg, err := b.admin(t).DeleteGroup(ctx, "lag-checkers")
	if err != nil || dg.Err != nil {
		t.Fatalf("DeleteGroup: %v %v", err, dg.Err)
	}
	tombs := map[int32]bool{}
	for _, r := range readConsumerOffsets(t, b) {
		if r.key.Group != "lag-checkers" || !r.tombstone {
			continue
		}
		if r.offset <= lastOffset || r.key.Topic != "co-in" {
			t.Fatalf("tombstone %+v at %d, want a co-in offset after %d", r.key, r.offset, lastOffset)
		}
		tombs[r.key.Partition] = true
	}
	if len(tombs) != 3 {
		t.Fatalf("tombstones for lag-checkers' partitions %v, want 0, 1 and 2", tombs)
	}
}
