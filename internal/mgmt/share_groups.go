package mgmt

// Kafka share groups (KIP-932), read-only, beside the consumer groups:
// GET /api/kafka/share-groups lists them with their state, members and
// totals; GET /api/kafka/share-groups/{id} adds each member (client,
// subscription, assignment), each share-partition (start offset, records
// in flight, lag) and the group's configs.

import (
	"net/http"

	"github.com/sluice-mq/sluice/internal/broker"
)

func (a *API) listShareGroups(r *http.Request, s *session) (any, error) {
	out := []map[string]any{}
	for _, g := range a.opts.Kafka.Shares().List() {
		out = append(out, a.shareGroupJSON(g.Name, false))
	}
	return out, nil
}

func (a *API) getShareGroup(r *http.Request, s *session) (any, error) {
	id := pathValue(r, "id")
	if !a.opts.Kafka.Shares().Exists(id) {
		return nil, notFound()
	}
	return a.shareGroupJSON(id, true), nil
}

func (a *API) shareGroupJSON(id string, detail bool) map[string]any {
	shares := a.opts.Kafka.Shares()
	d, _ := shares.Describe(id)
	offs, _ := shares.Offsets(id)
	var inFlight int
	var lag int64
	parts := []map[string]any{}
	for _, o := range offs {
		topic := ""
		if t, ok := a.opts.Kafka.TopicByID(broker.TopicID(o.TP.Topic)); ok {
			topic = t.Name
		}
		row := map[string]any{"topic": topic, "partition": o.TP.Partition, "start_offset": o.StartOffset, "in_flight": o.InFlight, "lag": nil}
		if o.Lag >= 0 {
			row["lag"] = o.Lag
			lag += o.Lag
		}
		inFlight += o.InFlight
		parts = append(parts, row)
	}
	g := map[string]any{"group_id": id, "type": "share", "state": d.State, "group_epoch": d.Epoch,
		"members": len(d.Members), "in_flight": inFlight, "lag": lag}
	if !detail {
		return g
	}
	members := []map[string]any{}
	for _, m := range d.Members {
		asg := []map[string]any{}
		for _, t := range m.Assignment {
			asg = append(asg, map[string]any{"topic": t.Name, "partitions": t.Partitions})
		}
		members = append(members, map[string]any{"member_id": m.ID, "member_epoch": m.Epoch, "client_id": m.ClientID,
			"client_host": m.ClientHost, "subscribed_topics": m.Subscribed, "assignments": asg})
	}
	configs := shares.Configs(id)
	if configs == nil {
		configs = map[string]string{}
	}
	g["members"], g["partitions"], g["configs"] = members, parts, configs
	return g
}
