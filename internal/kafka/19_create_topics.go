package kafka

// CreateTopics, versions 0-7.
//
// On a single node there is one broker, so ReplicationFactor must be -1
// (default) or 1, else INVALID_REPLICATION_FACTOR, and a manual
// ReplicaAssignment is accepted when it places partitions 0..n-1 each on
// this node alone (and, as Kafka requires, NumPartitions and
// ReplicationFactor are -1); any other placement is
// INVALID_REPLICA_ASSIGNMENT. In a cluster the broker places the replicas
// (a replication factor up to the registered nodes) or takes the
// assignment given (docs/clustering.md). NumPartitions -1 takes the
// broker default, 0 or below -1 is INVALID_PARTITIONS. A null config value
// is INVALID_CONFIG and a topic named twice INVALID_REQUEST, as in Kafka.
// Topics are created before the answer; in a cluster the answer also
// waits for the new partitions this node replicates to elect their Raft
// leaders (their first replicas stand at once), so that the next
// Metadata finds them, for at most TimeoutMillis (5 s when unset or
// longer).
// v5+ answers with the partition count, the replication factor and every
// resolved config (source DYNAMIC_TOPIC_CONFIG when set, DEFAULT_CONFIG
// otherwise), also under ValidateOnly; v7+ with the topic id (zero under
// ValidateOnly, which creates nothing). Errors carry a message (v1+).
// Needs CREATE on the cluster or the topic (TOPIC_AUTHORIZATION_FAILED);
// without DESCRIBE_CONFIGS on the topic the answer has no configs and
// ConfigErrorCode says TOPIC_AUTHORIZATION_FAILED, as in Kafka.

import (
	"time"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateTopics(c *conn, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	dup := duplicated(req.Topics, func(rt kmsg.CreateTopicsRequestTopic) string { return rt.Topic })
	// The topics that pass the request's own checks are created together
	// (one metadata fsync for all of them); each is answered on its own.
	errs := make([]error, len(req.Topics))
	var (
		specs []broker.TopicSpec
		at    []int // the index in req.Topics of each spec
	)
	for i, rt := range req.Topics {
		var sp broker.TopicSpec
		if dup[rt.Topic] {
			errs[i] = reqErr(kerr.InvalidRequest, "topic %q is named more than once", rt.Topic)
		} else if !c.may(auth.ResourceCluster, auth.ClusterResourceName, auth.OpCreate) && !c.allowedTopic(rt.Topic, auth.OpCreate) {
			errs[i] = reqErr(errTopicAuth, "CREATE on topic %q is not allowed", rt.Topic)
		} else if sp, errs[i] = topicSpec(rt, c.s.single); errs[i] == nil {
			specs = append(specs, sp)
			at = append(at, i)
		}
	}
	topics := make([]*broker.Topic, len(req.Topics))
	if len(specs) > 0 {
		for k, r := range c.s.broker.CreateTopics(specs, req.ValidateOnly) {
			topics[at[k]], errs[at[k]] = r.Topic, r.Err
		}
	}
	if !req.ValidateOnly {
		deadline := leadersDeadline(req.TimeoutMillis)
		for i, t := range topics {
			if t != nil && errs[i] == nil {
				c.s.broker.AwaitLeaders(t.Name, deadline)
			}
		}
	}
	for i, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		err := errs[i]
		if st.ErrorCode, st.ErrorMessage = codeAndMessage(err); err == nil {
			t := topics[i]
			st.TopicID = t.ID
			st.NumPartitions, st.ReplicationFactor = t.Topic.Partitions, 1
			if len(t.Replicas) > 0 {
				st.ReplicationFactor = int16(len(t.Replicas[0]))
			}
			if !c.mayTopic(rt.Topic, auth.OpDescribeConfigs) { // as Kafka: no configs, and why
				st.ConfigErrorCode = errTopicAuth.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			for _, e := range c.s.broker.ResolveTopicConfigs(t.Configs) {
				sc := kmsg.NewCreateTopicsResponseTopicConfig()
				sc.Name, sc.Value, sc.Source = e.Key, kmsg.StringPtr(e.Value), int8(configSource(e))
				st.Configs = append(st.Configs, sc)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// topicSpec checks one topic of a request and turns it into the core's
// spec (NumPartitions -1 becomes 0: the broker default). On a single
// node a replica assignment must name this node alone and is dropped; in
// a cluster it is passed on, for the broker to check against the
// registry of nodes.
// leadersDeadline is how long CreateTopics and CreatePartitions wait for
// new partitions' leaders: the request's timeout, at most 5 s.
func leadersDeadline(timeoutMillis int32) time.Time {
	d := 5 * time.Second
	if t := time.Duration(timeoutMillis) * time.Millisecond; t > 0 && t < d {
		d = t
	}
	return time.Now().Add(d)
}

func topicSpec(rt kmsg.CreateTopicsRequestTopic, single bool) (broker.TopicSpec, error) {
	partitions := rt.NumPartitions
	var replicas [][]int32
	var rfactor int16
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return broker.TopicSpec{}, reqErr(kerr.InvalidRequest, "a replica assignment excludes a partition count and a replication factor")
		}
		partitions = int32(len(rt.ReplicaAssignment))
		placed := make([]bool, partitions)
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || a.Partition >= partitions || placed[a.Partition] {
				return broker.TopicSpec{}, reqErr(kerr.InvalidReplicaAssignment, "assignments must cover partitions 0 to %d once each", partitions-1)
			}
			placed[a.Partition] = true
			if !single {
				if len(a.Replicas) == 0 {
					return broker.TopicSpec{}, reqErr(kerr.InvalidReplicaAssignment, "partition %d: no replicas", a.Partition)
				}
				if replicas == nil {
					replicas = make([][]int32, partitions)
				}
				replicas[a.Partition] = a.Replicas
				continue
			}
			if !onlyThisNode(a.Replicas) {
				return broker.TopicSpec{}, reqErr(kerr.InvalidReplicaAssignment, "partition %d: replicas %v: the only broker is %d", a.Partition, a.Replicas, NodeID)
			}
		}
	} else {
		if rf := rt.ReplicationFactor; rf != -1 && rf != 1 {
			if !single {
				if rf <= 0 {
					return broker.TopicSpec{}, reqErr(kerr.InvalidReplicationFactor, "replication factor %d: use a positive number or -1", rf)
				}
				rfactor = rf // checked against the registered nodes by the broker
			} else {
				return broker.TopicSpec{}, reqErr(kerr.InvalidReplicationFactor, "replication factor %d: the cluster has one broker", rf)
			}
		}
		if partitions == 0 || partitions < -1 {
			return broker.TopicSpec{}, reqErr(kerr.InvalidPartitions, "number of partitions must be positive, or -1 for the default")
		}
	}
	var configs map[string]string
	for _, cfg := range rt.Configs {
		if cfg.Value == nil {
			return broker.TopicSpec{}, reqErr(kerr.InvalidConfig, "null value for config %q", cfg.Name)
		}
		if configs == nil {
			configs = make(map[string]string, len(rt.Configs))
		}
		configs[cfg.Name] = *cfg.Value
	}
	if partitions < 0 {
		partitions = 0
	}
	return broker.TopicSpec{Name: rt.Topic, Partitions: partitions, Configs: configs, Replicas: replicas, ReplicationFactor: rfactor}, nil
}
