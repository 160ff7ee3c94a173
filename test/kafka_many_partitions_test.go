package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestManyTopicsHoldNoFilesUntilWritten: a CreateTopics of 100 topics of
// 20 partitions (kadm, one request) makes no partition directory: a
// partition's files are made by its first write. After a kill -9 right
// after the answer every topic is there, whole; a record produced to
// every one of the 2,000 partitions (one ProduceSync, acks=all) is read
// back from each after a second kill -9; only the written partitions
// have directories, and partitions never written hold no descriptor.
func TestManyTopicsHoldNoFilesUntilWritten(t *testing.T) {
	const topics, partitions = 100, 20
	b := startBroker(t)
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("many-%03d", i)
	}
	resp, err := b.admin(t).CreateTopics(ctxT(t, 60*time.Second), partitions, 1, nil, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
	topicsDir := filepath.Join(b.DataDir, "topics")
	if n := partitionDirs(t, topicsDir, "many-"); n != 0 {
		t.Fatalf("%d partition directories after the creation, want none before any write", n)
	}
	if fds := openFiles(t, b.cmd.Process.Pid); fds > 200 {
		t.Fatalf("the server holds %d descriptors with %d partitions never written", fds, topics*partitions)
	}
	b.Kill()
	b.Restart()

	meta, err := b.admin(t).ListTopics(ctxT(t, 30*time.Second), names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		td, ok := meta[name]
		if !ok || td.Err != nil || len(td.Partitions) != partitions {
			t.Fatalf("after a kill -9: topic %s: listed %v, %v, %d partitions; want %d", name, ok, td.Err, len(td.Partitions), partitions)
		}
	}

	// One record to each partition of the first half of the topics.
	written := names[:topics/2]
	cl := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(1<<20))
	var recs []*kgo.Record
	for _, name := range written {
		for p := range int32(partitions) {
			recs = append(recs, &kgo.Record{Topic: name, Partition: p, Value: []byte(fmt.Sprintf("%s/%d", name, p))})
		}
	}
	if err := cl.ProduceSync(ctxT(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n, want := partitionDirs(t, topicsDir, "many-"), len(written)*partitions; n != want {
		t.Fatalf("%d partition directories after writing %d partitions", n, want)
	}
	b.Kill()
	b.Restart()

	// Every written partition returns its record; the others are empty
	// and take a record too.
	offsets, err := b.admin(t).ListEndOffsets(ctxT(t, 30*time.Second), names...)
	if err != nil {
		t.Fatal(err)
	}
	isWritten := map[string]bool{}
	for _, name := range written {
		isWritten[name] = true
	}
	offsets.Each(func(o kadm.ListedOffset) {
		want := int64(0)
		if isWritten[o.Topic] {
			want = 1
		}
		if o.Err != nil || o.Offset != want {
			t.Errorf("%s-%d: end offset %d, %v; want %d", o.Topic, o.Partition, o.Offset, o.Err, want)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	read := map[string]string{}
	rc := b.client(t, kgo.ConsumeTopics(written...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t, 60*time.Second)
	for len(read) < len(written)*partitions && ctx.Err() == nil {
		rc.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			read[fmt.Sprintf("%s/%d", r.Topic, r.Partition)] = string(r.Value)
		})
	}
	for _, name := range written {
		for p := range int32(partitions) {
			k := fmt.Sprintf("%s/%d", name, p)
			if read[k] != k {
				t.Fatalf("%s after a kill -9: read %q, want the acknowledged record", k, read[k])
			}
		}
	}
	last := names[topics-1]
	if err := cl.ProduceSync(ctxT(t, 30*time.Second), &kgo.Record{Topic: last, Partition: partitions - 1, Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatalf("a partition never written takes a record after the restart: %v", err)
	}
}

// partitionDirs counts the directories in topicsDir whose names start with
// prefix.
func partitionDirs(t *testing.T, topicsDir, prefix string) int {
	t.Helper()
	ents, err := os.ReadDir(topicsDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n
}
