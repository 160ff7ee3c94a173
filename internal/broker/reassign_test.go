package broker

import (
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// TestPlanBalance: Kafka's per-broker imbalance decides which of the
// partitions this node leads go back to their preferred replicas.
func TestPlanBalance(t *testing.T) {
	p := func(part, pref, leader int32, inSync bool) LeaderInfo {
		return LeaderInfo{Topic: "t", Partition: part, Preferred: pref, Leader: leader, PreferredInSync: inSync}
	}
	for _, tc := range []struct {
		name    string
		parts   []LeaderInfo
		percent int
		want    []int32 // partitions handed back
	}{
		{"balanced", []LeaderInfo{p(0, 1, 1, true), p(1, 2, 2, true)}, 10, nil},
		{"one of one away", []LeaderInfo{p(0, 2, 1, true)}, 10, []int32{0}},
		{"not in sync", []LeaderInfo{p(0, 2, 1, false)}, 10, nil},
		{"led elsewhere", []LeaderInfo{p(0, 2, 3, true)}, 10, nil},
		{"preferred here", []LeaderInfo{p(0, 1, 2, true)}, 10, nil},
		// Broker 2 is preferred for 10, leads 9: 10% is not above 10%.
		{"at the threshold", append(led(2, 9), p(9, 2, 1, true)), 10, nil},
		{"above it", append(led(2, 8), p(8, 2, 1, true), p(9, 2, 1, true)), 10, []int32{8, 9}},
		{"zero percent", append(led(2, 99), p(99, 2, 1, true)), 0, []int32{99}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int32
			for _, x := range PlanBalance(tc.parts, 1, tc.percent) {
				got = append(got, x.Partition)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("handed back %v, want %v", got, tc.want)
			}
		})
	}
}

// led is n partitions, numbered from 0, preferred by and led by pref.
func led(pref int32, n int) []LeaderInfo {
	out := make([]LeaderInfo, n)
	for i := range out {
		out[i] = LeaderInfo{Topic: "t", Partition: int32(i), Preferred: pref, Leader: pref, PreferredInSync: true}
	}
	return out
}

func TestQuorumAfter(t *testing.T) {
	ids := func(v ...cluster.NodeID) []cluster.NodeID { return v }
	for _, tc := range []struct {
		remaining, active []cluster.NodeID
		want              bool
	}{
		{ids(1, 2), ids(1, 2, 3), true},
		{ids(1, 2), ids(1, 3), false}, // one of two is no majority
		{ids(1, 2, 3), ids(1, 2), true},
		{ids(1, 2, 3), ids(1), false},
	} {
		if got := quorumAfter(tc.remaining, tc.active); got != tc.want {
			t.Errorf("quorumAfter(%v, %v) = %v", tc.remaining, tc.active, got)
		}
	}
}
