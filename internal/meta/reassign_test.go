package meta

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// applyEncoded applies p to st through its encoding, as the log carries
// it.
func applyEncoded(t *testing.T, st *State, p Payload) error {
	t.Helper()
	cmd := NewCommand(p)
	b, err := encodeCommand(&cmd)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeCommand(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	_, err = st.Apply(back)
	return err
}

// TestReassignment scripts a move's life in the state machine: started
// (the assignment widens, the move is recorded), replaced by a new
// target while in progress, completed (the assignment narrows), cancelled (a move back),
// and each command's encoding round trip.
func TestReassignment(t *testing.T) {
	st := NewState()
	id := testID(1)
	apply := func(p Payload) error { t.Helper(); return applyEncoded(t, st, p) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(apply(&CreateTopicCmd{Name: "a", ID: id, Partitions: 2, Replicas: [][]int32{{1, 2}, {2, 3}}}))
	topic := func() Topic { t.Helper(); tp, _ := st.Topic("a"); return tp }

	must(apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 0, Target: []int32{2, 3}}}}))
	tp := topic()
	if want := [][]int32{{2, 3, 1}, {2, 3}}; !reflect.DeepEqual(tp.Replicas, want) {
		t.Fatalf("replicas while moving %v, want %v", tp.Replicas, want)
	}
	mv := tp.Reassignments[0]
	if !reflect.DeepEqual(mv.Adding(), []int32{3}) || !reflect.DeepEqual(mv.Removing(), []int32{1}) {
		t.Fatalf("adding %v removing %v", mv.Adding(), mv.Removing())
	}
	// A new target while moving replaces the move's, from the current
	// assignment; the replica set before the first move is kept.
	must(apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 0, Target: []int32{1, 3}}}}))
	tp = topic()
	mv = tp.Reassignments[0]
	if !reflect.DeepEqual(tp.Replicas[0], []int32{1, 3, 2}) || !reflect.DeepEqual(mv.Before(), []int32{1, 2}) ||
		len(mv.Adding()) != 0 || !reflect.DeepEqual(mv.Removing(), []int32{2}) {
		t.Fatalf("replaced move: replicas %v, move %+v", tp.Replicas[0], mv)
	}
	if err := apply(&CompleteReassignmentCmd{Name: "a", ID: id, Partition: 0, Target: []int32{2, 3}}); !errors.Is(err, ErrNoReassignment) {
		t.Fatalf("completion of the replaced target: %v", err)
	}
	must(apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 0, Target: []int32{2, 3}}}}))
	if tp := topic(); !reflect.DeepEqual(tp.Replicas[0], []int32{2, 3, 1}) || !reflect.DeepEqual(tp.Reassignments[0].Before(), []int32{1, 2}) {
		t.Fatalf("replaced again: replicas %v, move %+v", tp.Replicas[0], tp.Reassignments[0])
	}
	if err := apply(&ReassignPartitionsCmd{Name: "a", ID: testID(2), Partitions: []PartitionTarget{{Partition: 1, Target: []int32{1, 3}}}}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("stale topic id: %v", err)
	}
	if err := apply(&CompleteReassignmentCmd{Name: "a", ID: id, Partition: 0, Target: []int32{1, 3}}); !errors.Is(err, ErrNoReassignment) {
		t.Fatalf("completion to another target: %v", err)
	}
	must(apply(&CompleteReassignmentCmd{Name: "a", ID: id, Partition: 0, Target: []int32{2, 3}}))
	if tp := topic(); !reflect.DeepEqual(tp.Replicas, [][]int32{{2, 3}, {2, 3}}) || tp.Reassignments != nil {
		t.Fatalf("after completion: %v %v", tp.Replicas, tp.Reassignments)
	}

	// Cancelled: a move back from where it is.
	must(apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 1, Target: []int32{1, 2}}}}))
	must(apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 1}}}))
	tp = topic()
	if mv := tp.Reassignments[1]; !reflect.DeepEqual(mv.Target, []int32{2, 3}) || !reflect.DeepEqual(tp.Replicas[1], []int32{2, 3, 1}) {
		t.Fatalf("cancelled: move %+v, replicas %v", mv, tp.Replicas[1])
	}
	// A move to where it is ends at once.
	must(apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 0, Target: []int32{2, 3}}}}))
	if _, moving := topic().Reassignments[0]; moving {
		t.Fatal("a move to the current replicas is in progress")
	}
	if err := apply(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 0, Target: []int32{2, 2}}}}); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("a replica twice: %v", err)
	}
	must(apply(&ElectPreferredLeadersCmd{Name: "a", ID: id, Partitions: []int32{0}}))

	// The state survives its JSON form (snapshots).
	b := mustJSON(t, st)
	if !strings.Contains(string(b), `"reassignments":{"1":{"target":[2,3],"original":[1,2,3],"base":[2,3]}}`) {
		t.Fatalf("the move in progress is not in the state's JSON: %s", b)
	}
	back := NewState()
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, back); string(got) != string(b) {
		t.Fatalf("snapshot round trip:\n got %s\nwant %s", got, b)
	}
}

// TestReassignmentOfOneReplica: a move from one replica, or to one, marks
// the partition Grouped (a Raft group from then on), however the move
// ends; a move to where it is marks nothing.
func TestReassignmentOfOneReplica(t *testing.T) {
	st := NewState()
	id := testID(1)
	must := func(p Payload) {
		t.Helper()
		if err := applyEncoded(t, st, p); err != nil {
			t.Fatal(err)
		}
	}
	must(&CreateTopicCmd{Name: "a", ID: id, Partitions: 4, Replicas: [][]int32{{1}, {2}, {3}, {1, 2}}})
	topic := func() Topic { t.Helper(); tp, _ := st.Topic("a"); return tp }

	must(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{
		{Partition: 0, Target: []int32{1}},    // where it is: nothing moves
		{Partition: 1, Target: []int32{3}},    // to another node
		{Partition: 2, Target: []int32{3, 1}}, // more replicas
		{Partition: 3, Target: []int32{1}},    // down to one: ends as a group of one
	}})
	tp := topic()
	if want := []int32{1, 2, 3}; !reflect.DeepEqual(tp.Grouped, want) {
		t.Fatalf("grouped %v, want %v", tp.Grouped, want)
	}
	if !tp.IsGrouped(1) || tp.IsGrouped(0) || !tp.IsGrouped(3) {
		t.Fatalf("IsGrouped: %v %v %v", tp.IsGrouped(1), tp.IsGrouped(0), tp.IsGrouped(3))
	}
	if want := [][]int32{{1}, {3, 2}, {3, 1}, {1, 2}}; !reflect.DeepEqual(tp.Replicas, want) {
		t.Fatalf("replicas while moving %v, want %v", tp.Replicas, want)
	}
	// Completed onto one node, partition 1 stays a group; a cancelled
	// move leaves partition 2 one too.
	must(&CompleteReassignmentCmd{Name: "a", ID: id, Partition: 1, Target: []int32{3}})
	must(&ReassignPartitionsCmd{Name: "a", ID: id, Partitions: []PartitionTarget{{Partition: 2}}})
	must(&CompleteReassignmentCmd{Name: "a", ID: id, Partition: 2, Target: []int32{3}})
	tp = topic()
	if !reflect.DeepEqual(tp.Replicas[1], []int32{3}) || !reflect.DeepEqual(tp.Replicas[2], []int32{3}) || !reflect.DeepEqual(tp.Grouped, []int32{1, 2, 3}) {
		t.Fatalf("after the moves: replicas %v, grouped %v", tp.Replicas, tp.Grouped)
	}
	// The mark is in the snapshot and survives it; an older state
	// without it reads as none grouped.
	b := mustJSON(t, st)
	if !strings.Contains(string(b), `"grouped":[1,2,3]`) {
		t.Fatalf("grouped partitions not in the state's JSON: %s", b)
	}
	back := NewState()
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if got, _ := back.Topic("a"); !reflect.DeepEqual(got.Grouped, []int32{1, 2, 3}) {
		t.Fatalf("grouped after a snapshot: %v", got.Grouped)
	}
}
