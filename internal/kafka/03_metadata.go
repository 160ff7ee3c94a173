package kafka

// Metadata, versions 0-12.
//
// One broker (NodeID) leads every partition, with itself as the only
// replica and ISR. A null topic list (or an empty one at v0) asks for all
// topics. Unknown topics are created when the broker auto-creates topics
// and the request allows it (always at v0-3, AllowAutoTopicCreation at
// v4+). Topic ids (v10+) come from the metadata store. Internal topics
// (__consumer_offsets) are marked IsInternal (v1+), so that clients'
// regex subscriptions skip them as on Kafka. Authorized
// operations are reported as "not requested" (-2147483648).

import (
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleMetadata(c *conn, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID = NodeID
	b.Host, b.Port = c.advertised()
	resp.Brokers = append(resp.Brokers, b)
	resp.ClusterID = kmsg.StringPtr(c.s.opts.ClusterID)
	resp.ControllerID = NodeID
	resp.AuthorizedOperations = -2147483648

	var topics []*broker.Topic
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		topics = c.s.broker.Topics()
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
			if autoCreate {
				t, err = c.s.broker.TopicOrCreate(*rt.Topic)
				ok = err == nil
			} else {
				t, ok = c.s.broker.Topic(*rt.Topic)
			}
		default:
			t, ok = c.s.broker.TopicByID(rt.TopicID)
			st.TopicID = rt.TopicID
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
		resp.Topics = append(resp.Topics, metadataTopic(t))
	}
	return resp, nil
}

func metadataTopic(t *broker.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.Name)
	st.TopicID = t.ID
	st.IsInternal = t.IsInternal()
	st.AuthorizedOperations = -2147483648
	for _, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.Index
		sp.Leader = NodeID
		sp.LeaderEpoch = 0
		sp.Replicas = []int32{NodeID}
		sp.ISR = []int32{NodeID}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
