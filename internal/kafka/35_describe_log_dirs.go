package kafka

// DescribeLogDirs, versions 0-4.
//
// Sluice keeps every partition under one data directory, reported as the
// only log dir, with each requested partition's size on disk (a null
// topic list asks for all). There are no replicas, so OffsetLag is 0 and
// no partition is a future replica. Unknown topics and partitions are left
// out, as in Kafka. v4 reports the file system's total and usable bytes
// (-1 where the platform does not say).

import (
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
	add := func(t *broker.Topic, partitions []int32) {
		if st, ok := logDirTopic(t, partitions); ok {
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

// logDirTopic describes the named partitions of t (nil: all of them);
// false if none exists.
func logDirTopic(t *broker.Topic, partitions []int32) (kmsg.DescribeLogDirsResponseDirTopic, bool) {
	st := kmsg.NewDescribeLogDirsResponseDirTopic()
	st.Topic = t.Name
	describe := func(p *broker.Partition) {
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
