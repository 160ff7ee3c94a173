package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// textCodec encodes offsets as text, to test the view without a wire
// format.
type textCodec struct{}

func (textCodec) OffsetCommitKey(group, topic string, partition int32) []byte {
	return fmt.Appendf(nil, "%s/%s/%d", group, topic, partition)
}

func (textCodec) OffsetCommitValue(c OffsetCommit) []byte { return fmt.Appendf(nil, "%d", c.Offset) }

func openWithOffsetsTopic(t *testing.T, dir string) (*Broker, func()) {
	t.Helper()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler), Defaults: Defaults{Partitions: 1}, OffsetsTopicCodec: textCodec{}}, m)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	var once sync.Once
	close := func() { once.Do(func() { b.Close(); m.Close() }) }
	t.Cleanup(close)
	return b, close
}

type viewRecord struct {
	offset   int64
	key, val string
}

func readAll(t *testing.T, p *Partition, from int64) []viewRecord {
	t.Helper()
	var out []viewRecord
	for {
		data, err := p.Read(from, 1<<20, ReadCommitted)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			return out
		}
		if _, err := storage.ValidateBatches(data, 1<<20); err != nil {
			t.Fatalf("view batches do not validate: %v", err)
		}
		if _, err := storage.ReadRecords(data, func(off, _ int64, r storage.Record) bool {
			v := string(r.Value)
			if r.Value == nil {
				v = "<null>"
			}
			out = append(out, viewRecord{off, string(r.Key), v})
			from = off + 1
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOffsetsTopicPartitionIsJavasHash(t *testing.T) {
	for _, c := range []struct {
		group string
		want  int32
	}{
		{"hello", 99162322 % 50},                // "hello".hashCode() = 99162322
		{"Aa", 2112 % 50},                       // = "BB".hashCode()
		{"polygenelubricants", 0},               // hashCode() = Integer.MIN_VALUE: Utils.abs gives 0
		{"", 0},                                 //
		{"\U0001F600", (55357*31 + 56832) % 50}, // one supplementary character: two UTF-16 units
	} {
		if got := OffsetsTopicPartition(c.group, 50); got != c.want {
			t.Errorf("partition of %q = %d, want %d", c.group, got, c.want)
		}
	}
}

// The committed offsets read as __consumer_offsets: each group's latest
// commits in its partition, at offsets that are the commits' sequence
// numbers, the same after a restart; the topic refuses every change.
func TestOffsetsTopicShowsCommits(t *testing.T) {
	dir := t.TempDir()
	b, closeCore := openWithOffsetsTopic(t, dir)
	if _, err := b.CreateTopic("a", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	tp, ok := b.Topic(OffsetsTopic)
	if !ok || !tp.IsInternal() || len(tp.Partitions) != OffsetsTopicPartitions {
		t.Fatalf("no internal %s topic with %d partitions: %+v", OffsetsTopic, OffsetsTopicPartitions, tp)
	}
	if a, _ := b.Topic("a"); a.IsInternal() {
		t.Fatal("a user topic is internal")
	}
	for _, off := range []int64{5, 6} {
		if err := b.CommitOffsets("hello", []OffsetCommit{commit("a", 0, off), commit("a", 1, off)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CommitOffsets("Aa", []OffsetCommit{commit("a", 0, 1)}); err != nil {
		t.Fatal(err)
	}
	p := tp.Partitions[OffsetsTopicPartition("hello", 50)]
	want := []viewRecord{{2, "hello/a/0", "6"}, {3, "hello/a/1", "6"}}
	if got := readAll(t, p, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hello's partition holds %v, want %v", got, want)
	}
	if got := readAll(t, p, 3); fmt.Sprint(got) != fmt.Sprint(want[1:]) {
		t.Fatalf("from 3: %v", got)
	}
	if start, hw, lso := p.Offsets(); start != 0 || hw != 4 || lso != 4 {
		t.Fatalf("offsets %d %d %d, want 0 4 4", start, hw, lso)
	}
	if got := readAll(t, tp.Partitions[OffsetsTopicPartition("Aa", 50)], 0); fmt.Sprint(got) != fmt.Sprint([]viewRecord{{4, "Aa/a/0", "1"}}) {
		t.Fatalf("Aa's partition holds %v", got)
	}
	if off, _, ok, err := p.OffsetForTimestamp(0); err != nil || !ok || off != 2 {
		t.Fatalf("OffsetForTimestamp(0) = %d %v %v", off, ok, err)
	}

	batch := storage.BuildBatch(0, 1, [][]byte{[]byte("x")})
	if _, _, err := p.Append(batch); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("append: %v", err)
	}
	if err := b.DeleteTopic(OffsetsTopic); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("delete: %v", err)
	}
	if err := b.CreatePartitions(OffsetsTopic, 60, false); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("create partitions: %v", err)
	}
	if err := b.AlterTopicConfigs(OffsetsTopic, map[string]string{"retention.ms": "1"}, nil, false, false); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("alter configs: %v", err)
	}
	if _, err := b.CreateTopic(OffsetsTopic, 1, nil, false); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("create: %v", err)
	}
	if _, err := p.DeleteRecordsBefore(1); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("delete records: %v", err)
	}

	changed := p.Watch()
	if err := b.CommitOffsets("hello", []OffsetCommit{commit("a", 0, 7)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("a commit did not wake the partition's watchers")
	}
	// Deleting offsets writes tombstones at the next offsets.
	if err := b.DeleteGroupOffsets("hello", []TopicPartition{{Topic: "a", Partition: 1}}); err != nil {
		t.Fatal(err)
	}
	want = []viewRecord{{5, "hello/a/0", "7"}, {6, "hello/a/1", "<null>"}}
	if got := readAll(t, p, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after deleting hello's a-1: %v, want %v", got, want)
	}
	closeCore()
	b2, _ := openWithOffsetsTopic(t, dir)
	tp2, _ := b2.Topic(OffsetsTopic)
	if got := readAll(t, tp2.Partitions[OffsetsTopicPartition("hello", 50)], 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart %v, want %v", got, want)
	}
	if tp2.ID != tp.ID {
		t.Fatal("the internal topic's id changed across a restart")
	}
}
