package meta

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestRecordLeaders: leaders recorded per partition through the command's
// encoding; a record of an older epoch does not replace a newer one;
// malformed records are refused, those of a stale topic or a partition
// past the count skipped; the records survive the snapshot's JSON.
func TestRecordLeaders(t *testing.T) {
	st := NewState()
	id := testID(1)
	if err := applyEncoded(t, st, &CreateTopicCmd{Name: "a", ID: id, Partitions: 2, Replicas: [][]int32{{1, 2}, {2, 3}}}); err != nil {
		t.Fatal(err)
	}
	record := func(p, leader, epoch int32) error {
		t.Helper()
		return applyEncoded(t, st, &RecordLeadersCmd{Topics: []TopicLeaders{{Name: "a", ID: id, Leaders: []LeaderRecord{{Partition: p, Leader: leader, Epoch: epoch}}}}})
	}
	leaders := func() map[int32]PartitionLeader { t.Helper(); tp, _ := st.Topic("a"); return tp.Leaders }
	if err := record(0, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := record(0, 1, 2); err != nil { // older: kept out
		t.Fatal(err)
	}
	if err := record(1, 3, 1); err != nil {
		t.Fatal(err)
	}
	if want := map[int32]PartitionLeader{0: {Leader: 2, Epoch: 3}, 1: {Leader: 3, Epoch: 1}}; !reflect.DeepEqual(leaders(), want) {
		t.Fatalf("leaders %v, want %v", leaders(), want)
	}
	if err := record(0, 1, 4); err != nil {
		t.Fatal(err)
	}
	if got := leaders()[0]; got != (PartitionLeader{Leader: 1, Epoch: 4}) {
		t.Fatalf("after a newer epoch: %v", got)
	}
	for _, bad := range [][3]int32{{-1, 1, 1}, {0, 0, 1}, {0, 1, -1}} {
		if err := record(bad[0], bad[1], bad[2]); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("record %v: %v", bad, err)
		}
	}
	// Skipped, not refused, beside a record that applies: a partition
	// past the count, a stale topic id, an unknown topic.
	if err := applyEncoded(t, st, &RecordLeadersCmd{Topics: []TopicLeaders{
		{Name: "a", ID: id, Leaders: []LeaderRecord{{Partition: 2, Leader: 1, Epoch: 9}, {Partition: 1, Leader: 2, Epoch: 2}}},
		{Name: "a", ID: testID(2), Leaders: []LeaderRecord{{Partition: 0, Leader: 3, Epoch: 9}}},
		{Name: "gone", ID: testID(3), Leaders: []LeaderRecord{{Partition: 0, Leader: 3, Epoch: 9}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if want := map[int32]PartitionLeader{0: {Leader: 1, Epoch: 4}, 1: {Leader: 2, Epoch: 2}}; !reflect.DeepEqual(leaders(), want) {
		t.Fatalf("after skipped records: %v, want %v", leaders(), want)
	}
	b := mustJSON(t, st)
	if !strings.Contains(string(b), `"leaders":{"0":{"leader":1,"epoch":4},"1":{"leader":2,"epoch":2}}`) {
		t.Fatalf("leaders not in the state's JSON: %s", b)
	}
	back := NewState()
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, back); string(got) != string(b) {
		t.Fatalf("snapshot round trip:\n got %s\nwant %s", got, b)
	}
}
