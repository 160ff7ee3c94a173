package kafka

// DescribeLogDirs, versions 0-4.
//
// Sluice keeps every partition under one data directory, reported as the
// only log dir, with each requested partition's size on disk (a null
// topic list asks for all). In a cluster only the partitions with a
// replica on this broker (the server's Cluster says) are in it; a single
// node holds them all. There are no replicas, so OffsetLag is 0 and
// no partition is a future replica. Unknown topics and partitions are left
// out, as in Kafka. v4 reports the file system's total and usable bytes
// (-1 where the platform does not say).

import (
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeLogDirs(c *conn, req *kmsg.DescribeLogDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !c.allowedCluster(auth.OpDescribe) { // as Kafka: the error (v3+) and no directories
		resp.ErrorCode = errClusterAuth.Code
		return resp, nil
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = c.s.opts.DataDir
	dir.TotalBytes, dir.UsableBytes = diskSpace(c.s.opts.DataDir)
	var here func(topic string, p int32) bool
	if !c.s.single {
		here = func(topic string, p int32) bool {
			return slices.Contains(c.s.cluster.Partition(topic, p).Replicas, c.s.self)
		}
	}
	add := func(t *broker.Topic, partitions []int32) {
		if st, ok := logDirTopic(t, partitions, here); ok {
			dir.Topics = append(dir.Topics, st)
		}
	}
	if req.Topics == nil {
		for _, t := range c.s.broker.Topics() {
			add(t, nil)
		}
	}
	for _, rt := range req.Topics {
		if t, ok := c.s.broker.Topic(rt.Topic); ok {
			add(t, rt.Partitions)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// logDirTopic describes the named partitions of t (nil: all of them) that
// are here (nil: all are); false if none is.
func logDirTopic(t *broker.Topic, partitions []int32, here func(topic string, p int32) bool) (kmsg.DescribeLogDirsResponseDirTopic, bool) {
	st := kmsg.NewDescribeLogDirsResponseDirTopic()
	st.Topic = t.Name
	describe := func(p *broker.Partition) {
		if here != nil && !here(t.Name, p.Index) {
			return
		}
		sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		sp.Partition, sp.Size = p.Index, p.Size()
		st.Partitions = append(st.Partitions, sp)
	}
	if partitions == nil {
		for _, p := range t.Partitions {
			describe(p)
		}
	}
	for _, i := range partitions {
		if i >= 0 && int(i) < len(t.Partitions) {
			describe(t.Partitions[i])
		}
	}
	return st, len(st.Partitions) > 0
}
