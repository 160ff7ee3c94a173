package kafka

// CreatePartitions, versions 0-3.
//
// Grows a topic to Count partitions; the count cannot shrink or stay
// (INVALID_PARTITIONS). Kafka lets the client place the new partitions;
// with one broker the only placement is this node alone, so an Assignment
// is accepted when it has one entry per new partition, each naming just
// NodeID, and is otherwise INVALID_REPLICA_ASSIGNMENT. A topic named twice
// is INVALID_REQUEST, as in Kafka. In a cluster an Assignment may name
// any one registered node a partition (INVALID_REPLICATION_FACTOR for
// more, INVALID_REPLICA_ASSIGNMENT for an unknown node); without one the
// broker places the new partitions. Partitions are created before the
// answer, which in a cluster also waits for their leaders as CreateTopics
// does (at most TimeoutMillis, 5 s when unset or longer).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(c *conn, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	dup := duplicated(req.Topics, func(rt kmsg.CreatePartitionsRequestTopic) string { return rt.Topic })
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if dup[rt.Topic] {
			err = reqErr(kerr.InvalidRequest, "topic %q is named more than once", rt.Topic)
		} else {
			err = c.createPartitions(rt, req.ValidateOnly)
			if err == nil && !req.ValidateOnly {
				c.s.broker.AwaitLeaders(rt.Topic, leadersDeadline(req.TimeoutMillis))
			}
		}
		st.ErrorCode, st.ErrorMessage = codeAndMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (c *conn) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	if !c.allowedTopic(rt.Topic, auth.OpAlter) {
		return reqErr(errTopicAuth, "ALTER on topic %q is not allowed", rt.Topic)
	}
	t, ok := c.s.broker.Topic(rt.Topic)
	if !ok {
		return broker.ErrUnknownTopic
	}
	current := int32(len(t.Partitions))
	if rt.Count <= current {
		return reqErr(kerr.InvalidPartitions, "topic has %d partitions: the count can only grow", current)
	}
	var replicas [][]int32
	if rt.Assignment != nil {
		if len(rt.Assignment) != int(rt.Count-current) {
			return reqErr(kerr.InvalidReplicaAssignment, "%d assignments for %d new partitions", len(rt.Assignment), rt.Count-current)
		}
		for i, a := range rt.Assignment {
			if !c.s.single {
				if len(a.Replicas) == 0 {
					return reqErr(kerr.InvalidReplicaAssignment, "partition %d: no replicas", current+int32(i))
				}
				replicas = append(replicas, a.Replicas)
				continue
			}
			if !onlyThisNode(a.Replicas) {
				return reqErr(kerr.InvalidReplicaAssignment, "partition %d: replicas %v: the only broker is %d", current+int32(i), a.Replicas, NodeID)
			}
		}
	}
	return c.s.broker.CreatePartitionsAt(rt.Topic, rt.Count, replicas, validateOnly)
}
