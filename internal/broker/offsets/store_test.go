package offsets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.UnixMilli(1000) }
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func c(topic string, p int32, off int64) Commit {
	return Commit{Topic: topic, Partition: p, Offset: off, LeaderEpoch: 1, Metadata: "m"}
}

// snapshot is every group's offsets, for comparing stores.
func snapshot(s *Store) map[string][]Commit {
	out := map[string][]Commit{}
	for _, g := range s.Groups() {
		out[g] = s.Group(g)
	}
	return out
}

func mustCommit(t testing.TB, s *Store, group string, cs ...Commit) {
	t.Helper()
	if err := s.Commit(group, cs, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCommitDeleteAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustCommit(t, s, "g1", c("a", 0, 5), c("a", 1, 6), c("b", 0, 7))
	mustCommit(t, s, "g1", c("a", 0, 8), c("a", 0, 9)) // a later duplicate wins
	mustCommit(t, s, "g2", c("a", 0, 1), c("b", 0, 2))
	mustCommit(t, s, "g3", c("b", 0, 3))
	if err := s.Delete("g1", []Partition{{"a", 1}, {"zz", 0}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("g2", nil); err != nil {
		t.Fatal(err)
	}
	want := map[string][]Commit{"g1": {{Topic: "a", Partition: 0, Offset: 9, LeaderEpoch: 1, Metadata: "m", CommitMs: 1000, Seq: 4}}}
	if got := snapshot(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets %+v, want %+v", got, want)
	}
	if got, ok := s.Get("g1", "a", 0); !ok || got.Offset != 9 {
		t.Fatalf("Get: %+v %v", got, ok)
	}
	if _, ok := s.Get("g3", "b", 0); ok {
		t.Fatal("g3's offset in a deleted topic is still there")
	}
	records := s.Stats().Records
	if err := s.Delete("nobody", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("none"); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Records != records {
		t.Fatal("deleting nothing wrote a record")
	}
	s.Close()
	if err := s.Commit("g1", []Commit{c("a", 0, 1)}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
	s2 := open(t, dir, Options{})
	if got := snapshot(s2); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
}

func TestCheckRefusesTheWholeCommit(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	refused := errors.New("unknown topic")
	if err := s.Commit("g", []Commit{c("a", 0, 1)}, func() error { return refused }); err != refused {
		t.Fatalf("err %v", err)
	}
	if len(s.Groups()) != 0 || s.Stats().Records != 0 {
		t.Fatal("a refused commit was written")
	}
}

func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustCommit(t, s, "g", c("a", 0, 1))
	mustCommit(t, s, "g", c("a", 0, 2))
	s.Close()
	path := filepath.Join(dir, logName)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := appendRecord(nil, &record{kind: kindCommit, group: "g", commits: []Commit{c("a", 0, 3)}})
	want := int64(2)
	for i, tail := range [][]byte{rec[:len(rec)-1], rec[:3], make([]byte, 40), append(append([]byte{}, rec[:len(rec)-1]...), rec[len(rec)-1]^1)} {
		if err := os.WriteFile(path, append(append([]byte{}, full...), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		s := open(t, dir, Options{})
		if got, _ := s.Get("g", "a", 0); got.Offset != want {
			t.Fatalf("offset %d after a torn tail of %d bytes, want %d", got.Offset, len(tail), want)
		}
		want = int64(10 + i)
		mustCommit(t, s, "g", c("a", 0, want)) // appends where the valid records end
		s.Close()
		s = open(t, dir, Options{})
		if got, _ := s.Get("g", "a", 0); got.Offset != want {
			t.Fatalf("offset %d after appending past a truncated tail", got.Offset)
		}
		s.Close()
		full, _ = os.ReadFile(path)
	}
}

func TestCorruptHeaderOrRecordRefusesToOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, logName)
	os.WriteFile(path, []byte("NOTANOFFSETSLOG!"), 0o644)
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("opened a log with a bad header")
	}
	// A checksummed record that does not parse was not torn: refuse.
	bad := appendLogHeader(nil)
	payload := []byte{99}
	bad = append(bad, 0, 0, 0, 1)
	bad = append(bad, 0, 0, 0, 0)
	copy(bad[len(bad)-4:], be32(crcOf(payload)))
	bad = append(bad, payload...)
	os.WriteFile(path, bad, 0o644)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v, want ErrCorrupt", err)
	}
}

func TestCompactionKeepsTheLatestOffsets(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{CompactBytes: 4 << 10})
	for i := range 2000 {
		mustCommit(t, s, fmt.Sprintf("g%d", i%3), c("a", int32(i%4), int64(i)))
	}
	if err := s.Delete("g2", []Partition{{"a", 1}}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Compactions == 0 {
		t.Fatalf("no compaction: %+v", st)
	}
	if st.LogBytes > 4*(4<<10) {
		t.Fatalf("log is %d bytes after compactions", st.LogBytes)
	}
	want := snapshot(s)
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, logName+tmpSuffix)); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
	s2 := open(t, dir, Options{})
	if got := snapshot(s2); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen %+v\nwant %+v", got, want)
	}
	if got, _ := s2.Get("g1", "a", 3); got.Offset != 1999 {
		t.Fatalf("g1 a-3 at %d, want 1999", got.Offset)
	}
}

func TestConcurrentCommitsShareFsyncs(t *testing.T) {
	slow := func(path string, f LogFile) LogFile { return &slowSync{LogFile: f} }
	s := open(t, t.TempDir(), Options{WrapLog: slow})
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				mustCommit(t, s, fmt.Sprintf("g%d", i), c("a", 0, int64(j)))
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Records != n*10 || st.Syncs >= st.Records/2 {
		t.Fatalf("%d records in %d fsyncs", st.Records, st.Syncs)
	}
}

type slowSync struct{ LogFile }

func (f *slowSync) Sync() error {
	time.Sleep(2 * time.Millisecond)
	return f.LogFile.Sync()
}

// failingLog fails every fsync while fail is set.
type failingLog struct {
	LogFile
	fail *atomic.Bool
}

func (f *failingLog) Sync() error {
	if f.fail.Load() {
		return errors.New("injected fsync failure")
	}
	return f.LogFile.Sync()
}

func TestFailedFsyncIsNotAppliedAndRecovers(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	s := open(t, dir, Options{WrapLog: func(_ string, f LogFile) LogFile { return &failingLog{f, &fail} }})
	mustCommit(t, s, "g", c("a", 0, 1))
	fail.Store(true)
	if err := s.Commit("g", []Commit{c("a", 0, 2)}, nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("err %v", err)
	}
	if got, _ := s.Get("g", "a", 0); got.Offset != 1 {
		t.Fatalf("a failed commit is visible: %d", got.Offset)
	}
	if err := s.Commit("g", []Commit{c("a", 0, 3)}, nil); !errors.Is(err, ErrFailed) || s.Failed() == nil {
		t.Fatalf("a failed store took a commit: %v", err)
	}
	fail.Store(false)
	if err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, "g", c("a", 0, 4))
	s.Close()
	s2 := open(t, dir, Options{})
	if got, _ := s2.Get("g", "a", 0); got.Offset != 4 {
		t.Fatalf("offset %d after restart, want 4", got.Offset)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	for _, r := range []record{
		{kind: kindCommit, group: "g", commits: []Commit{{Topic: "t", Partition: 3, Offset: -1, LeaderEpoch: -1, Metadata: "", CommitMs: 7}, c("u", 1<<30, 1<<60)}},
		{kind: kindDelete, group: "g", partitions: []Partition{{"t", 0}, {"", -1}}},
		{kind: kindDeleteGroup, group: "ünï"},
		{kind: kindDeleteTopic, topic: "t"},
		{kind: kindCommitSeq, group: "g", commits: []Commit{{Seq: 1 << 40, Topic: "t", Partition: 2, Offset: 5, CommitMs: 9}}},
		{kind: kindNextSeq, next: 1<<40 + 1},
	} {
		got, err := decodeRecord(appendPayload(nil, &r))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(r) {
			t.Errorf("got %+v, want %+v", got, r)
		}
	}
}

// Commits are numbered in the order they become durable; a commit keeps
// its number across restarts and rewrites, and no number is given twice,
// not even one whose commit was replaced or deleted before a rewrite.
func TestSeqsAreStableAndNeverReused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{CompactBytes: 4 << 10})
	mustCommit(t, s, "g", c("a", 0, 1), c("a", 1, 1))
	mustCommit(t, s, "h", c("a", 0, 2))
	if got := s.Since(0, func(string) bool { return true }, 0); len(got) != 3 ||
		got[0].Seq != 0 || got[1].Seq != 1 || got[2] != (Entry{"h", Commit{Topic: "a", Offset: 2, LeaderEpoch: 1, Metadata: "m", CommitMs: 1000, Seq: 2}, false}) {
		t.Fatalf("Since(0) = %+v", got)
	}
	for i := range 1000 { // compacts the log several times
		mustCommit(t, s, "g", c("a", 0, int64(i)))
	}
	mustCommit(t, s, "h", c("a", 0, 3))        // seq 1003, the last commit
	if err := s.Delete("h", nil); err != nil { // its tombstone: 1004
		t.Fatal(err)
	}
	if s.Stats().Compactions == 0 {
		t.Fatal("no compaction")
	}
	onlyG := func(g string) bool { return g == "g" }
	want := s.Since(0, onlyG, 0)
	if len(want) != 2 || want[0].Seq != 1 || want[1].Seq != 1002 || s.NextSeq() != 1005 {
		t.Fatalf("before reopen: %+v, next %d", want, s.NextSeq())
	}
	if last, ok := s.Last(onlyG); !ok || last != 1002 {
		t.Fatalf("Last = %d %v", last, ok)
	}
	changed := s.Changed()
	mustCommit(t, s, "i", c("b", 0, 0)) // 1005
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by a commit")
	}
	s.Close()
	s2 := open(t, dir, Options{CompactBytes: 4 << 10})
	if got := s2.Since(0, onlyG, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
	if got := s2.Since(1005, func(string) bool { return true }, 0); len(got) != 1 || got[0].Seq != 1005 || got[0].Group != "i" {
		t.Fatalf("Since(1005) after reopen = %+v", got)
	}
	if s2.NextSeq() != 1006 {
		t.Fatalf("next after reopen %d, want 1006", s2.NextSeq())
	}
	if got := s2.Since(0, func(string) bool { return true }, 1); len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("Since with limit 1 = %+v", got)
	}
}

// Deleting offsets leaves tombstones numbered after everything before the
// deletion, the same after a restart; a new commit of the offset replaces
// its tombstone; a rewrite of the log drops them and keeps the numbering.
func TestDeletionsLeaveTombstones(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	mustCommit(t, s, "g", c("a", 0, 1), c("a", 1, 1))            // 0, 1
	mustCommit(t, s, "h", c("b", 0, 1))                          // 2
	if err := s.Delete("g", []Partition{{"a", 0}}); err != nil { // tombstone 3
		t.Fatal(err)
	}
	if err := s.DeleteTopic("b"); err != nil { // tombstone 4
		t.Fatal(err)
	}
	if err := s.Delete("g", nil); err != nil { // tombstone 5 for a-1
		t.Fatal(err)
	}
	mustCommit(t, s, "g", c("a", 0, 7)) // 6, replaces tombstone 3
	all := func(string) bool { return true }
	type e struct {
		group   string
		p       Partition
		seq     int64
		deleted bool
	}
	summary := func(es []Entry) []e {
		var out []e
		for _, x := range es {
			out = append(out, e{x.Group, Partition{x.Topic, x.Commit.Partition}, x.Seq, x.Deleted})
		}
		return out
	}
	want := []e{{"h", Partition{"b", 0}, 4, true}, {"g", Partition{"a", 1}, 5, true}, {"g", Partition{"a", 0}, 6, false}}
	if got := summary(s.Since(0, all, 0)); !reflect.DeepEqual(got, want) {
		t.Fatalf("Since(0) = %+v, want %+v", got, want)
	}
	if last, ok := s.Last(func(g string) bool { return g == "h" }); !ok || last != 4 {
		t.Fatalf("Last(h) = %d %v: a tombstone keeps its group's end", last, ok)
	}
	s.Close()
	s2 := open(t, dir, Options{})
	if got := summary(s2.Since(0, all, 0)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen Since(0) = %+v, want %+v", got, want)
	}
	s2.Close()
	s3 := open(t, dir, Options{CompactBytes: 4 << 10})
	for i := range 500 { // 7..506, compacting the log
		mustCommit(t, s3, "g", c("a", 0, int64(i)))
	}
	if s3.Stats().Compactions == 0 {
		t.Fatal("no compaction")
	}
	want = []e{{"g", Partition{"a", 0}, 506, false}}
	if got := summary(s3.Since(0, all, 0)); !reflect.DeepEqual(got, want) || s3.NextSeq() != 507 {
		t.Fatalf("after a rewrite Since(0) = %+v, next %d; want %+v, 507", got, s3.NextSeq(), want)
	}
}

// With a SyncInterval a commit is answered once written; the log is
// fsync'd by the interval's ticks and on Close, so a clean restart keeps
// every commit.
func TestSyncIntervalAnswersBeforeTheFsync(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SyncInterval: time.Hour})
	for j := range 100 {
		mustCommit(t, s, "g", c("a", 0, int64(j)))
	}
	if st := s.Stats(); st.Records != 100 || st.Syncs != 0 {
		t.Fatalf("%d records in %d fsyncs, want 100 in none (an hour's interval)", st.Records, st.Syncs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Syncs != 1 {
		t.Fatalf("%d fsyncs on Close, want 1", st.Syncs)
	}
	if got, _ := open(t, dir, Options{}).Get("g", "a", 0); got.Offset != 99 {
		t.Fatalf("offset %d after restart, want 99", got.Offset)
	}

	s = open(t, t.TempDir(), Options{SyncInterval: time.Millisecond})
	mustCommit(t, s, "g", c("a", 0, 1))
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Syncs == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the interval never fsync'd the commit")
		}
	}
}

// A failed interval fsync fails the store and cuts the log back to what was
// durable: later commits are refused until Recover.
func TestSyncIntervalFailedFsyncFailsTheStore(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	s := open(t, dir, Options{SyncInterval: time.Millisecond, WrapLog: func(_ string, f LogFile) LogFile { return &failingLog{f, &fail} }})
	mustCommit(t, s, "g", c("a", 0, 1))
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Syncs == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the interval never fsync'd the commit")
		}
	}
	fail.Store(true)
	mustCommit(t, s, "g", c("a", 0, 2)) // answered once written
	for deadline := time.Now().Add(10 * time.Second); s.Failed() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a failed interval fsync did not fail the store")
		}
	}
	if err := s.Commit("g", []Commit{c("a", 0, 3)}, nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("a failed store took a commit: %v", err)
	}
	fail.Store(false)
	if err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, "g", c("a", 0, 4))
	s.Close()
	if got, _ := open(t, dir, Options{}).Get("g", "a", 0); got.Offset != 4 {
		t.Fatalf("offset %d after restart, want 4", got.Offset)
	}
}

// gatedSync holds every fsync until the test lets it go, and says when
// one is waiting.
type gatedSync struct {
	LogFile
	waiting chan struct{}
	release chan struct{}
}

func (f *gatedSync) Sync() error {
	f.waiting <- struct{}{}
	<-f.release
	return f.LogFile.Sync()
}

// TestDeleteTopicWhileACommitIsBeingWritten: a topic's offsets deleted
// while a commit to it has passed its check but is not yet durable (so not
// yet in the state a caller sees) must not leave that commit behind.
func TestDeleteTopicWhileACommitIsBeingWritten(t *testing.T) {
	gate := &gatedSync{waiting: make(chan struct{}), release: make(chan struct{})}
	s := open(t, t.TempDir(), Options{WrapLog: func(_ string, f LogFile) LogFile {
		gate.LogFile = f
		return gate
	}})
	defer func() { // before the cleanup's Close, which syncs
		close(gate.release)
		go func() {
			for range gate.waiting {
			}
		}()
	}()
	committed := make(chan error, 1)
	go func() { committed <- s.Commit("g", []Commit{c("a", 0, 5)}, nil) }()
	<-gate.waiting // the commit is accepted and being synced
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteTopic("a") }()
	// Before the fix the delete looked at the state, found nothing and
	// was answered at once; it must wait for the writer instead.
	select {
	case err := <-deleted:
		t.Fatalf("the delete was answered (%v) before the commit was applied", err)
	case <-time.After(50 * time.Millisecond):
	}
	gate.release <- struct{}{}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	// The delete, if written, needs a second fsync.
	select {
	case <-gate.waiting:
		gate.release <- struct{}{}
	case err := <-deleted:
		t.Fatalf("the delete was answered (%v) without writing anything", err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if got := s.Group("g"); len(got) != 0 {
		t.Fatalf("offsets of the deleted topic left behind: %+v", got)
	}
}
