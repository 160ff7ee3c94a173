package mgmt

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
)

// A quorum queue's leader is known to its members (their Raft group
// tells them); a node that is not a member lists the queue with the
// leader its members report, as RabbitMQ's management shows a queue's
// leader through any node. The question is asked only when a listing has
// such a queue, and not waited for longer than quorumLeaderTimeout: a
// listing without the leader beats a slow one.
const (
	// nodeInfoQuorumLeaders, vhost: the leaders of that vhost's quorum
	// queues this node is a member of and knows a leader for, as
	// {"queue name": leader node id}.
	nodeInfoQuorumLeaders = "quorum-leaders"
	quorumLeaderTimeout   = time.Second
)

// quorumLeaders answers nodeInfoQuorumLeaders for vhost vh.
func (a *API) quorumLeaders(vh string) any {
	qs, err := a.opts.Router.QueueStatuses(vh)
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, q := range qs {
		if q.Quorum && q.Leader != 0 {
			out[q.Name] = q.Leader
		}
	}
	return out
}

// fillQuorumLeaders sets "leader" (and "node") in ms, the JSON of qs
// (queues of vhost vh, in the same order), for the quorum queues whose
// leader this node does not know, from what their members report (the
// other nodes are asked; an unreachable one fails at once, one that does
// not answer is waited for quorumLeaderTimeout). A member that reports
// itself as leader is believed first.
func (a *API) fillQuorumLeaders(vh string, qs []broker.QueueStatus, ms []map[string]any) {
	if !slices.ContainsFunc(qs, func(q broker.QueueStatus) bool { return q.Quorum && q.Leader == 0 }) {
		return
	}
	answers := map[uint64]map[string]uint64{} // node → the leaders it reports
	for _, ans := range a.opts.Router.GatherNodeInfo(nodeInfoQuorumLeaders+"\x00"+vh, quorumLeaderTimeout) {
		var ls map[string]uint64
		if ans.Err == nil && json.Unmarshal(ans.Body, &ls) == nil {
			answers[ans.Node] = ls
		}
	}
	for i, q := range qs {
		if !q.Quorum || q.Leader != 0 {
			continue
		}
		var leader uint64
		for _, id := range q.Members {
			l := answers[id][q.Name]
			if l != 0 && slices.Contains(q.Members, l) && (leader == 0 || l == id) {
				leader = l
			}
		}
		if leader != 0 {
			ms[i]["leader"] = a.nodeNameOf(leader)
			ms[i]["node"] = ms[i]["leader"]
		}
	}
}
