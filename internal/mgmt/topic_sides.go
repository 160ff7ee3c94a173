package mgmt

import "github.com/sluice-mq/sluice/internal/meta"

// A topic's two faces on its page (GET /api/kafka/topics/{name}): what
// reads it and what writes into it, of either protocol, each entry a map
// with a "kind". Kafka consumer groups read it; AMQP exchanges bound to it
// (bindings of kind topic) write into it. Other readers and writers (an
// AMQP stream consumer of the topic, a queue bound to it, a share group)
// add a function to topicReaders or topicWriters in their own file; the
// page and the console list whatever kinds come.
type topicSide func(a *API, s *session, topic string) []map[string]any

var (
	topicReaders = []topicSide{consumerGroupsReading}
	topicWriters = []topicSide{exchangesFeeding}
)

// topicSides is the "readers" and "writers" of a topic's JSON.
func (a *API) topicSides(s *session, topic string) (readers, writers []map[string]any) {
	readers, writers = []map[string]any{}, []map[string]any{}
	for _, f := range topicReaders {
		readers = append(readers, f(a, s, topic)...)
	}
	for _, f := range topicWriters {
		writers = append(writers, f(a, s, topic)...)
	}
	return readers, writers
}

// consumerGroupsReading are the consumer groups with committed offsets on
// the topic or members assigned its partitions: kind "consumer_group",
// name, state, members, lag (on this topic only) and partitions (how many
// of its partitions the group has an offset or an assignee for).
func consumerGroupsReading(a *API, _ *session, topic string) []map[string]any {
	var out []map[string]any
	for _, id := range a.groupIDs() {
		g := a.groupJSON(id, true)
		var lag int64
		parts := 0
		for _, o := range g["offsets"].([]map[string]any) {
			if o["topic"] != topic {
				continue
			}
			parts++
			if l, ok := o["lag"].(int64); ok {
				lag += l
			}
		}
		if parts == 0 {
			continue
		}
		out = append(out, map[string]any{
			"kind": "consumer_group", "name": id, "state": g["state"], "type": g["type"],
			"members": g["members"], "lag": lag, "partitions": parts,
		})
	}
	return out
}

// exchangesFeeding are the AMQP exchanges bound to the topic, in every
// vhost the user sees: kind "exchange", vhost, name, routing_key,
// arguments, properties_key (the binding's).
func exchangesFeeding(a *API, s *session, topic string) []map[string]any {
	var out []map[string]any
	for _, b := range a.bindings(s.visibleVhosts(), false, func(b meta.Binding) bool {
		return b.DestinationKind == meta.DestTopic && b.Destination == topic
	}) {
		out = append(out, map[string]any{
			"kind": "exchange", "vhost": b["vhost"], "name": b["source"], "routing_key": b["routing_key"],
			"arguments": b["arguments"], "properties_key": b["properties_key"],
		})
	}
	return out
}
