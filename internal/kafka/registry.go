package kafka

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

// api is one supported request type: its version range and its handler.
// Exactly one of handle and prepare is set. handle runs in the write loop,
// in request order. prepare runs in the read loop and returns the step the
// write loop finishes with (used where work must happen in arrival order
// but its answer may wait, like Produce).
type api struct {
	key      int16
	min, max int16
	handle   func(*conn, kmsg.Request) (kmsg.Response, error)
	prepare  func(*conn, kmsg.Request) func() (kmsg.Response, error)
}

// apis is the one table that drives both dispatch and ApiVersions.
// Version ranges: record format v2 only, so Fetch starts at v4 and
// Produce serves v3 up; the maxima are the newest versions whose fields
// Sluice fills in. Produce is advertised from v0 as Kafka 4.0 does
// (KAFKA-18659): librdkafka releases without the fix for librdkafka#4956
// (2.0.2 among them) compress with gzip, snappy or lz4 only when the broker
// lists Produce v0, and silently send uncompressed otherwise. A v0-2
// request is answered UNSUPPORTED_VERSION.
var apis = []api{
	{key: 0, min: 0, max: 12, prepare: prepareProduce},
	{key: 1, min: 4, max: 17, handle: handle(handleFetch)},
	{key: 2, min: 0, max: 8, handle: handle(handleListOffsets)},
	{key: 3, min: 0, max: 12, handle: handle(handleMetadata)},
	{key: 8, min: 0, max: 9, handle: handle(handleOffsetCommit)},
	{key: 9, min: 0, max: 9, handle: handle(handleOffsetFetch)},
	{key: 10, min: 0, max: 4, handle: handle(handleFindCoordinator)},
	{key: 11, min: 0, max: 9, handle: handle(handleJoinGroup)},
	{key: 12, min: 0, max: 4, handle: handle(handleHeartbeat)},
	{key: 13, min: 0, max: 5, handle: handle(handleLeaveGroup)},
	{key: 14, min: 0, max: 5, handle: handle(handleSyncGroup)},
	{key: 15, min: 0, max: 5, handle: handle(handleDescribeGroups)},
	{key: 16, min: 0, max: 5, handle: handle(handleListGroups)},
	{key: 17, min: 0, max: 1, prepare: prepareSaslHandshake},
	{key: 18, min: 0, max: 4, handle: handle(handleApiVersions)},
	{key: 19, min: 0, max: 7, handle: handle(handleCreateTopics)},
	{key: 20, min: 0, max: 6, handle: handle(handleDeleteTopics)},
	{key: 21, min: 0, max: 2, handle: handle(handleDeleteRecords)},
	{key: 22, min: 0, max: 5, handle: handle(handleInitProducerID)},
	{key: 23, min: 0, max: 4, handle: handle(handleOffsetForLeaderEpoch)},
	{key: 24, min: 0, max: 4, handle: handle(handleAddPartitionsToTxn)},
	{key: 25, min: 0, max: 4, handle: handle(handleAddOffsetsToTxn)},
	{key: 26, min: 0, max: 5, handle: handle(handleEndTxn)},
	{key: 28, min: 0, max: 5, handle: handle(handleTxnOffsetCommit)},
	{key: 29, min: 0, max: 3, handle: handle(handleDescribeACLs)},
	{key: 30, min: 0, max: 3, handle: handle(handleCreateACLs)},
	{key: 31, min: 0, max: 3, handle: handle(handleDeleteACLs)},
	{key: 32, min: 0, max: 4, handle: handle(handleDescribeConfigs)},
	{key: 33, min: 0, max: 2, handle: handle(handleAlterConfigs)},
	{key: 35, min: 0, max: 4, handle: handle(handleDescribeLogDirs)},
	{key: 36, min: 0, max: 2, prepare: prepareSaslAuthenticate},
	{key: 37, min: 0, max: 3, handle: handle(handleCreatePartitions)},
	{key: 42, min: 0, max: 2, handle: handle(handleDeleteGroups)},
	{key: 43, min: 0, max: 2, handle: handle(handleElectLeaders)},
	{key: 44, min: 0, max: 1, handle: handle(handleIncrementalAlterConfigs)},
	{key: 45, min: 0, max: 0, handle: handle(handleAlterPartitionReassignments)},
	{key: 46, min: 0, max: 0, handle: handle(handleListPartitionReassignments)},
	{key: 47, min: 0, max: 0, handle: handle(handleOffsetDelete)},
	{key: 48, min: 0, max: 1, handle: handle(handleDescribeClientQuotas)},
	{key: 49, min: 0, max: 1, handle: handle(handleAlterClientQuotas)},
	{key: 50, min: 0, max: 0, handle: handle(handleDescribeUserScramCredentials)},
	{key: 51, min: 0, max: 0, handle: handle(handleAlterUserScramCredentials)},
	{key: 60, min: 0, max: 1, handle: handle(handleDescribeCluster)},
	{key: 61, min: 0, max: 0, handle: handle(handleDescribeProducers)},
	{key: 65, min: 0, max: 0, handle: handle(handleDescribeTransactions)},
	{key: 66, min: 0, max: 2, handle: handle(handleListTransactions)},
	{key: 68, min: 0, max: 1, handle: handle(handleConsumerGroupHeartbeat)},
	{key: 69, min: 0, max: 1, handle: handle(handleConsumerGroupDescribe)},
	{key: 76, min: 1, max: 1, handle: handle(handleShareGroupHeartbeat)},
	{key: 77, min: 1, max: 1, handle: handle(handleShareGroupDescribe)},
	{key: 78, min: 1, max: 2, handle: handle(handleShareFetch)},
	{key: 79, min: 1, max: 2, handle: handle(handleShareAcknowledge)},
	{key: 90, min: 0, max: 1, handle: handle(handleDescribeShareGroupOffsets)},
	{key: 91, min: 0, max: 0, handle: handle(handleAlterShareGroupOffsets)},
	{key: 92, min: 0, max: 0, handle: handle(handleDeleteShareGroupOffsets)},
}

var byKey = func() map[int16]*api {
	sort.Slice(apis, func(i, j int) bool { return apis[i].key < apis[j].key })
	m := make(map[int16]*api, len(apis))
	for i := range apis {
		m[apis[i].key] = &apis[i]
	}
	return m
}()

func lookup(key int16) *api { return byKey[key] }

// handle adapts a typed handler to the table's signature.
func handle[R kmsg.Request](fn func(*conn, R) (kmsg.Response, error)) func(*conn, kmsg.Request) (kmsg.Response, error) {
	return func(c *conn, r kmsg.Request) (kmsg.Response, error) { return fn(c, r.(R)) }
}
