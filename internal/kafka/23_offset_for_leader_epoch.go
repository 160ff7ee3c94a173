package kafka

// OffsetForLeaderEpoch, versions 0-4.
//
// A replicated partition (in a cluster) has the Raft terms of its group as
// leader epochs, stamped in its batches: its leader answers from them
// (Partition.EndOffsetForEpoch), a current leader epoch older than the
// group's term is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH,
// and a follower NOT_LEADER_OR_FOLLOWER. Any other partition (a single
// node's) has one leader epoch, 0, for its whole life, so any
// requested epoch >= 0 is answered with epoch 0 and its end offset, the
// high watermark; a negative one with epoch -1 and offset -1 (Kafka's
// "undefined"). A current leader epoch (v2+) above 0 is newer than this
// broker knows: UNKNOWN_LEADER_EPOCH. ReplicaID (v3+) is ignored: there
// are no followers. Needs DESCRIBE on the topic
// (TOPIC_AUTHORIZATION_FAILED per partition).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(c *conn, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		allowed := c.allowedTopic(rt.Topic, auth.OpDescribe)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition() // epoch -1, offset -1
			sp.Partition = rp.Partition
			p, err := c.s.broker.Partition(rt.Topic, rp.Partition)
			switch {
			case !allowed:
				sp.ErrorCode = errTopicAuth.Code
			case err != nil:
				sp.ErrorCode = errorCode(err)
			case p.Replicated():
				cur, leads := p.LeaderEpoch()
				switch {
				case !leads:
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				case rp.CurrentLeaderEpoch > cur:
					sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				case rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < cur:
					sp.ErrorCode = kerr.FencedLeaderEpoch.Code
				case rp.LeaderEpoch >= 0:
					epoch, end, err := p.EndOffsetForEpoch(rp.LeaderEpoch)
					if err != nil {
						sp.ErrorCode = errorCode(err)
					} else {
						sp.LeaderEpoch, sp.EndOffset = epoch, end
					}
				}
			case rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case rp.LeaderEpoch >= 0:
				_, hw, _ := p.Offsets()
				sp.LeaderEpoch, sp.EndOffset = 0, hw
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
