package kafka

// ElectLeaders, versions 0-2.
//
// PREFERRED (v0's only type, 0): a partition whose leader is not its
// preferred replica (the first of its assignment) gets it as leader, by a
// Raft leadership transfer of the partition's group. Any broker takes the
// request (Kafka forwards it to the controller); it is carried to the
// partitions' leaders by the metadata log (broker/reassign.go), and the
// answer waits, up to TimeoutMillis, until this broker sees the preferred
// replica lead: NONE then, REQUEST_TIMED_OUT if it does not in time (as
// Kafka's purgatory answers an election that did not finish). Already led
// by it: ELECTION_NOT_NEEDED; the preferred replica down, or not in the
// ISR where this broker leads and knows it: PREFERRED_LEADER_NOT_AVAILABLE
// (a leader elsewhere refuses to hand over to a replica out of its ISR,
// which then ends in REQUEST_TIMED_OUT). A partition this broker holds no
// replica of cannot be watched from here: its leaders are asked whatever
// the cluster view guesses, and its answer is NONE once the request is
// committed.
//
// UNCLEAN (1): Raft never elects a replica that may lack committed
// records, so an unclean election cannot be done: a partition with a
// leader is ELECTION_NOT_NEEDED (as Kafka answers), one without is
// ELIGIBLE_LEADERS_NOT_AVAILABLE. Any other type is INVALID_REQUEST.
//
// A null topic list means every partition; then, as in Kafka, partitions
// already led by their preferred replica are left out of the answer. An
// unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION. On a single
// node every partition is led by its only, preferred, replica. Needs
// ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED, also as the
// top-level error from v1).

import (
	"slices"
	"time"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// electPoll is how often an ElectLeaders answer looks for the new leader.
const electPoll = 20 * time.Millisecond

func handleElectLeaders(c *conn, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	all := req.Topics == nil
	topics := req.Topics
	if all {
		for _, t := range c.s.broker.Topics() {
			if _, ok := c.s.broker.Assignment(t.Name, 0); !ok || t.Replicas == nil && !c.s.single {
				continue // an internal topic, or one no node is preferred for
			}
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t.Name
			for p := range t.Topic.Partitions {
				rt.Partitions = append(rt.Partitions, p)
			}
			topics = append(topics, rt)
		}
	}
	// The answer of each partition, in request order; pending ones wait.
	type entry struct {
		topic     string
		partition int32
		preferred int32
		err       error
		pending   bool
	}
	var entries []entry
	denied := !c.allowedCluster(auth.OpAlter)
	if denied && req.Version >= 1 {
		resp.ErrorCode = errClusterAuth.Code
	}
	for _, rt := range topics {
		for _, p := range rt.Partitions {
			e := entry{topic: rt.Topic, partition: p}
			switch {
			case denied:
				e.err = reqErr(errClusterAuth, "ALTER on the cluster is not allowed")
			case req.ElectionType != 0 && req.ElectionType != 1:
				e.err = reqErr(kerr.InvalidRequest, "unknown election type %d", req.ElectionType)
			default:
				e.preferred, e.err, e.pending = c.electionNeeded(rt.Topic, p, req.ElectionType == 1)
			}
			entries = append(entries, e)
		}
	}
	// One request per topic carries the elections to the leaders.
	byTopic := map[string][]int32{}
	var order []string
	at := map[string]int{} // a topic's index in resp.Topics
	for _, e := range entries {
		if e.pending {
			if _, seen := byTopic[e.topic]; !seen {
				order = append(order, e.topic)
			}
			byTopic[e.topic] = append(byTopic[e.topic], e.partition)
		}
	}
	for _, topic := range order {
		if err := c.s.broker.ElectPreferredLeaders(topic, byTopic[topic]); err != nil {
			for i := range entries {
				if entries[i].pending && entries[i].topic == topic {
					entries[i].pending, entries[i].err = false, err
				}
			}
		}
	}
	deadline := time.Now().Add(time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond)
	for {
		waiting := false
		for i := range entries {
			e := &entries[i]
			if _, here := c.s.broker.ReplicaState(e.topic, e.partition); e.pending && (!here ||
				c.s.cluster.Partition(e.topic, e.partition).Leader == e.preferred) {
				e.pending = false // seen, or cannot be seen from here
			}
			waiting = waiting || e.pending
		}
		if !waiting || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(electPoll)
	}
	for _, e := range entries {
		if e.pending {
			e.err = reqErr(kerr.RequestTimedOut, "partition %d: the preferred replica %d does not lead yet", e.partition, e.preferred)
		}
		code, msg := codeAndMessage(e.err)
		if all && code == kerr.ElectionNotNeeded.Code {
			continue
		}
		i, ok := at[e.topic]
		if !ok {
			t := kmsg.NewElectLeadersResponseTopic()
			t.Topic = e.topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			at[e.topic] = i
		}
		sp := kmsg.NewElectLeadersResponseTopicPartition()
		sp.Partition, sp.ErrorCode, sp.ErrorMessage = e.partition, code, msg
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return resp, nil
}

// electionNeeded decides a partition's election before anything is
// asked of its leader: pending when the preferred replica must be
// elected, else the answer (see the file comment).
func (c *conn) electionNeeded(topic string, p int32, unclean bool) (preferred int32, err error, pending bool) {
	rs, ok := c.s.broker.Assignment(topic, p)
	if !ok {
		return -1, reqErr(kerr.UnknownTopicOrPartition, "unknown topic or partition %s-%d", topic, p), false
	}
	cur := c.s.cluster.Partition(topic, p)
	if unclean {
		if cur.Leader >= 0 {
			return -1, reqErr(kerr.ElectionNotNeeded, "partition %d has a leader", p), false
		}
		return -1, reqErr(kerr.EligibleLeadersNotAvailable, "Raft elects no replica that may lack committed records"), false
	}
	preferred = c.s.self
	if len(rs) > 0 {
		preferred = rs[0]
	}
	if _, here := c.s.broker.ReplicaState(topic, p); !here && len(rs) > 1 {
		// No replica here: the view's leader is a guess (the first live
		// replica), so the leaders are asked whatever it says.
		if slices.Contains(cur.Offline, preferred) {
			return preferred, reqErr(kerr.PreferredLeaderNotAvailable, "partition %d: the preferred replica %d is down", p, preferred), false
		}
		return preferred, nil, true
	}
	switch {
	case cur.Leader == preferred:
		return preferred, reqErr(kerr.ElectionNotNeeded, "partition %d is led by its preferred replica %d", p, preferred), false
	case slices.Contains(cur.Offline, preferred) || !slices.Contains(cur.ISR, preferred):
		return preferred, reqErr(kerr.PreferredLeaderNotAvailable, "partition %d: the preferred replica %d is not in sync", p, preferred), false
	case len(rs) < 2:
		// One replica: nothing to elect from (it leads when it is up).
		return preferred, reqErr(kerr.PreferredLeaderNotAvailable, "partition %d has no leader", p), false
	}
	return preferred, nil, true
}
