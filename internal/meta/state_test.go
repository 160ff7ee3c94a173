package meta

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func testID(n byte) TopicID { return TopicID{0x40, n, 1} }

func createCmd(name string, id byte, partitions int32) Command {
	return NewCommand(&CreateTopicCmd{Name: name, ID: testID(id), Partitions: partitions, CreatedMs: 1000 + int64(id)})
}

func commitCmd(group string, cs ...OffsetCommit) Command {
	return NewCommand(&CommitOffsetsCmd{Group: group, Commits: cs})
}

func oc(topic string, p int32, off int64) OffsetCommit {
	return OffsetCommit{Topic: topic, Partition: p, Offset: off, LeaderEpoch: 1, CommitMs: 7}
}

func mustJSON(t testing.TB, st *State) []byte {
	t.Helper()
	b, err := st.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApply runs scripted command sequences and checks each outcome and
// the final state.
func TestApply(t *testing.T) {
	type step struct {
		cmd     Command
		wantErr error
		want    *Result // checked when set
	}
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, st *State)
	}{{
		name: "create topic",
		steps: []step{
			{cmd: createCmd("a", 1, 3), want: &Result{Topic: Topic{Name: "a", ID: testID(1), Partitions: 3, Configs: map[string]string{}, CreatedMs: 1001}}},
			{cmd: createCmd("a", 2, 3), wantErr: ErrTopicExists},
			{cmd: createCmd("b", 1, 3), wantErr: ErrTopicExists}, // id in use
			{cmd: createCmd("c", 3, 0), wantErr: ErrInvalidPartitions},
			{cmd: createCmd("", 4, 1), wantErr: ErrInvalidTopicName},
			{cmd: NewCommand(&CreateTopicCmd{Name: "z", Partitions: 1}), wantErr: ErrInvalidCommand},
		},
		check: func(t *testing.T, st *State) {
			if got := st.Topics(); len(got) != 1 || got[0].Name != "a" {
				t.Fatalf("topics = %+v", got)
			}
			if tp, ok := st.TopicByID(testID(1)); !ok || tp.Name != "a" {
				t.Fatalf("TopicByID = %+v, %v", tp, ok)
			}
		},
	}, {
		name: "partitions",
		steps: []step{
			{cmd: createCmd("a", 1, 3)},
			{cmd: NewCommand(&CreatePartitionsCmd{Name: "a", Total: 3}), wantErr: ErrInvalidPartitions},
			{cmd: NewCommand(&CreatePartitionsCmd{Name: "a", Total: 2}), wantErr: ErrInvalidPartitions},
			{cmd: NewCommand(&CreatePartitionsCmd{Name: "x", Total: 9}), wantErr: ErrUnknownTopic},
			{cmd: NewCommand(&CreatePartitionsCmd{Name: "a", Total: 8})},
		},
		check: func(t *testing.T, st *State) {
			if tp, _ := st.Topic("a"); tp.Partitions != 8 {
				t.Fatalf("partitions = %d", tp.Partitions)
			}
		},
	}, {
		name: "alter configs",
		steps: []step{
			{cmd: NewCommand(&CreateTopicCmd{Name: "a", ID: testID(1), Partitions: 1, Configs: map[string]string{"retention.ms": "1", "cleanup.policy": "delete"}})},
			{cmd: NewCommand(&AlterTopicConfigsCmd{Name: "a", Set: map[string]string{"retention.ms": "2", "segment.bytes": "100"}, Remove: []string{"cleanup.policy", "absent"}})},
			{cmd: NewCommand(&AlterTopicConfigsCmd{Name: "b"}), wantErr: ErrUnknownTopic},
		},
		check: func(t *testing.T, st *State) {
			want := map[string]string{"retention.ms": "2", "segment.bytes": "100"}
			if tp, _ := st.Topic("a"); !reflect.DeepEqual(tp.Configs, want) {
				t.Fatalf("configs = %v, want %v", tp.Configs, want)
			}
		},
	}, {
		name: "replace configs",
		steps: []step{
			{cmd: NewCommand(&CreateTopicCmd{Name: "a", ID: testID(1), Partitions: 1, Configs: map[string]string{"retention.ms": "1"}})},
			{cmd: NewCommand(&AlterTopicConfigsCmd{Name: "a", Set: map[string]string{"segment.ms": "5"}, Remove: []string{"segment.ms"}, Replace: true})},
		},
		check: func(t *testing.T, st *State) {
			want := map[string]string{"segment.ms": "5"}
			if tp, _ := st.Topic("a"); !reflect.DeepEqual(tp.Configs, want) {
				t.Fatalf("configs = %v, want %v", tp.Configs, want)
			}
		},
	}, {
		name: "offsets all or nothing",
		steps: []step{
			{cmd: createCmd("a", 1, 2)},
			{cmd: commitCmd("g", oc("a", 0, 5), oc("a", 2, 5)), wantErr: ErrUnknownPartition},
			{cmd: commitCmd("g", oc("a", 0, 5), oc("b", 0, 5)), wantErr: ErrUnknownTopic},
			{cmd: commitCmd("g", oc("a", 1, 5), oc("a", 0, 6), oc("a", 1, 9))},
		},
		check: func(t *testing.T, st *State) {
			want := []OffsetCommit{oc("a", 0, 6), oc("a", 1, 9)}
			if got := st.GroupOffsets("g"); !reflect.DeepEqual(got, want) {
				t.Fatalf("offsets = %+v, want %+v", got, want)
			}
		},
	}, {
		name: "delete topic drops its offsets",
		steps: []step{
			{cmd: createCmd("a", 1, 2)},
			{cmd: createCmd("b", 2, 2)},
			{cmd: commitCmd("g1", oc("a", 0, 1), oc("b", 0, 1))},
			{cmd: commitCmd("g2", oc("a", 1, 1))},
			{cmd: NewCommand(&DeleteTopicCmd{Name: "a"})},
			{cmd: NewCommand(&DeleteTopicCmd{Name: "a"}), wantErr: ErrUnknownTopic},
		},
		check: func(t *testing.T, st *State) {
			if got := st.OffsetGroups(); !reflect.DeepEqual(got, []string{"g1"}) {
				t.Fatalf("groups = %v", got)
			}
			if got := st.GroupOffsets("g1"); !reflect.DeepEqual(got, []OffsetCommit{oc("b", 0, 1)}) {
				t.Fatalf("g1 = %+v", got)
			}
			if _, ok := st.TopicByID(testID(1)); ok {
				t.Fatal("deleted topic still found by id")
			}
		},
	}, {
		name: "delete group offsets",
		steps: []step{
			{cmd: createCmd("a", 1, 3)},
			{cmd: commitCmd("g", oc("a", 0, 1), oc("a", 1, 1), oc("a", 2, 1))},
			{cmd: commitCmd("h", oc("a", 0, 1))},
			{cmd: NewCommand(&DeleteGroupOffsetsCmd{Group: "g", Partitions: []TopicPartition{{"a", 1}, {"zz", 0}}})},
			{cmd: NewCommand(&DeleteGroupOffsetsCmd{Group: "h", All: true})},
			{cmd: NewCommand(&DeleteGroupOffsetsCmd{Group: "none", All: true})},
		},
		check: func(t *testing.T, st *State) {
			if got := st.OffsetGroups(); !reflect.DeepEqual(got, []string{"g"}) {
				t.Fatalf("groups = %v", got)
			}
			if got := st.GroupOffsets("g"); !reflect.DeepEqual(got, []OffsetCommit{oc("a", 0, 1), oc("a", 2, 1)}) {
				t.Fatalf("g = %+v", got)
			}
		},
	}, {
		name: "producer ids",
		steps: []step{
			{cmd: NewCommand(&InitProducerIDCmd{}), want: &Result{ProducerID: 1}},
			{cmd: NewCommand(&InitProducerIDCmd{TransactionalID: "tx"}), want: &Result{ProducerID: 2}},
			{cmd: NewCommand(&InitProducerIDCmd{TransactionalID: "tx"}), want: &Result{ProducerID: 2, ProducerEpoch: 1}},
			{cmd: NewCommand(&InitProducerIDCmd{}), want: &Result{ProducerID: 3}},
			{cmd: NewCommand(&InitProducerIDCmd{TransactionalID: "tx"}), want: &Result{ProducerID: 2, ProducerEpoch: 2}},
		},
		check: func(t *testing.T, st *State) {
			if id, epoch, ok := st.TransactionalProducer("tx"); !ok || id != 2 || epoch != 2 {
				t.Fatalf("tx = %d/%d/%v", id, epoch, ok)
			}
		},
	}, {
		name: "malformed",
		steps: []step{
			{cmd: Command{Type: "launch_missiles"}, wantErr: ErrInvalidCommand},
			{cmd: Command{Type: "delete_topic"}, wantErr: ErrInvalidCommand},
			{cmd: NewCommand(&CreateTopicCmd{Name: "a"}), wantErr: ErrInvalidCommand},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState()
			for i, s := range tt.steps {
				before := mustJSON(t, st)
				if err := st.Check(s.cmd); !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Check = %v, want %v", i, err, s.wantErr)
				}
				res, err := st.Apply(s.cmd)
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Apply = %v, want %v", i, err, s.wantErr)
				}
				if err != nil && !bytes.Equal(before, mustJSON(t, st)) {
					t.Fatalf("step %d: refused command changed the state", i)
				}
				if s.want != nil && !reflect.DeepEqual(res, *s.want) {
					t.Fatalf("step %d: result = %+v, want %+v", i, res, s.want)
				}
			}
			if tt.check != nil {
				tt.check(t, st)
			}
		})
	}
}

func TestProducerEpochExhausted(t *testing.T) {
	st := NewState()
	init := NewCommand(&InitProducerIDCmd{TransactionalID: "tx"})
	first, _ := st.Apply(init)
	var last Result
	for range maxProducerEpoch {
		last, _ = st.Apply(init)
	}
	if last.ProducerID != first.ProducerID || last.ProducerEpoch != 32766 {
		t.Fatalf("after %d bumps: %+v", maxProducerEpoch, last)
	}
	next, _ := st.Apply(init)
	if next.ProducerID == first.ProducerID || next.ProducerEpoch != 0 {
		t.Fatalf("past 32766: %+v, want a new id at epoch 0", next)
	}
	again, _ := st.Apply(init)
	if again.ProducerID != next.ProducerID || again.ProducerEpoch != 1 {
		t.Fatalf("after new id: %+v", again)
	}
}

// randomCommands returns a command sequence that exercises every type,
// including refused commands (AMQP ones from randomAMQPCommand).
func randomCommands(r *rand.Rand, n int) []Command {
	names := []string{"a", "b", "c", "d"}
	groups := []string{"g1", "g2", "g3"}
	var cmds []Command
	for i := range n {
		name := names[r.IntN(len(names))]
		group := groups[r.IntN(len(groups))]
		switch r.IntN(8 + amqpCommandKinds) {
		case 0:
			cmds = append(cmds, NewCommand(&CreateTopicCmd{
				Name: name, ID: TopicID{0x40, byte(i), byte(i >> 8), 1}, Partitions: int32(1 + r.IntN(4)),
				Configs: map[string]string{"retention.ms": fmt.Sprint(r.IntN(100))}, CreatedMs: int64(i),
			}))
		case 1:
			cmds = append(cmds, NewCommand(&DeleteTopicCmd{Name: name}))
		case 2:
			cmds = append(cmds, NewCommand(&CreatePartitionsCmd{Name: name, Total: int32(1 + r.IntN(8))}))
		case 3:
			cmds = append(cmds, NewCommand(&AlterTopicConfigsCmd{
				Name: name, Set: map[string]string{fmt.Sprint("k", r.IntN(3)): fmt.Sprint(i)},
				Remove: []string{fmt.Sprint("k", r.IntN(3))}, Replace: r.IntN(4) == 0,
			}))
		case 4, 5:
			var cs []OffsetCommit
			for range 1 + r.IntN(4) {
				cs = append(cs, OffsetCommit{Topic: names[r.IntN(len(names))], Partition: int32(r.IntN(3)), Offset: int64(i), CommitMs: int64(i)})
			}
			cmds = append(cmds, commitCmd(group, cs...))
		case 6:
			d := &DeleteGroupOffsetsCmd{Group: group, All: r.IntN(2) == 0}
			if !d.All {
				d.Partitions = []TopicPartition{{name, int32(r.IntN(3))}}
			}
			cmds = append(cmds, NewCommand(d))
		case 7:
			txn := []string{"", "", "tx1", "tx2"}[r.IntN(4)]
			cmds = append(cmds, NewCommand(&InitProducerIDCmd{TransactionalID: txn}))
		default:
			cmds = append(cmds, randomAMQPCommand(r, i))
		}
	}
	return cmds
}

// TestApplyDeterministic replays the same commands, through their log
// encoding, into fresh states and expects equal states, and checks that the
// snapshot encoding round-trips.
func TestApplyDeterministic(t *testing.T) {
	for seed := range uint64(20) {
		cmds := randomCommands(rand.New(rand.NewPCG(seed, 1)), 300)
		run := func() *State {
			st := NewState()
			for _, c := range cmds {
				b, err := encodeCommand(&c)
				if err != nil {
					t.Fatal(err)
				}
				d, err := decodeCommand(b)
				if err != nil {
					t.Fatal(err)
				}
				st.Apply(d)
			}
			return st
		}
		a, b := run(), run()
		ja, jb := mustJSON(t, a), mustJSON(t, b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("seed %d: states differ:\n%s\n%s", seed, ja, jb)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: states differ in memory", seed)
		}
		c := NewState()
		if err := c.UnmarshalJSON(ja); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !bytes.Equal(mustJSON(t, c), ja) {
			t.Fatalf("seed %d: snapshot encoding does not round-trip", seed)
		}
	}
}

func TestStateUnmarshalRejects(t *testing.T) {
	id := `"40010100-0000-0000-0000-000000000000"`
	tests := map[string]string{
		"duplicate topic":     `{"topics":[{"name":"a","id":` + id + `,"partitions":1},{"name":"a","id":"40020100-0000-0000-0000-000000000000","partitions":1}],"next_producer_id":1}`,
		"duplicate id":        `{"topics":[{"name":"a","id":` + id + `,"partitions":1},{"name":"b","id":` + id + `,"partitions":1}],"next_producer_id":1}`,
		"zero partitions":     `{"topics":[{"name":"a","id":` + id + `,"partitions":0}],"next_producer_id":1}`,
		"bad id":              `{"topics":[{"name":"a","id":"xyz","partitions":1}],"next_producer_id":1}`,
		"producer id zero":    `{"next_producer_id":0}`,
		"duplicate offsets":   `{"groups":[{"group":"g","offsets":[{"topic":"a","partition":0},{"topic":"a","partition":0}]}],"next_producer_id":1}`,
		"empty group":         `{"groups":[{"group":"g","offsets":[]}],"next_producer_id":1}`,
		"empty transactional": `{"producers":[{"transactional_id":"","producer_id":1}],"next_producer_id":2}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if err := NewState().UnmarshalJSON([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestTopicIDText(t *testing.T) {
	id := newTopicID()
	if id.IsZero() || id[6]>>4 != 4 || id[8]>>6 != 2 {
		t.Fatalf("not a v4 uuid: %s", id)
	}
	got, err := ParseTopicID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseTopicID(%s) = %s, %v", id, got, err)
	}
	for _, bad := range []string{"", "40010100000000000000000000000000", "4001010-00000-0000-0000-000000000000", "4001010g-0000-0000-0000-000000000000"} {
		if _, err := ParseTopicID(bad); err == nil {
			t.Errorf("ParseTopicID(%q) accepted", bad)
		}
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }
