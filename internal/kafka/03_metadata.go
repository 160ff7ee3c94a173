package kafka

// Metadata, versions 0-12.
//
// The brokers (with their racks, v1+), the controller and each partition's
// leader, leader epoch (v7+), replicas, ISR and offline replicas (v5+) come
// from the server's Cluster (cluster.go): on a single node, this broker
// (NodeID) alone leads every partition, with itself as the only replica
// and ISR. A partition without a leader is LEADER_NOT_AVAILABLE. A null topic list (or an empty one at v0) asks for all
// topics. Unknown topics are created when the broker auto-creates topics
// and the request allows it (always at v0-3, AllowAutoTopicCreation at
// v4+). Topic ids (v10+) come from the metadata store. Internal topics
// (__consumer_offsets) are marked IsInternal (v1+), so that clients'
// regex subscriptions skip them as on Kafka. Authorized
// operations (KIP-430, v8+) are computed when asked for
// (IncludeTopicAuthorizedOperations, IncludeClusterAuthorizedOperations at
// v8-10), else reported as "not requested" (-2147483648).
//
// Authorization (authz.go): a request for all topics lists only those the
// principal may DESCRIBE; a topic named in the request that it may not
// DESCRIBE is TOPIC_AUTHORIZATION_FAILED whether or not it exists, as in
// Kafka, and one asked for by id is answered without its name. Auto
// creation also needs CREATE on the topic; without it an unknown topic is
// UNKNOWN_TOPIC_OR_PARTITION.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleMetadata(c *conn, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, e := range c.brokers() {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = e.id, e.host, e.port, e.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = kmsg.StringPtr(c.s.opts.ClusterID)
	resp.ControllerID = c.s.cluster.Controller()
	resp.AuthorizedOperations = -2147483648
	if req.IncludeClusterAuthorizedOperations && req.Version >= 8 && req.Version <= 10 {
		resp.AuthorizedOperations = c.authorizedOps(auth.ResourceCluster, "")
	}

	var topics []*broker.Topic
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range c.s.broker.Topics() {
			if c.mayTopic(t.Name, auth.OpDescribe) {
				topics = append(topics, t)
			}
		}
	}
	autoCreate := req.Version < 4 || req.AllowAutoTopicCreation
	for _, rt := range req.Topics {
		st := kmsg.NewMetadataResponseTopic()
		var (
			t   *broker.Topic
			ok  bool
			err error
		)
		switch {
		case rt.Topic != nil:
			st.Topic = rt.Topic
			if !c.allowedTopic(*rt.Topic, auth.OpDescribe) {
				st.ErrorCode = errTopicAuth.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			t, ok = c.s.broker.Topic(*rt.Topic)
			if !ok && autoCreate && c.mayTopic(*rt.Topic, auth.OpCreate) {
				t, err = c.s.broker.TopicOrCreate(*rt.Topic)
				ok = err == nil
			}
		default:
			t, ok = c.s.broker.TopicByID(rt.TopicID)
			st.TopicID = rt.TopicID
			if ok && !c.allowedTopic(t.Name, auth.OpDescribe) {
				// As Kafka: TOPIC_AUTHORIZATION_FAILED, and the
				// name stays unsaid.
				st.ErrorCode = errTopicAuth.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
		}
		if !ok {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if err != nil {
				st.ErrorCode = errorCode(err)
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		topics = append(topics, t)
	}
	for _, t := range topics {
		st := metadataTopic(c.s.cluster, t)
		if req.IncludeTopicAuthorizedOperations && req.Version >= 8 {
			st.AuthorizedOperations = c.authorizedOps(auth.ResourceTopic, t.Name)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func metadataTopic(cl Cluster, t *broker.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	st.IsInternal = t.IsInternal()
	st.AuthorizedOperations = -2147483648
	for _, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.Index
		r := cl.Partition(t.Name, p.Index)
		sp.Leader = r.Leader
		sp.LeaderEpoch = r.LeaderEpoch
		sp.Replicas, sp.ISR, sp.OfflineReplicas = r.Replicas, r.ISR, r.Offline
		if r.Leader < 0 {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
