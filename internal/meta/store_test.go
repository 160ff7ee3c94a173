package meta

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/sluice-mq/sluice/internal/testutil"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var testNow = time.UnixMilli(1_700_000_000_000)

func testOptions(every int) Options {
	return Options{SnapshotEvery: every, Now: func() time.Time { return testNow }}
}

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// dump is the canonical encoding of a store's state.
func dump(t testing.TB, s *Store) string {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return string(mustJSON(t, s.state))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond; it is for conditions another goroutine makes true.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

// faultLog wraps a log file to inject faults.
type faultLog struct {
	LogFile
	beforeWrite func() error
	beforeSync  func() error
}

func (f *faultLog) Write(b []byte) (int, error) {
	if f.beforeWrite != nil {
		if err := f.beforeWrite(); err != nil {
			return len(b) / 2, err // a short write, as a full disk leaves
		}
	}
	return f.LogFile.Write(b)
}

func (f *faultLog) Sync() error {
	if f.beforeSync != nil {
		if err := f.beforeSync(); err != nil {
			return err
		}
	}
	return f.LogFile.Sync()
}

// TestSurvivesReopen runs each scenario against stores with different
// snapshot intervals, and checks the state before Close equals the state
// after Open (and after a second Open, from whatever the first left).
func TestSurvivesReopen(t *testing.T) {
	scenarios := []struct {
		name  string
		run   func(t *testing.T, s *Store)
		check func(t *testing.T, s *Store)
	}{{
		name: "topics",
		run: func(t *testing.T, s *Store) {
			a, err := s.CreateTopic("a", 3, map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"})
			must(t, err)
			if a.ID.IsZero() || a.CreatedMs != testNow.UnixMilli() || a.Partitions != 3 {
				t.Fatalf("created %+v", a)
			}
			_, err = s.CreateTopic("a", 1, nil)
			if !errors.Is(err, ErrTopicExists) {
				t.Fatalf("duplicate create: %v", err)
			}
			b1, err := s.CreateTopic("b", 1, nil)
			must(t, err)
			must(t, s.DeleteTopic("b"))
			b2, err := s.CreateTopic("b", 2, nil)
			must(t, err)
			if b1.ID == b2.ID {
				t.Fatal("re-created topic kept its id")
			}
			must(t, s.CreatePartitions("a", 5))
			if err := s.CreatePartitions("a", 5); !errors.Is(err, ErrInvalidPartitions) {
				t.Fatalf("CreatePartitions to same count: %v", err)
			}
			must(t, s.AlterTopicConfigs("a", map[string]string{"segment.bytes": "1024"}, []string{"cleanup.policy"}, false))
			must(t, s.AlterTopicConfigs("b", map[string]string{"retention.ms": "5"}, nil, true))
			if err := s.DeleteTopic("nope"); !errors.Is(err, ErrUnknownTopic) {
				t.Fatalf("DeleteTopic(nope): %v", err)
			}
		},
		check: func(t *testing.T, s *Store) {
			topics := s.Topics()
			if len(topics) != 2 || topics[0].Name != "a" || topics[1].Name != "b" {
				t.Fatalf("topics = %+v", topics)
			}
			a := topics[0]
			if a.Partitions != 5 || !reflect.DeepEqual(a.Configs, map[string]string{"retention.ms": "1000", "segment.bytes": "1024"}) {
				t.Fatalf("a = %+v", a)
			}
			if got, ok := s.TopicByID(a.ID); !ok || got.Name != "a" {
				t.Fatalf("TopicByID = %+v, %v", got, ok)
			}
			if b, _ := s.Topic("b"); b.Partitions != 2 || !reflect.DeepEqual(b.Configs, map[string]string{"retention.ms": "5"}) {
				t.Fatalf("b = %+v", b)
			}
		},
	}, {
		name: "offsets",
		run: func(t *testing.T, s *Store) {
			_, err := s.CreateTopic("a", 2, nil)
			must(t, err)
			_, err = s.CreateTopic("b", 1, nil)
			must(t, err)
			must(t, s.CommitOffsets("g1", []OffsetCommit{{Topic: "a", Partition: 1, Offset: 10, LeaderEpoch: 3, Metadata: "m"}, {Topic: "a", Partition: 0, Offset: 4}}))
			must(t, s.CommitOffsets("g1", []OffsetCommit{{Topic: "b", Partition: 0, Offset: 7, CommitMs: 42}}))
			must(t, s.CommitOffsets("g2", []OffsetCommit{{Topic: "b", Partition: 0, Offset: 1}}))
			must(t, s.CommitOffsets("g3", []OffsetCommit{{Topic: "a", Partition: 0, Offset: 1}}))
			if err := s.CommitOffsets("g2", []OffsetCommit{{Topic: "a", Partition: 9}}); !errors.Is(err, ErrUnknownPartition) {
				t.Fatalf("commit to a-9: %v", err)
			}
			must(t, s.DeleteTopic("b")) // drops g1's and g2's offsets in b
			must(t, s.DeleteGroupOffsets("g3", nil))
			must(t, s.DeleteGroupOffsets("g1", []TopicPartition{{"a", 0}}))
		},
		check: func(t *testing.T, s *Store) {
			if got := s.OffsetGroups(); !reflect.DeepEqual(got, []string{"g1"}) {
				t.Fatalf("groups = %v", got)
			}
			want := []OffsetCommit{{Topic: "a", Partition: 1, Offset: 10, LeaderEpoch: 3, Metadata: "m", CommitMs: testNow.UnixMilli()}}
			if got := s.GroupOffsets("g1"); !reflect.DeepEqual(got, want) {
				t.Fatalf("g1 = %+v, want %+v", got, want)
			}
			if got, ok := s.GroupOffset("g1", "a", 1); !ok || got != want[0] {
				t.Fatalf("GroupOffset = %+v, %v", got, ok)
			}
			if _, ok := s.GroupOffset("g2", "b", 0); ok {
				t.Fatal("offset in deleted topic survived")
			}
		},
	}, {
		name: "producer ids",
		run: func(t *testing.T, s *Store) {
			for i, want := range []struct {
				txn   string
				id    int64
				epoch int16
			}{{"", 1, 0}, {"tx", 2, 0}, {"tx", 2, 1}, {"", 3, 0}, {"other", 4, 0}, {"tx", 2, 2}} {
				id, epoch, err := s.InitProducerID(want.txn)
				must(t, err)
				if id != want.id || epoch != want.epoch {
					t.Fatalf("call %d (%q): %d/%d, want %d/%d", i, want.txn, id, epoch, want.id, want.epoch)
				}
			}
		},
		check: func(t *testing.T, s *Store) {
			if id, epoch, ok := s.TransactionalProducer("tx"); !ok || id != 2 || epoch != 2 {
				t.Fatalf("tx = %d/%d/%v", id, epoch, ok)
			}
		},
	}, {
		name:  "amqp definitions",
		run:   runAMQPScenario,
		check: checkAMQPScenario,
	}}
	for _, every := range []int{0, 1, 2, 3, 5} {
		for _, sc := range scenarios {
			t.Run(fmt.Sprintf("%s/every=%d", sc.name, every), func(t *testing.T) {
				dir := t.TempDir()
				s := openStore(t, dir, testOptions(every))
				sc.run(t, s)
				sc.check(t, s)
				before, index := dump(t, s), s.AppliedIndex()
				closeStore(t, s)
				for range 2 {
					s = openStore(t, dir, testOptions(every))
					sc.check(t, s)
					if after := dump(t, s); after != before {
						t.Fatalf("state after reopen:\n%s\nwant:\n%s", after, before)
					}
					if got := s.AppliedIndex(); got != index {
						t.Fatalf("index after reopen = %d, want %d", got, index)
					}
					closeStore(t, s)
				}
				if every == 1 {
					// Every command was snapshotted: the log holds no records.
					fi, err := os.Stat(filepath.Join(dir, logName))
					must(t, err)
					if fi.Size() != logHeaderSize {
						t.Fatalf("log is %d bytes after snapshotting everything", fi.Size())
					}
				}
			})
		}
	}
}

// TestSnapshotReplayEqualsFullReplay applies the same commands to a store
// that snapshots often and one that never does, and expects equal states.
func TestSnapshotReplayEqualsFullReplay(t *testing.T) {
	cmds := randomCommands(newRand(7), 400)
	var states []string
	for _, every := range []int{1 << 30, 7} {
		dir := t.TempDir()
		s := openStore(t, dir, testOptions(every))
		for _, c := range cmds {
			s.propose(c) // refusals included
		}
		live := dump(t, s)
		closeStore(t, s)
		s = openStore(t, dir, testOptions(every))
		if got := dump(t, s); got != live {
			t.Fatalf("every=%d: replayed state differs from live state", every)
		}
		if every == 7 && s.Stats().SnapshotIndex == 0 {
			t.Fatal("no snapshot taken")
		}
		closeStore(t, s)
		states = append(states, live)
	}
	if states[0] != states[1] {
		t.Fatalf("states differ:\n%s\n%s", states[0], states[1])
	}
}

func TestRefusedCommandsAreNotLogged(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions(0))
	_, err := s.CreateTopic("a", 1, nil)
	must(t, err)
	before := s.Stats()
	for _, err := range []error{
		func() error { _, err := s.CreateTopic("a", 1, nil); return err }(),
		func() error { _, err := s.CreateTopic("b", 0, nil); return err }(),
		func() error { _, err := s.CreateTopic("", 1, nil); return err }(),
		s.DeleteTopic("x"),
		s.CreatePartitions("a", 1),
		s.AlterTopicConfigs("x", nil, nil, true),
		s.CommitOffsets("g", []OffsetCommit{{Topic: "x"}}),
	} {
		if err == nil {
			t.Fatal("refusable command accepted")
		}
	}
	must(t, s.CommitOffsets("g", nil))
	must(t, s.DeleteGroupOffsets("g", nil))
	if after := s.Stats(); after.Commands != before.Commands || after.Index != before.Index {
		t.Fatalf("refused commands were logged: %+v -> %+v", before, after)
	}
}

func TestReadsReturnCopies(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions(0))
	cfg := map[string]string{"retention.ms": "1"}
	created, err := s.CreateTopic("a", 1, cfg)
	must(t, err)
	cfg["retention.ms"] = "changed"
	created.Configs["x"] = "y"
	got, _ := s.Topic("a")
	got.Configs["z"] = "w"
	s.Topics()[0].Configs["q"] = "r"
	if got, _ := s.Topic("a"); !reflect.DeepEqual(got.Configs, map[string]string{"retention.ms": "1"}) {
		t.Fatalf("configs changed through a copy: %v", got.Configs)
	}
}

// TestInvalidUTF8 checks that what is applied live is what replay sees.
func TestInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(0))
	tp, err := s.CreateTopic("bad\xffname", 1, map[string]string{"k\xfe": "v"})
	must(t, err)
	before := dump(t, s)
	closeStore(t, s)
	s = openStore(t, dir, testOptions(0))
	if dump(t, s) != before {
		t.Fatal("live state differs from replayed state")
	}
	if _, ok := s.Topic(tp.Name); !ok {
		t.Fatalf("topic %q not found under its returned name", tp.Name)
	}
}

// TestTornTail damages the end of the log in the ways a crash or a bad disk
// does and expects Open to truncate it and keep everything before.
func TestTornTail(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, path string, lastStart, end int64)
		lastKept bool // whether the last command survives
	}{
		{"cut in record header", func(t *testing.T, p string, last, _ int64) { must(t, os.Truncate(p, last+5)) }, false},
		{"cut in payload", func(t *testing.T, p string, last, end int64) { must(t, os.Truncate(p, end-3)) }, false},
		{"flipped payload byte", func(t *testing.T, p string, _, end int64) { flip(t, p, end-2) }, false},
		{"flipped crc byte", func(t *testing.T, p string, last, _ int64) { flip(t, p, last+5) }, false},
		{"huge length", func(t *testing.T, p string, last, _ int64) { writeAt(t, p, last, []byte{0xff, 0xff, 0xff, 0xff}) }, false},
		{"garbage appended", func(t *testing.T, p string, _, end int64) { writeAt(t, p, end, []byte("garbage!")) }, true},
		{"zeros appended", func(t *testing.T, p string, _, end int64) { writeAt(t, p, end, make([]byte, 4096)) }, true},
		{"one byte appended", func(t *testing.T, p string, _, end int64) { writeAt(t, p, end, []byte{1}) }, true},
		{"header of a missing record", func(t *testing.T, p string, _, end int64) {
			writeAt(t, p, end, appendRecord(nil, []byte(`{"type":"delete_topic","delete_topic":{"name":"a"}}`))[:20])
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, logName)
			s := openStore(t, dir, testOptions(0))
			_, err := s.CreateTopic("a", 2, nil)
			must(t, err)
			must(t, s.CommitOffsets("g", []OffsetCommit{{Topic: "a", Partition: 1, Offset: 5}}))
			closeStore(t, s)
			lastStart := fileSize(t, path)

			s = openStore(t, dir, testOptions(0))
			_, err = s.CreateTopic("b", 1, nil)
			must(t, err)
			closeStore(t, s)
			end := fileSize(t, path)

			tt.damage(t, path, lastStart, end)
			s = openStore(t, dir, testOptions(0))
			if _, ok := s.GroupOffset("g", "a", 1); !ok {
				t.Fatal("command before the damage was lost")
			}
			_, kept := s.Topic("b")
			if kept != tt.lastKept {
				t.Fatalf("last command kept = %v, want %v", kept, tt.lastKept)
			}
			wantSize := lastStart
			if tt.lastKept {
				wantSize = end
			}
			if got := fileSize(t, path); got != wantSize {
				t.Fatalf("log is %d bytes after recovery, want %d", got, wantSize)
			}
			// The store appends after the truncation point, and that sticks.
			_, err = s.CreateTopic("c", 1, nil)
			must(t, err)
			before := dump(t, s)
			closeStore(t, s)
			s = openStore(t, dir, testOptions(0))
			if dump(t, s) != before {
				t.Fatal("state after append-after-recovery was not durable")
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	return fi.Size()
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, off)
	must(t, err)
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	must(t, err)
	b[0] ^= 0x55
	_, err = f.WriteAt(b, off)
	must(t, err)
}

// TestRecoveryEdges covers crashes around snapshots and damaged files
// that are not a torn tail.
func TestRecoveryEdges(t *testing.T) {
	// setup leaves a store with a few commands, closed; it returns the
	// state and index.
	setup := func(t *testing.T, dir string) (string, uint64) {
		s := openStore(t, dir, testOptions(0))
		_, err := s.CreateTopic("a", 2, nil)
		must(t, err)
		_, _, err = s.InitProducerID("")
		must(t, err)
		must(t, s.CommitOffsets("g", []OffsetCommit{{Topic: "a", Partition: 0, Offset: 3}}))
		state, index := dump(t, s), s.AppliedIndex()
		closeStore(t, s)
		return state, index
	}
	tests := []struct {
		name    string
		modify  func(t *testing.T, dir, state string, index uint64)
		wantErr bool
	}{{
		// A crash after the snapshot rename, before the log rotation: the
		// log still holds commands the snapshot contains; they must not be
		// applied twice (InitProducerID would allocate again).
		name: "snapshot without rotation",
		modify: func(t *testing.T, dir, state string, index uint64) {
			must(t, writeSnapshot(dir, index, []byte(state)))
		},
	}, {
		// The log ends before the snapshot does.
		name: "stale log",
		modify: func(t *testing.T, dir, state string, index uint64) {
			must(t, writeSnapshot(dir, index, []byte(state)))
			f, err := createLog(dir, 1)
			must(t, err)
			f.Write(appendRecord(nil, []byte(`{"type":"init_producer_id","init_producer_id":{}}`)))
			f.Close()
		},
	}, {
		name: "missing log",
		modify: func(t *testing.T, dir, state string, index uint64) {
			must(t, writeSnapshot(dir, index, []byte(state)))
			must(t, os.Remove(filepath.Join(dir, logName)))
		},
	}, {
		name: "leftover temp files",
		modify: func(t *testing.T, dir, state string, index uint64) {
			must(t, os.WriteFile(filepath.Join(dir, snapshotName+tmpSuffix), []byte("{"), 0o644))
			must(t, os.WriteFile(filepath.Join(dir, logName+tmpSuffix), []byte("x"), 0o644))
		},
	}, {
		name: "log gap",
		modify: func(t *testing.T, dir, state string, index uint64) {
			f, err := createLog(dir, index+5)
			must(t, err)
			f.Close()
		},
		wantErr: true,
	}, {
		name: "corrupt snapshot",
		modify: func(t *testing.T, dir, state string, index uint64) {
			must(t, writeSnapshot(dir, index, []byte(state)))
			p := filepath.Join(dir, snapshotName)
			flip(t, p, fileSize(t, p)-10)
		},
		wantErr: true,
	}, {
		name: "not a metadata log",
		modify: func(t *testing.T, dir, state string, index uint64) {
			writeAt(t, filepath.Join(dir, logName), 0, []byte("NOTMETA"))
		},
		wantErr: true,
	}, {
		name: "unknown command type",
		modify: func(t *testing.T, dir, state string, index uint64) {
			p := filepath.Join(dir, logName)
			writeAt(t, p, fileSize(t, p), appendRecord(nil, []byte(`{"type":"from_the_future"}`)))
		},
		wantErr: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			state, index := setup(t, dir)
			tt.modify(t, dir, state, index)
			s, err := Open(dir, testOptions(0))
			if tt.wantErr {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				return
			}
			must(t, err)
			t.Cleanup(func() { s.Close() })
			if got := dump(t, s); got != state {
				t.Fatalf("state:\n%s\nwant:\n%s", got, state)
			}
			if got := s.AppliedIndex(); got != index {
				t.Fatalf("index = %d, want %d", got, index)
			}
			id, _, err := s.InitProducerID("")
			must(t, err)
			if id != 2 {
				t.Fatalf("next producer id = %d, want 2", id)
			}
			after := dump(t, s)
			closeStore(t, s)
			s = openStore(t, dir, testOptions(0))
			if dump(t, s) != after || s.AppliedIndex() != index+1 {
				t.Fatal("command after recovery not durable")
			}
		})
	}
}

// TestGroupCommit holds the first fsync until many more proposals are
// queued, then expects them all in one more write and fsync; with a failing
// fsync it expects every proposal in the group to fail.
func TestGroupCommit(t *testing.T) {
	const n = 100
	eio := syscall.EIO
	for _, syncErr := range []error{nil, eio} {
		t.Run(fmt.Sprint("syncErr=", syncErr), func(t *testing.T) {
			dir := t.TempDir()
			var armed atomic.Bool
			entered, release := make(chan struct{}), make(chan struct{})
			opts := testOptions(0)
			opts.WrapLog = func(_ string, f LogFile) LogFile {
				return &faultLog{LogFile: f, beforeSync: func() error {
					if armed.CompareAndSwap(true, false) {
						close(entered)
						<-release
						return syncErr
					}
					return nil
				}}
			}
			s := openStore(t, dir, opts)
			_, err := s.CreateTopic("t", 1, nil)
			must(t, err)
			before := s.Stats()
			armed.Store(true)

			errs := make([]error, n)
			var wg sync.WaitGroup
			commit := func(i int) {
				defer wg.Done()
				errs[i] = s.CommitOffsets(fmt.Sprint("g", i), []OffsetCommit{{Topic: "t", Offset: int64(i)}})
			}
			wg.Add(1)
			go commit(0)
			<-entered // the writer is inside the first fsync
			wg.Add(n - 1)
			for i := 1; i < n; i++ {
				go commit(i)
			}
			waitFor(t, "proposals to queue", func() bool { return len(s.proposals) == n-1 })
			// With syncErr the first group fails; the queued group must fail
			// too, without another fsync, because a failed fsync stays failed.
			close(release)
			wg.Wait()

			after := s.Stats()
			if syncErr == nil {
				for i, err := range errs {
					if err != nil {
						t.Fatalf("commit %d: %v", i, err)
					}
				}
				if got := after.Syncs - before.Syncs; got != 2 {
					t.Fatalf("%d commits took %d fsyncs, want 2", n, got)
				}
				state := dump(t, s)
				closeStore(t, s)
				s = openStore(t, dir, testOptions(0))
				if dump(t, s) != state || len(s.OffsetGroups()) != n {
					t.Fatal("group committed offsets not durable")
				}
				return
			}
			for i, err := range errs {
				if !errors.Is(err, ErrStoreFailed) || !errors.Is(err, eio) {
					t.Fatalf("commit %d: %v, want ErrStoreFailed wrapping EIO", i, err)
				}
			}
			if got := after.Syncs - before.Syncs; got != 1 {
				t.Fatalf("%d fsyncs, want only the failed one", got)
			}
			if len(s.OffsetGroups()) != 0 {
				t.Fatal("commits of a failed group were applied")
			}
			// Still failed, though fsync would now work.
			if _, err := s.CreateTopic("u", 1, nil); !errors.Is(err, ErrStoreFailed) {
				t.Fatalf("write after failure: %v", err)
			}
			if _, ok := s.Topic("t"); !ok {
				t.Fatal("reads fail after a write failure")
			}
		})
	}
}

func TestFailedWriteStaysFailed(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	opts := testOptions(0)
	opts.WrapLog = func(_ string, f LogFile) LogFile {
		return &faultLog{LogFile: f, beforeWrite: func() error {
			if fail.Load() {
				return syscall.ENOSPC
			}
			return nil
		}}
	}
	s := openStore(t, dir, opts)
	_, err := s.CreateTopic("a", 1, nil)
	must(t, err)
	fail.Store(true)
	if _, err := s.CreateTopic("b", 1, nil); !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("CreateTopic on full disk: %v", err)
	}
	fail.Store(false)
	if _, _, err := s.InitProducerID(""); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("write after failure: %v", err)
	}
	closeStore(t, s)
	// The half-written record is a torn tail.
	s = openStore(t, dir, testOptions(0))
	if _, ok := s.Topic("a"); !ok {
		t.Fatal("lost a durable command")
	}
	if _, ok := s.Topic("b"); ok {
		t.Fatal("a half-written command was applied")
	}
	_, err = s.CreateTopic("b", 1, nil)
	must(t, err)
}

// TestConcurrentCommits commits from many goroutines while snapshots are
// taken and expects every commit durable.
func TestConcurrentCommits(t *testing.T) {
	const workers, perWorker = 16, 60
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(37))
	_, err := s.CreateTopic("t", workers, nil)
	must(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				err := s.CommitOffsets(fmt.Sprint("g", w%4), []OffsetCommit{{Topic: "t", Partition: int32(w), Offset: int64(i)}})
				if err != nil {
					errs <- err
					return
				}
				if w == 0 && i%10 == 0 {
					s.Topics() // readers run alongside
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Commands != 1+workers*perWorker || st.Snapshots == 0 {
		t.Fatalf("stats = %+v", st)
	}
	t.Logf("%d commands in %d fsyncs", st.Commands, st.Syncs)
	closeStore(t, s)
	s = openStore(t, dir, testOptions(37))
	for w := range workers {
		got, ok := s.GroupOffset(fmt.Sprint("g", w%4), "t", int32(w))
		if !ok || got.Offset != perWorker-1 {
			t.Fatalf("worker %d: offset %+v, %v", w, got, ok)
		}
	}
}

func TestClose(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(0))
	_, err := s.CreateTopic("a", 1, nil)
	must(t, err)
	if _, err := Open(dir, testOptions(0)); err == nil {
		t.Fatal("a second Open of a directory in use succeeded")
	}
	closeStore(t, s)
	must(t, s.Close())
	if _, err := s.CreateTopic("b", 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateTopic after Close: %v", err)
	}
	if err := s.CommitOffsets("g", []OffsetCommit{{Topic: "a"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("CommitOffsets after Close: %v", err)
	}
	if _, ok := s.Topic("a"); !ok {
		t.Fatal("reads fail after Close")
	}
	openStore(t, dir, testOptions(0)) // the lock was released
}

// TestSnapshotFormat pins the envelope so docs/meta-format.md stays true.
func TestSnapshotFormat(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(1))
	_, err := s.CreateTopic("a", 1, map[string]string{"retention.ms": "5"})
	must(t, err)
	closeStore(t, s)
	b, err := os.ReadFile(filepath.Join(dir, snapshotName))
	must(t, err)
	if !bytes.HasPrefix(b, []byte(`{"version":1,"index":1,"crc32c":`)) || !bytes.Contains(b, []byte(`"state":{"topics":[{"name":"a","id":"`)) {
		t.Fatalf("snapshot = %s", b)
	}
	f, err := os.Open(filepath.Join(dir, logName))
	must(t, err)
	defer f.Close()
	hdr, err := io.ReadAll(f)
	must(t, err)
	if base, err := parseLogHeader(hdr); err != nil || base != 2 || len(hdr) != logHeaderSize {
		t.Fatalf("log after snapshot: base %d, %v, %d bytes", base, err, len(hdr))
	}
}

// TestFailedCommandLeavesNoTrace: a command whose fsync failed was
// answered with an error, so it must not exist after a restart even
// though its bytes reached the file; Recover makes the store writable
// again without a restart.
func TestFailedCommandLeavesNoTrace(t *testing.T) {
	for _, fault := range []string{"fsync", "write"} {
		t.Run(fault, func(t *testing.T) {
			dir := t.TempDir()
			var fail atomic.Bool
			opts := testOptions(0)
			opts.WrapLog = func(_ string, f LogFile) LogFile {
				fl := &faultLog{LogFile: f}
				check := func() error {
					if fail.Load() {
						return syscall.EIO
					}
					return nil
				}
				if fault == "fsync" {
					fl.beforeSync = check
				} else {
					fl.beforeWrite = check
				}
				return fl
			}
			s := openStore(t, dir, opts)
			_, err := s.CreateTopic("a", 1, nil)
			must(t, err)
			fail.Store(true)
			if _, err := s.CreateTopic("b", 1, nil); !errors.Is(err, ErrStoreFailed) {
				t.Fatalf("CreateTopic with a failing %s: %v", fault, err)
			}
			if s.Failed() == nil {
				t.Fatal("store not failed")
			}
			if err := s.Recover(); fault == "fsync" && err == nil {
				// (A write fault does not stop the cut, which writes
				// nothing: the store reopens and fails at its next write.)
				t.Fatal("Recover succeeded while fsync still fails")
			}
			fail.Store(false)
			must(t, s.Recover())
			if s.Failed() != nil {
				t.Fatal("still failed after Recover")
			}
			_, err = s.CreateTopic("c", 1, nil)
			must(t, err)
			closeStore(t, s)

			s = openStore(t, dir, testOptions(0))
			defer closeStore(t, s)
			for name, want := range map[string]bool{"a": true, "b": false, "c": true} {
				if _, ok := s.Topic(name); ok != want {
					t.Errorf("topic %q exists: %v, want %v", name, ok, want)
				}
			}
		})
	}
}

// CreateTopics proposes its topics together: they share one write and one
// fsync, each is created or refused on its own (an existing name, an
// invalid partition count, a name given twice), and what was created
// survives a reopen. With a failed fsync every topic of the batch fails
// and none exists.
func TestCreateTopicsShareOneFsync(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(0))
	_, err := s.CreateTopic("exists", 1, nil)
	must(t, err)
	var specs []TopicSpec
	for i := range 500 {
		specs = append(specs, TopicSpec{Name: fmt.Sprint("t", i), Partitions: int32(1 + i%10)})
	}
	specs = append(specs,
		TopicSpec{Name: "exists", Partitions: 1},
		TopicSpec{Name: "bad", Partitions: 0},
		TopicSpec{Name: "t7", Partitions: 3}, // named twice: the first wins
	)
	before := s.Stats()
	topics, errs := s.CreateTopics(specs)
	if got := s.Stats().Syncs - before.Syncs; got != 1 {
		t.Fatalf("%d topics took %d fsyncs, want 1", len(specs), got)
	}
	for i := range 500 {
		if errs[i] != nil || topics[i].Name != specs[i].Name || topics[i].Partitions != specs[i].Partitions || topics[i].ID.IsZero() {
			t.Fatalf("topic %d: %+v, %v", i, topics[i], errs[i])
		}
	}
	for i, want := range []error{ErrTopicExists, ErrInvalidPartitions, ErrTopicExists} {
		if err := errs[500+i]; !errors.Is(err, want) {
			t.Fatalf("spec %+v: %v, want %v", specs[500+i], err, want)
		}
	}
	if tp, _ := s.Topic("t7"); tp.Partitions != specs[7].Partitions {
		t.Fatalf("t7 has %d partitions: the second spec of a name overrode the first", tp.Partitions)
	}
	state := dump(t, s)
	closeStore(t, s)
	s = openStore(t, dir, testOptions(0))
	if dump(t, s) != state || len(s.Topics()) != 501 {
		t.Fatalf("after reopen: %d topics, state changed: %v", len(s.Topics()), dump(t, s) != state)
	}
	closeStore(t, s)

	opts := testOptions(0)
	opts.WrapLog = func(_ string, f LogFile) LogFile {
		return &faultLog{LogFile: f, beforeSync: func() error { return syscall.EIO }}
	}
	s = openStore(t, dir, opts)
	_, errs = s.CreateTopics([]TopicSpec{{Name: "x", Partitions: 1}, {Name: "y", Partitions: 1}})
	for _, err := range errs {
		if !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("create after a failed fsync: %v", err)
		}
	}
	if _, ok := s.Topic("x"); ok {
		t.Fatal("a topic of a failed batch exists")
	}
}

// BenchmarkCreateTopics measures metadata topic creation: 100 topics a
// CreateTopics (one write and fsync), reported per topic with -benchmem.
func BenchmarkCreateTopics(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
	specs := make([]TopicSpec, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range specs {
			specs[j] = TopicSpec{Name: fmt.Sprintf("t%d-%d", i, j), Partitions: 10}
		}
		if _, errs := s.CreateTopics(specs); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(specs))/b.Elapsed().Seconds(), "topics/s")
}
