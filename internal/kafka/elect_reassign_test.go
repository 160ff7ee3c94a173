package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestElectAndReassignOnSingleNode: on a single node every partition is
// led by its only, preferred, replica and nothing can move; ALTER on the
// cluster is needed (CLUSTER_AUTHORIZATION_FAILED).
func TestElectAndReassignOnSingleNode(t *testing.T) {
	c, _ := authzConn(t)
	c.user = "root"
	elect := func(version int16, topics []kmsg.ElectLeadersRequestTopic) *kmsg.ElectLeadersResponse {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Topics = topics
		return call[*kmsg.ElectLeadersResponse](t, c, req, version)
	}
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "payments", []int32{0, 3}
	for v := int16(0); v <= 2; v++ {
		resp := elect(v, []kmsg.ElectLeadersRequestTopic{rt})
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != kerr.ElectionNotNeeded.Code {
			t.Errorf("v%d partition 0: %d, want ELECTION_NOT_NEEDED", v, got)
		}
		if got := resp.Topics[0].Partitions[1].ErrorCode; got != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d partition 3: %d, want UNKNOWN_TOPIC_OR_PARTITION", v, got)
		}
	}
	if resp := elect(2, nil); len(resp.Topics) != 0 {
		t.Errorf("all partitions: %+v, want none listed (none needs an election)", resp.Topics)
	}

	areq := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	at := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	at.Topic = "payments"
	ap := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	ap.Replicas = []int32{NodeID, 2}
	at.Partitions = append(at.Partitions, ap)
	areq.Topics = append(areq.Topics, at)
	aresp := call[*kmsg.AlterPartitionAssignmentsResponse](t, c, areq, 0)
	if got := aresp.Topics[0].Partitions[0].ErrorCode; got != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("reassignment on a single node: %d, want INVALID_REPLICA_ASSIGNMENT", got)
	}
	lresp := call[*kmsg.ListPartitionReassignmentsResponse](t, c, kmsg.NewPtrListPartitionReassignmentsRequest(), 0)
	if lresp.ErrorCode != 0 || len(lresp.Topics) != 0 {
		t.Errorf("list: %+v", lresp)
	}

	c.user = "bob"
	if resp := elect(1, []kmsg.ElectLeadersRequestTopic{rt}); resp.ErrorCode != errClusterAuth.Code ||
		resp.Topics[0].Partitions[0].ErrorCode != errClusterAuth.Code {
		t.Errorf("bob's election: %+v", resp)
	}
	if resp := call[*kmsg.AlterPartitionAssignmentsResponse](t, c, areq, 0); resp.ErrorCode != errClusterAuth.Code {
		t.Errorf("bob's reassignment: %d", resp.ErrorCode)
	}
	if resp := call[*kmsg.ListPartitionReassignmentsResponse](t, c, kmsg.NewPtrListPartitionReassignmentsRequest(), 0); resp.ErrorCode != errClusterAuth.Code {
		t.Errorf("bob's listing: %d", resp.ErrorCode)
	}
}
