package kafka

// DeleteTopics, versions 0-6.
//
// Topics are deleted, data and committed offsets included, before the
// answer, so TimeoutMillis is ignored. v6 names a topic by name or by id
// (UNKNOWN_TOPIC_ID when unknown; both at once is INVALID_REQUEST) and is
// answered with both. A topic named twice is INVALID_REQUEST, as in Kafka.
// Errors carry a message (v5+).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteTopics(c *conn, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	if req.Version < 6 {
		topics = make([]kmsg.DeleteTopicsRequestTopic, 0, len(req.TopicNames))
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			topics = append(topics, rt)
		}
	}
	key := func(rt kmsg.DeleteTopicsRequestTopic) string {
		if rt.Topic != nil {
			return "name " + *rt.Topic
		}
		return "id " + broker.TopicID(rt.TopicID).String()
	}
	dup := duplicated(topics, key)
	for _, rt := range topics {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var err error
		if dup[key(rt)] {
			err = reqErr(kerr.InvalidRequest, "topic named more than once")
		} else {
			err = c.deleteTopic(&st)
		}
		st.ErrorCode, st.ErrorMessage = codeAndMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// deleteTopic deletes the topic st names, by name or by id, and fills in
// the other.
func (c *conn) deleteTopic(st *kmsg.DeleteTopicsResponseTopic) error {
	id := broker.TopicID(st.TopicID)
	switch {
	case st.Topic != nil && !id.IsZero():
		return reqErr(kerr.InvalidRequest, "give a topic name or a topic id, not both")
	case st.Topic == nil:
		t, ok := c.s.broker.TopicByID(id)
		if !ok {
			return reqErr(kerr.UnknownTopicID, "unknown topic id %s", id)
		}
		if !c.allowedTopic(t.Name, auth.OpDelete) { // the name stays unsaid
			return reqErr(errTopicAuth, "DELETE on topic id %s is not allowed", id)
		}
		st.Topic = kmsg.StringPtr(t.Name)
	case !c.allowedTopic(*st.Topic, auth.OpDelete):
		return reqErr(errTopicAuth, "DELETE on topic %q is not allowed", *st.Topic)
	default:
		if t, ok := c.s.broker.Topic(*st.Topic); ok {
			st.TopicID = t.ID
		}
	}
	return c.s.broker.DeleteTopic(*st.Topic)
}
