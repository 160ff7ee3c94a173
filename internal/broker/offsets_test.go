package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/sluice-mq/sluice/internal/meta"
)

// openCore opens meta and a broker over dir, closed at the end of the
// test (or earlier by close).
func openCore(t testing.TB, dir string) (b *Broker, m *meta.Store, close func()) {
	t.Helper()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler), Defaults: Defaults{Partitions: 1}}, m)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	var once sync.Once
	close = func() {
		once.Do(func() {
			b.Close()
			m.Close()
		})
	}
	t.Cleanup(close)
	return b, m, close
}

func commit(topic string, p int32, off int64) OffsetCommit {
	return OffsetCommit{Topic: topic, Partition: p, Offset: off, LeaderEpoch: -1, CommitMs: 1}
}

func TestCommitOffsetsChecksTopicsAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, _, close := openCore(t, dir)
	if _, err := b.CreateTopic("a", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitOffsets("g", []OffsetCommit{commit("a", 0, 5), commit("a", 1, 6)}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		c    OffsetCommit
		want error
	}{{commit("nope", 0, 1), ErrUnknownTopic}, {commit("a", 2, 1), ErrUnknownPartition}} {
		if err := b.CommitOffsets("g", []OffsetCommit{commit("a", 0, 99), bad.c}); !errors.Is(err, bad.want) {
			t.Fatalf("commit %+v: %v, want %v", bad.c, err, bad.want)
		}
	}
	if oc, _ := b.GroupOffset("g", "a", 0); oc.Offset != 5 {
		t.Fatalf("a refused commit changed an offset: %d", oc.Offset)
	}
	close()
	b, _, _ = openCore(t, dir)
	want := []OffsetCommit{commit("a", 0, 5), commit("a", 1, 6)}
	if got := unseq(b.GroupOffsets("g")); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart %+v, want %+v", got, want)
	}
}

func TestDeletingTopicOrGroupDeletesOffsets(t *testing.T) {
	b, _, _ := openCore(t, t.TempDir())
	for _, name := range []string{"a", "b"} {
		if _, err := b.CreateTopic(name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"g1", "g2"} {
		if err := b.CommitOffsets(g, []OffsetCommit{commit("a", 0, 1), commit("b", 0, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteGroupOffsets("g2", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteGroupOffsets("g1", []TopicPartition{{Topic: "zz", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	if got := b.OffsetGroups(); !reflect.DeepEqual(got, []string{"g1"}) {
		t.Fatalf("groups %v", got)
	}
	if got := unseq(b.GroupOffsets("g1")); !reflect.DeepEqual(got, []OffsetCommit{commit("b", 0, 2)}) {
		t.Fatalf("g1 %+v", got)
	}
	// A topic created again under the name starts with no offsets.
	if _, err := b.CreateTopic("a", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.GroupOffset("g1", "a", 0); ok {
		t.Fatal("an offset of the deleted topic came back")
	}
}

// TestOffsetsMoveOutOfMeta: a data directory whose offsets an older
// version committed to the metadata log keeps them after the upgrade; they
// are moved once (gone from meta afterwards) and commits made since are
// never overwritten by a repeated move.
func TestOffsetsMoveOutOfMeta(t *testing.T) {
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateTopic("a", 3, nil); err != nil {
		t.Fatal(err)
	}
	old := []meta.OffsetCommit{
		{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 2, Metadata: "x", CommitMs: 7},
		{Topic: "a", Partition: 2, Offset: 12, LeaderEpoch: -1, CommitMs: 8},
	}
	if err := m.CommitOffsets("g", old); err != nil { // as the older version did
		t.Fatal(err)
	}
	if err := m.CommitOffsets("h", old[:1]); err != nil {
		t.Fatal(err)
	}
	m.Close()

	b, m, close := openCore(t, dir)
	want := map[string][]OffsetCommit{
		"g": {{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 2, Metadata: "x", CommitMs: 7}, {Topic: "a", Partition: 2, Offset: 12, LeaderEpoch: -1, CommitMs: 8}},
		"h": {{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 2, Metadata: "x", CommitMs: 7}},
	}
	got := map[string][]OffsetCommit{}
	for _, g := range b.OffsetGroups() {
		got[g] = unseq(b.GroupOffsets(g))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("moved offsets %+v\nwant %+v", got, want)
	}
	if gs := m.OffsetGroups(); len(gs) != 0 {
		t.Fatalf("meta still holds offsets of %v", gs)
	}
	if err := b.CommitOffsets("g", []OffsetCommit{commit("a", 0, 50)}); err != nil {
		t.Fatal(err)
	}
	close()

	// A crash between the copy and the delete from meta: meta holds the
	// old offsets again at the next start. The move must skip what the
	// store has.
	m, err = meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CommitOffsets("g", old); err != nil {
		t.Fatal(err)
	}
	m.Close()
	b, m, _ = openCore(t, dir)
	if oc, _ := b.GroupOffset("g", "a", 0); oc.Offset != 50 {
		t.Fatalf("a repeated move overwrote a newer commit: offset %d", oc.Offset)
	}
	if oc, _ := b.GroupOffset("g", "a", 2); oc.Offset != 12 {
		t.Fatalf("g a-2 at %d", oc.Offset)
	}
	if gs := m.OffsetGroups(); len(gs) != 0 {
		t.Fatalf("meta still holds offsets of %v", gs)
	}
}

// TestConcurrentCommitsAndTopicDeletion: commits racing with the deletion
// of their topic never leave an offset of the deleted topic behind.
func TestConcurrentCommitsAndTopicDeletion(t *testing.T) {
	b, _, _ := openCore(t, t.TempDir())
	for round := range 5 {
		if _, err := b.CreateTopic("a", 1, nil, false); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 20 {
					err := b.CommitOffsets(fmt.Sprintf("g%d", i), []OffsetCommit{commit("a", 0, int64(j))})
					if err != nil && !errors.Is(err, ErrUnknownTopic) {
						t.Error(err)
					}
				}
			}()
		}
		if err := b.DeleteTopic("a"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for _, g := range b.OffsetGroups() {
			if len(b.GroupOffsets(g)) > 0 {
				t.Fatalf("round %d: %s kept an offset of the deleted topic: %+v", round, g, b.GroupOffsets(g))
			}
		}
	}
}

// unseq clears the store's sequence numbers, to compare what was committed.
func unseq(cs []OffsetCommit) []OffsetCommit {
	for i := range cs {
		cs[i].Seq = 0
	}
	return cs
}
