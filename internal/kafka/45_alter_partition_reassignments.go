package kafka

// AlterPartitionReassignments, version 0.
//
// Moves replicated partitions (placed on two or more nodes) to a new
// replica set: the move is recorded in the metadata and answered at once,
// as in Kafka, and carried out by the partition's Raft leader, one
// membership change at a time (new replicas join as learners and become
// voters once caught up, leaving ones are removed, the leader last after
// handing over); ListPartitionReassignments shows it until it is done
// (broker/reassign.go). Null replicas cancel a move in progress: unlike
// Kafka, which drops the new replicas at once, the cancelled move becomes
// a move back to the original replicas, listed until it is done, since
// replicas already added to the Raft group must leave it through the same
// membership changes. A partition not moving is then
// NO_REASSIGNMENT_IN_PROGRESS, as in Kafka.
//
// Refused: a target with a node that is not registered or named twice
// (INVALID_REPLICA_ASSIGNMENT); a partition of one replica, or a target
// of fewer than two (INVALID_REPLICATION_FACTOR: such a partition has no
// Raft group to carry its data to the new replicas); a partition already
// moving given another target (REASSIGNMENT_IN_PROGRESS: Kafka replaces
// the target; here cancel first); an unknown topic or partition
// (UNKNOWN_TOPIC_OR_PARTITION); anything on a single node
// (INVALID_REPLICA_ASSIGNMENT). A move never leaves a partition without
// a quorum: a replica is removed only while a majority of the remaining
// voters is active, and a move waits (still listed) until it is. Needs
// ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED, top-level).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterPartitionReassignments(c *conn, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if !c.allowedCluster(auth.OpAlter) {
		resp.ErrorCode, resp.ErrorMessage = codeAndMessage(reqErr(errClusterAuth, "ALTER on the cluster is not allowed"))
		return resp, nil
	}
	for _, rt := range req.Topics {
		moves := make([]broker.PartitionMove, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			moves[i] = broker.PartitionMove{Partition: rp.Partition, Target: rp.Replicas}
		}
		errs := c.s.broker.ReassignPartitions(rt.Topic, moves)
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for i, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode, sp.ErrorMessage = codeAndMessage(errs[i])
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
