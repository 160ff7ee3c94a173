package mgmt

import (
	"sort"

	"github.com/sluice-mq/sluice/internal/broker"
)

// The readers of a topic beyond Kafka consumer groups: AMQP consumers of
// its stream queues (docs/bridge.md), queues bound to it and the exchange
// it forwards to (fed from the log), and share groups.
func init() {
	topicReaders = append(topicReaders, streamConsumersReading, feedsReading, shareGroupsReading)
}

// streamConsumersReading are the topic's stream queues (its super stream's
// partition queues, or the stream queue it is) that AMQP consumers read:
// kind "stream_queue", vhost, name, consumers.
func streamConsumersReading(a *API, s *session, topic string) []map[string]any {
	var out []map[string]any
	for _, q := range a.opts.Router.TopicStreamQueues(topic) {
		if q.Consumers == 0 || !s.canSeeVhost(q.Vhost) {
			continue
		}
		out = append(out, map[string]any{"kind": "stream_queue", "vhost": q.Vhost, "name": q.Name, "consumers": q.Consumers})
	}
	return out
}

// feedsReading are the queues bound to the topic (kind "bound_queue":
// vhost, name, ready, unacked, consumers) and the exchange it forwards to
// (kind "exchange_forward": vhost, name), each with lag (records of the
// topic not yet fed, over its partitions) and partitions.
func feedsReading(a *API, s *session, topic string) []map[string]any {
	type dest struct{ vhost, queue, exchange string }
	lag := map[dest]int64{}
	parts := map[dest]int{}
	for _, f := range a.opts.Router.TopicFeeds(topic) {
		d := dest{f.Vhost, f.Queue, f.Exchange}
		lag[d] += max(f.End-f.Next, 0)
		parts[d]++
	}
	var ds []dest
	for d := range lag {
		if s.canSeeVhost(d.vhost) {
			ds = append(ds, d)
		}
	}
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].vhost != ds[j].vhost {
			return ds[i].vhost < ds[j].vhost
		}
		return ds[i].queue+"\x00"+ds[i].exchange < ds[j].queue+"\x00"+ds[j].exchange
	})
	var out []map[string]any
	for _, d := range ds {
		row := map[string]any{"vhost": d.vhost, "lag": lag[d], "partitions": parts[d]}
		if d.queue == "" {
			row["kind"], row["name"] = "exchange_forward", d.exchange
		} else {
			row["kind"], row["name"] = "bound_queue", d.queue
			if q, err := a.opts.Router.QueueStatus(d.vhost, d.queue); err == nil {
				row["ready"], row["unacked"], row["consumers"] = q.Ready, q.Unacked, q.Consumers
			}
		}
		out = append(out, row)
	}
	return out
}

// shareGroupsReading are the share groups with share-partitions of the
// topic: kind "share_group", name, state, members, in_flight and lag on
// this topic, partitions.
func shareGroupsReading(a *API, _ *session, topic string) []map[string]any {
	shares := a.opts.Kafka.Shares()
	var out []map[string]any
	for _, g := range shares.List() {
		offs, _ := shares.Offsets(g.Name)
		var lag int64
		inFlight, n := 0, 0
		for _, o := range offs {
			t, ok := a.opts.Kafka.TopicByID(broker.TopicID(o.TP.Topic))
			if !ok || t.Name != topic {
				continue
			}
			n++
			inFlight += o.InFlight
			lag += max(o.Lag, 0)
		}
		if n == 0 {
			continue
		}
		d, _ := shares.Describe(g.Name)
		out = append(out, map[string]any{"kind": "share_group", "name": g.Name, "state": d.State,
			"members": len(d.Members), "in_flight": inFlight, "lag": lag, "partitions": n})
	}
	return out
}
