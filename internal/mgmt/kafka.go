package mgmt

import (
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/broker"
)

// The Kafka side, under /api/kafka: topics with their partitions, consumer
// groups with members, assignments, committed offsets and lag. Topics and
// groups are not in vhosts and Sluice's Kafka listener has no per-user
// permissions, so reading needs the monitoring tag and changing needs
// administrator.

func partitionJSON(p *broker.Partition) map[string]any {
	start, end, stable := p.Offsets()
	return map[string]any{
		"partition": p.Index, "log_start_offset": start, "log_end_offset": end, "last_stable_offset": stable,
		"messages": end - start, "size_bytes": p.Size(),
	}
}

func topicJSON(t *broker.Topic, withPartitions bool) map[string]any {
	var msgs, size int64
	parts := make([]map[string]any, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		pj := partitionJSON(p)
		msgs += pj["messages"].(int64)
		size += pj["size_bytes"].(int64)
		parts = append(parts, pj)
	}
	configs := t.Configs
	if configs == nil {
		configs = map[string]string{}
	}
	m := map[string]any{
		"name": t.Name, "id": t.ID.String(), "partitions": len(t.Partitions),
		"messages": msgs, "size_bytes": size, "configs": configs,
	}
	if withPartitions {
		m["partition_details"] = parts
	}
	return m
}

func (a *API) listTopics(r *http.Request, s *session) (any, error) {
	out := []map[string]any{}
	for _, t := range a.opts.Kafka.Topics() {
		out = append(out, topicJSON(t, true))
	}
	return out, nil
}

func (a *API) getTopic(r *http.Request, s *session) (any, error) {
	t, ok := a.opts.Kafka.Topic(pathValue(r, "name"))
	if !ok {
		return nil, notFound()
	}
	m := topicJSON(t, true)
	m["readers"], m["writers"] = a.topicSides(s, t.Name) // topic_sides.go
	return m, nil
}

type topicBody struct {
	Partitions flexInt           `json:"partitions"`
	Configs    map[string]string `json:"configs"`
}

func (a *API) putTopic(r *http.Request, s *session) (any, error) {
	var b topicBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	if _, ok := a.opts.Kafka.Topic(name); ok {
		return nil, badRequest("topic '%s' already exists", name)
	}
	_, err := a.opts.Kafka.CreateTopic(name, int32(b.Partitions), b.Configs, false)
	switch {
	case errors.Is(err, broker.ErrTopicExists):
		return nil, badRequest("topic '%s' already exists", name)
	case errors.Is(err, broker.ErrInvalidTopic), errors.Is(err, broker.ErrInvalidPartitions), errors.Is(err, broker.ErrInvalidConfig):
		return nil, badRequest("%v", err)
	case err != nil:
		return nil, err
	}
	return created{}, nil
}

func (a *API) deleteTopic(r *http.Request, s *session) (any, error) {
	if err := a.opts.Kafka.DeleteTopic(pathValue(r, "name")); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

// groupIDs are the groups the coordinator knows plus those that only have
// committed offsets.
func (a *API) groupIDs() []string {
	ids := slices.Clone(a.opts.Kafka.OffsetGroups())
	if a.opts.Groups != nil {
		for _, g := range a.opts.Groups.List() {
			ids = append(ids, g.Group)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (a *API) listGroups(r *http.Request, s *session) (any, error) {
	out := []map[string]any{}
	for _, id := range a.groupIDs() {
		out = append(out, a.groupJSON(id, false))
	}
	return out, nil
}

func (a *API) getGroup(r *http.Request, s *session) (any, error) {
	id := pathValue(r, "id")
	if !slices.Contains(a.groupIDs(), id) {
		return nil, notFound()
	}
	return a.groupJSON(id, true), nil
}

type tp struct {
	topic string
	part  int32
}

func (a *API) groupJSON(id string, detail bool) map[string]any {
	state, protocolType, protocol, typ := "Empty", "", "", "classic"
	var members []map[string]any
	assigned := map[tp]string{} // partition -> member id
	if a.opts.Groups != nil {
		if d, ok := a.opts.Groups.Describe(id); ok {
			state, protocolType, protocol, typ = d.State, d.ProtocolType, d.Protocol, d.Type
			for _, m := range d.Members {
				var asg []map[string]any
				for _, t := range m.Topics { // a consumer group's (KIP-848)
					asg = append(asg, map[string]any{"topic": t.Name, "partitions": t.Partitions})
					for _, p := range t.Partitions {
						assigned[tp{t.Name, p}] = m.MemberID
					}
				}
				if len(m.Assignment) > 0 && d.ProtocolType == "consumer" {
					var ca kmsg.ConsumerMemberAssignment
					if err := ca.ReadFrom(m.Assignment); err == nil {
						for _, t := range ca.Topics {
							asg = append(asg, map[string]any{"topic": t.Topic, "partitions": t.Partitions})
							for _, p := range t.Partitions {
								assigned[tp{t.Topic, p}] = m.MemberID
							}
						}
					}
				}
				if asg == nil {
					asg = []map[string]any{}
				}
				mj := map[string]any{"member_id": m.MemberID, "client_id": m.ClientID, "client_host": m.ClientHost, "assignments": asg}
				if m.InstanceID != "" {
					mj["group_instance_id"] = m.InstanceID
				}
				members = append(members, mj)
			}
		}
	}
	if members == nil {
		members = []map[string]any{}
	}
	var totalLag int64
	offsets := []map[string]any{}
	seen := map[tp]bool{}
	addRow := func(topic string, part int32, committed *broker.OffsetCommit) {
		row := map[string]any{"topic": topic, "partition": part}
		if committed != nil {
			row["committed_offset"] = committed.Offset
			if committed.Metadata != "" {
				row["metadata"] = committed.Metadata
			}
		} else {
			row["committed_offset"] = nil
		}
		if p, err := a.opts.Kafka.Partition(topic, part); err == nil {
			_, end, stable := p.Offsets()
			row["log_end_offset"], row["last_stable_offset"] = end, stable
			if committed != nil {
				lag := max(end-committed.Offset, 0)
				row["lag"] = lag
				totalLag += lag
			}
		}
		if m, ok := assigned[tp{topic, part}]; ok {
			row["member_id"] = m
		}
		offsets = append(offsets, row)
	}
	for _, c := range a.opts.Kafka.GroupOffsets(id) {
		seen[tp{c.Topic, c.Partition}] = true
		addRow(c.Topic, c.Partition, &c)
	}
	for k := range assigned {
		if !seen[k] {
			addRow(k.topic, k.part, nil)
		}
	}
	sort.Slice(offsets, func(i, j int) bool {
		a, b := offsets[i], offsets[j]
		if a["topic"].(string) != b["topic"].(string) {
			return a["topic"].(string) < b["topic"].(string)
		}
		return a["partition"].(int32) < b["partition"].(int32)
	})
	out := map[string]any{
		"group_id": id, "state": state, "protocol_type": protocolType, "protocol": protocol,
		"members": len(members), "lag": totalLag, "type": typ,
	}
	if detail {
		out["member_details"] = members
		out["offsets"] = offsets
	}
	return out
}
