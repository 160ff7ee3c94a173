package kafka

// ListPartitionReassignments, version 0.
//
// The moves in progress (AlterPartitionReassignments): each partition's
// whole replica set during the move (the target followed by the replicas
// leaving), and the replicas being added and removed. Null topics: every
// move; named partitions that are not moving are left out, as in Kafka.
// Needs DESCRIBE on the cluster, as in Kafka (CLUSTER_AUTHORIZATION_FAILED,
// top-level).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListPartitionReassignments(c *conn, req *kmsg.ListPartitionReassignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !c.allowedCluster(auth.OpDescribe) {
		resp.ErrorCode, resp.ErrorMessage = codeAndMessage(reqErr(errClusterAuth, "DESCRIBE on the cluster is not allowed"))
		return resp, nil
	}
	// The partitions asked for, as a set: the list comes from the network.
	type tp struct {
		topic string
		p     int32
	}
	var named map[tp]bool
	if req.Topics != nil {
		named = map[tp]bool{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				named[tp{rt.Topic, p}] = true
			}
		}
	}
	asked := func(topic string, p int32) bool { return named == nil || named[tp{topic, p}] }
	for _, mv := range c.s.broker.Reassignments() {
		if !asked(mv.Topic, mv.Partition) {
			continue
		}
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != mv.Topic {
			t := kmsg.NewListPartitionReassignmentsResponseTopic()
			t.Topic = mv.Topic
			resp.Topics = append(resp.Topics, t)
			n++
		}
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition, sp.Replicas, sp.AddingReplicas, sp.RemovingReplicas = mv.Partition, mv.Replicas, mv.Adding, mv.Removing
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, sp)
	}
	return resp, nil
}
