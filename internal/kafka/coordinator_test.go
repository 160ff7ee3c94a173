package kafka

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// splitCoordinators is threeNodes where this broker (1) coordinates the
// keys starting with "here" and broker 2 all others.
type splitCoordinators struct{ threeNodes }

func (splitCoordinators) Coordinator(_ int8, key string) int32 {
	if strings.HasPrefix(key, "here") {
		return 1
	}
	return 2
}

// The group and transaction APIs answer NOT_COORDINATOR for a key
// coordinated by another broker, and go on as before for one coordinated
// here.
func TestNotCoordinator(t *testing.T) {
	c := clusterConn(t, splitCoordinators{})
	notCoord := kerr.NotCoordinator.Code
	for _, key := range []string{"away", "here"} {
		want := func(api string, code int16) {
			t.Helper()
			if (code == notCoord) != (key == "away") {
				t.Errorf("%s for %q: code %d (%v)", api, key, code, kerr.ErrorForCode(code))
			}
		}

		jg := kmsg.NewPtrJoinGroupRequest()
		jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = key, "consumer", 10000, 10000
		jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		want("JoinGroup", call[*kmsg.JoinGroupResponse](t, c, jg, 9).ErrorCode)

		sg := kmsg.NewPtrSyncGroupRequest()
		sg.Group, sg.MemberID = key, "m"
		want("SyncGroup", call[*kmsg.SyncGroupResponse](t, c, sg, 5).ErrorCode)

		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID = key, "m"
		want("Heartbeat", call[*kmsg.HeartbeatResponse](t, c, hb, 4).ErrorCode)

		lg := kmsg.NewPtrLeaveGroupRequest()
		lg.Group = key
		lg.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
		want("LeaveGroup", call[*kmsg.LeaveGroupResponse](t, c, lg, 5).ErrorCode)

		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation = key, -1
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		want("OffsetCommit", call[*kmsg.OffsetCommitResponse](t, c, oc, 8).Topics[0].Partitions[0].ErrorCode)

		of := kmsg.NewPtrOffsetFetchRequest()
		of.Group = key
		want("OffsetFetch v7", call[*kmsg.OffsetFetchResponse](t, c, of, 7).ErrorCode)
		of8 := kmsg.NewPtrOffsetFetchRequest()
		of8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: key}}
		want("OffsetFetch v8", call[*kmsg.OffsetFetchResponse](t, c, of8, 8).Groups[0].ErrorCode)

		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups = []string{key}
		want("DescribeGroups", call[*kmsg.DescribeGroupsResponse](t, c, dg, 5).Groups[0].ErrorCode)

		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{key}
		want("DeleteGroups", call[*kmsg.DeleteGroupsResponse](t, c, del, 2).Groups[0].ErrorCode)

		od := kmsg.NewPtrOffsetDeleteRequest()
		od.Group = key
		want("OffsetDelete", call[*kmsg.OffsetDeleteResponse](t, c, od, 0).ErrorCode)

		ch := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		ch.Group, ch.MemberEpoch, ch.RebalanceTimeoutMillis = key, 0, 10000
		ch.SubscribedTopicNames = []string{"t"}
		want("ConsumerGroupHeartbeat", call[*kmsg.ConsumerGroupHeartbeatResponse](t, c, ch, 0).ErrorCode)

		cd := kmsg.NewPtrConsumerGroupDescribeRequest()
		cd.Groups = []string{key}
		want("ConsumerGroupDescribe", call[*kmsg.ConsumerGroupDescribeResponse](t, c, cd, 0).Groups[0].ErrorCode)

		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr(key), 10000
		want("InitProducerID", call[*kmsg.InitProducerIDResponse](t, c, ip, 4).ErrorCode)

		ap := kmsg.NewPtrAddPartitionsToTxnRequest()
		ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = key, 999, 0
		ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		want("AddPartitionsToTxn", call[*kmsg.AddPartitionsToTxnResponse](t, c, ap, 3).Topics[0].Partitions[0].ErrorCode)

		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.Group = key, 999, "here-g"
		want("AddOffsetsToTxn", call[*kmsg.AddOffsetsToTxnResponse](t, c, ao, 3).ErrorCode)

		et := kmsg.NewPtrEndTxnRequest()
		et.TransactionalID, et.ProducerID = key, 999
		want("EndTxn", call[*kmsg.EndTxnResponse](t, c, et, 3).ErrorCode)

		to := kmsg.NewPtrTxnOffsetCommitRequest()
		to.TransactionalID, to.Group, to.ProducerID, to.Generation = "here-txn", key, 999, -1
		to.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		want("TxnOffsetCommit", call[*kmsg.TxnOffsetCommitResponse](t, c, to, 3).Topics[0].Partitions[0].ErrorCode)
	}
}

// A broker of a cluster that replicates nothing (no Raft host, as in this
// test's cluster) refuses a replication factor above 1, and says why.
func TestClusterRefusesReplication(t *testing.T) {
	c := clusterConn(t, threeNodes{})
	req := kmsg.NewPtrCreateTopicsRequest()
	rf := kmsg.NewCreateTopicsRequestTopic()
	rf.Topic, rf.NumPartitions, rf.ReplicationFactor = "rf3", 1, 3
	two := kmsg.NewCreateTopicsRequestTopic()
	two.Topic, two.NumPartitions, two.ReplicationFactor = "two", -1, -1
	two.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1, 2}}}
	req.Topics = []kmsg.CreateTopicsRequestTopic{rf, two}
	resp := call[*kmsg.CreateTopicsResponse](t, c, req, 7)
	for _, st := range resp.Topics {
		// The assignment reaches this test's broker, a single node's,
		// which takes no assignment at all.
		if st.Topic == "two" && st.ErrorCode == kerr.InvalidReplicaAssignment.Code {
			continue
		}
		if st.ErrorCode != kerr.InvalidReplicationFactor.Code || !strings.Contains(deref(st.ErrorMessage), "replica") {
			t.Errorf("%s: code %d, message %q", st.Topic, st.ErrorCode, deref(st.ErrorMessage))
		}
	}
}

// A cluster's metadata without a leader is retriable: NOT_CONTROLLER for
// the admin APIs, COORDINATOR_NOT_AVAILABLE for the coordinators.
func TestMetaUnavailableIsRetriable(t *testing.T) {
	err := fmt.Errorf("%w: no leader", broker.ErrMetaUnavailable)
	if got := errorCode(err); got != kerr.NotController.Code {
		t.Errorf("errorCode = %d", got)
	}
	if got := coordinatorErrorCode(err); got != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("coordinatorErrorCode = %d", got)
	}
}
