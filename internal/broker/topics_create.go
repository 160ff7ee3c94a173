package broker

import (
	"cmp"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TopicSpec is one topic to create: partitions <= 0 takes the default;
// Configs holds only explicitly set configs.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
	// Replicas is a client's placement of each partition, which only a
	// cluster accepts (one registered node a partition); nil: the
	// broker places them (follow.go).
	Replicas [][]int32
	// ReplicationFactor is the number of replicas the broker places of
	// each partition when Replicas is nil (0: one). Only a cluster takes
	// more than one, up to its registered nodes.
	ReplicationFactor int16
}

// TopicResult answers one TopicSpec of CreateTopics: the topic created
// (under validateOnly, the topic that would be, not installed) or why not.
type TopicResult struct {
	Topic *Topic
	Err   error
}

// layoutWorkers bounds the partition logs laid out at once by a
// CreateTopics, so as not to crowd out the publishers.
const layoutWorkers = 16

// CreateTopic creates a topic; partitions <= 0 takes the default.
func (b *Broker) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	r := b.CreateTopics([]TopicSpec{{Name: name, Partitions: partitions, Configs: configs}}, validateOnly)[0]
	return r.Topic, r.Err
}

// CreateTopics creates the topics of specs together, each succeeding or
// failing on its own as CreateTopic would: the partition logs of all of
// them are laid out side by side, and their definitions are made durable
// with one metadata write and fsync, so that a request of many topics
// costs a few fsyncs of the metadata log, not one a topic. A name given
// twice is created once; its second spec is answered ErrTopicExists.
func (b *Broker) CreateTopics(specs []TopicSpec, validateOnly bool) []TopicResult {
	res := make([]TopicResult, len(specs))
	var order []int // the specs that pass the checks, by name
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		sp := &specs[i]
		if sp.Partitions <= 0 {
			sp.Partitions = b.opts.Defaults.Partitions
		}
		if res[i].Err = checkTopicSpec(*sp); res[i].Err != nil {
			continue
		}
		if res[i].Err = b.checkAssignment(sp.Replicas, sp.Partitions); res[i].Err != nil {
			continue
		}
		if res[i].Err = b.checkReplicationFactor(sp.ReplicationFactor); res[i].Err != nil {
			continue
		}
		if seen[sp.Name] {
			res[i].Err = ErrTopicExists
			continue
		}
		seen[sp.Name] = true
		order = append(order, i)
	}
	// Several names are reserved in name order, so that two CreateTopics
	// naming the same topics cannot each wait for the other.
	sort.Slice(order, func(x, y int) bool { return specs[order[x]].Name < specs[order[y]].Name })
	var todo []*Topic
	var todoIdx []int
	for _, i := range order {
		sp := specs[i]
		// Another creation of the same name is answered as this one ends.
		release, err := b.reserve(sp.Name)
		if err != nil {
			res[i].Err = err
			continue
		}
		defer release()
		if _, ok := b.Topic(sp.Name); ok {
			res[i].Err = ErrTopicExists
			continue
		}
		if err := b.checkName(sp.Name, sp.Partitions); err != nil {
			res[i].Err = err
			continue
		}
		replicas := sp.Replicas
		if replicas == nil {
			replicas = b.placeReplicas(nil, 0, sp.Partitions, int(sp.ReplicationFactor))
		}
		if validateOnly {
			res[i].Topic = &Topic{Topic: meta.Topic{Name: sp.Name, Partitions: sp.Partitions, Configs: sp.Configs, Replicas: replicas}}
			continue
		}
		if mt, ok := b.meta.Topic(sp.Name); ok {
			// Defined, but not open (its logs failed to open): open it now.
			tp, err := b.openTopic(mt)
			if err != nil {
				res[i].Err = fmt.Errorf("%w: %w", ErrStorage, err)
				continue
			}
			b.install(tp)
			b.changed(tp.Name)
			res[i].Err = ErrTopicExists
			continue
		}
		todo = append(todo, &Topic{Topic: meta.Topic{Name: sp.Name, Partitions: sp.Partitions, Configs: sp.Configs, Replicas: replicas}, cfg: b.resolve(sp.Configs)})
		todoIdx = append(todoIdx, i)
	}
	if len(todo) == 0 {
		return res
	}

	// The logs are laid out first and the definitions made durable last,
	// so that a creation answered with an error (a full disk at either
	// step) leaves no topic behind. Directories left by a creation that
	// died between the two steps are cleared first.
	layErrs := b.layOut(todo)
	var (
		metaSpecs []meta.TopicSpec
		metaIdx   []int // index in todo of each metaSpecs entry
	)
	for j, tp := range todo {
		if layErrs[j] != nil {
			b.dropLayout(tp)
			res[todoIdx[j]].Err = fmt.Errorf("%w: %w", ErrStorage, layErrs[j])
			b.log.Warn("topic not created: its partitions' logs did not open", "topic", tp.Name, "err", layErrs[j])
			continue
		}
		metaSpecs = append(metaSpecs, meta.TopicSpec{Name: tp.Name, Partitions: tp.Topic.Partitions, Configs: tp.Configs, Replicas: tp.Replicas})
		metaIdx = append(metaIdx, j)
	}
	if len(metaSpecs) == 0 {
		return res
	}
	created, errs := b.meta.CreateTopics(metaSpecs)
	for k, j := range metaIdx {
		tp, i := todo[j], todoIdx[j]
		if err := errs[k]; err != nil {
			b.dropLayout(tp)
			if errors.Is(err, meta.ErrTopicExists) {
				res[i].Err = ErrTopicExists
			} else {
				res[i].Err = metaErr(err)
				b.log.Warn("topic not created: its definition was not stored", "topic", tp.Name, "err", err)
			}
			continue
		}
		tp.Topic = created[k]
		for _, p := range tp.Partitions {
			if err := startReplica(p, tp.ID); err != nil {
				b.log.Error("replicated partition not started", "topic", tp.Name, "partition", p.Index, "err", err)
			}
		}
		if !b.install(tp) {
			res[i].Err = ErrClosed
			continue
		}
		res[i].Topic = tp
		b.changed(tp.Name)
		b.log.Info("topic created", "topic", tp.Name, "partitions", tp.Topic.Partitions)
	}
	return res
}

// checkTopicSpec checks what a creation can refuse before touching
// anything (Partitions already defaulted).
func checkTopicSpec(sp TopicSpec) error {
	if err := ValidTopicName(sp.Name); err != nil {
		return err
	}
	if sp.Partitions > 10000 {
		return ErrInvalidPartitions
	}
	for k, v := range sp.Configs {
		if err := CheckTopicConfig(k, v); err != nil {
			return err
		}
	}
	return nil
}

// layOut clears and opens the partition logs of new topics and returns
// each topic's first error. Opening a new partition's log touches no file
// (storage.Options.CreateOnAppend: its directory and segment are made,
// durably, by its first write), so a creation costs the clearing of what
// a creation that died may have left (nothing, usually: a removal of a
// missing directory) and the metadata record, not a directory, a file and
// an fsync a partition. Up to layoutWorkers logs are opened at once. A
// topic that failed keeps the logs it opened in tp.Partitions, for
// dropLayout.
func (b *Broker) layOut(tps []*Topic) []error {
	type job struct {
		t int
		p int32
	}
	var jobs []job
	parts := make([][]*Partition, len(tps))
	perr := make([][]error, len(tps))
	for t, tp := range tps {
		parts[t] = make([]*Partition, tp.Topic.Partitions)
		perr[t] = make([]error, tp.Topic.Partitions)
		for p := range tp.Topic.Partitions {
			jobs = append(jobs, job{t, p})
		}
	}
	fsys := b.opts.Storage.FS
	if fsys == nil {
		fsys = storage.OSFS()
	}
	parallel(len(jobs), func(k int) {
		j := jobs[k]
		// Clear what a creation that died may have left: a log opened
		// on it would take its batches as this topic's.
		err := fsys.RemoveAll(b.partitionDir(tps[j.t].Name, j.p))
		if err == nil {
			parts[j.t][j.p], err = b.openNewPartition(tps[j.t], j.p)
		}
		perr[j.t][j.p] = err
	})
	errs := make([]error, len(tps))
	for t, tp := range tps {
		for p, part := range parts[t] {
			if part != nil {
				tp.Partitions = append(tp.Partitions, part)
			}
			errs[t] = cmp.Or(errs[t], perr[t][p])
		}
	}
	return errs
}

// parallel calls fn(0) ... fn(n-1), up to layoutWorkers at once.
func parallel(n int, fn func(k int)) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(layoutWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
				fn(k)
			}
		}()
	}
	wg.Wait()
}

// openNewPartition opens the log of partition i of a new topic in its
// freshly made directory.
func (b *Broker) openNewPartition(tp *Topic, i int32) (*Partition, error) {
	l, err := b.openPartitionLog(tp, i)
	if err != nil {
		return nil, fmt.Errorf("open %s-%d: %w", tp.Name, i, err)
	}
	p, err := newPartition(tp.Name, i, l, tp.cfg.maxMessageBytes)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("producer state %s-%d: %w", tp.Name, i, err)
	}
	p.now = b.opts.Now
	p.configure(tp.cfg)
	if err := startReplica(p, tp.ID); err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

// dropLayout removes the logs of a topic whose creation failed.
func (b *Broker) dropLayout(tp *Topic) {
	for _, p := range tp.Partitions {
		p.log.Delete()
	}
	tp.Partitions = nil
	for i := range tp.Topic.Partitions {
		// one descriptor at a time: the creation may have failed for
		// want of descriptors
		if err := removeTree(b.partitionDir(tp.Name, i)); err != nil {
			b.log.Warn("removing the files of a failed topic creation", "topic", tp.Name, "partition", i, "err", err)
		}
	}
}
