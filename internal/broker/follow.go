package broker

import (
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"

	"github.com/sluice-mq/sluice/internal/meta"
)

// Following the metadata. In a cluster a topic can be created, deleted,
// grown or reconfigured through any node: the change reaches this node
// only as a metadata command applied to its store. The store tells the
// broker's follower of each applied topic change (meta.Store.Observe);
// the follower queues the topic's name and a goroutine reconciles the
// topic: makes the broker's open topic match its definition in the
// metadata. Reconciling is idempotent, so the changes this broker makes
// itself (which the store reports too) find nothing left to do; and it
// reserves the topic's name as every change does, so it waits for a
// change of the same topic under way here and never races it.
//
// A single node (Options.NodeID 0) has no follower: it makes every change
// itself, and the store's Apply pays one nil check for the hook.

// follower queues the topics to reconcile.
type follower struct {
	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{} // 1-buffered: pending has names
	stop    chan struct{}
	done    chan struct{}
	started bool
}

// startFollowing sets the store's observer; run starts reconciling.
func (b *Broker) startFollowing() {
	f := &follower{pending: map[string]bool{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	b.follow = f
	// A snapshot replaced the whole state: every topic is queued (as
	// the name "", which no topic has).
	b.meta.Observe(func(c meta.Change) {
		if c.Kind == "elect_preferred_leaders" {
			// Acted on by the leaders, not reconciled (reassign.go).
			go b.transferToPreferred(c.Topic, c.Partitions)
			return
		}
		f.add(c.Topic)
	})
}

// add queues name; it runs inside the store's Apply, so it only queues.
func (f *follower) add(name string) {
	f.mu.Lock()
	f.pending[name] = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run reconciles queued topics until stopped; New sets started before
// it starts it.
func (f *follower) run(b *Broker) {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			return
		case <-f.wake:
		}
		f.mu.Lock()
		names := slices.Sorted(maps.Keys(f.pending))
		clear(f.pending)
		f.mu.Unlock()
		for _, name := range names {
			select {
			case <-f.stop:
				return
			default:
			}
			reconcile := b.Reconcile
			if name == "" {
				reconcile = func(string) error { return b.ReconcileAll() }
			}
			if err := reconcile(name); err != nil && !errors.Is(err, ErrClosed) {
				b.log.Warn("following a topic change", "topic", name, "err", err)
			}
		}
	}
}

// stopFollowing removes the observer and waits for the follower to stop.
func (b *Broker) stopFollowing() {
	f := b.follow
	if f == nil {
		return
	}
	b.meta.Observe(nil)
	f.mu.Lock()
	started := f.started
	f.mu.Unlock()
	select {
	case <-f.stop:
		return // stopped already
	default:
		close(f.stop)
	}
	if started {
		<-f.done
	}
}

// ReconcileAll reconciles every topic the metadata or the broker knows:
// for whoever replaces the metadata state wholesale (a Raft snapshot),
// whose topic changes no observer sees.
func (b *Broker) ReconcileAll() error {
	names := map[string]bool{}
	for _, t := range b.meta.Topics() {
		names[t.Name] = true
	}
	for _, t := range b.Topics() {
		if !t.internal {
			names[t.Name] = true
		}
	}
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(names)) {
		errs = append(errs, b.Reconcile(n))
	}
	return errors.Join(errs...)
}

// Reconcile makes the broker's topic name match its definition in the
// metadata: opens a topic defined but not open (the partitions this node
// holds on disk, the others as stand-ins), deletes one open but no
// longer defined (its data and committed offsets, as DeleteTopic), opens
// a topic's new partitions, and applies its configs. A topic deleted and
// created again under the same name (a new id) is deleted, then opened.
// Nothing to do costs a metadata read. An internal topic is left alone.
func (b *Broker) Reconcile(name string) error {
	if t, ok := b.Topic(name); ok && t.internal {
		return nil // a store's, not the metadata's (a quorum queue's log is the metadata's)
	}
	release, err := b.reserve(name)
	if err != nil {
		return err
	}
	defer release()
	mt, defined := b.meta.Topic(name)
	tp, open := b.Topic(name)
	if open && (!defined || tp.ID != mt.ID) {
		if err := b.dropFollowed(tp); err != nil {
			return err
		}
		open = false
	}
	switch {
	case !defined:
		return nil
	case !open:
		tp, err := b.openTopic(mt)
		if err != nil {
			return err
		}
		if !b.install(tp) {
			return ErrClosed
		}
		b.changed(name)
		b.log.Info("topic created through another node", "topic", name, "partitions", mt.Partitions)
		return nil
	}
	grow := mt.Partitions > tp.Topic.Partitions
	reconf := !maps.Equal(mt.Configs, tp.Configs)
	moved := !replicasEqual(mt.Replicas, tp.Replicas) || len(mt.Reassignments) != len(tp.Reassignments)
	if !grow && !reconf && !moved {
		return nil
	}
	// Copy-on-write, as CreatePartitions and AlterTopicConfigs.
	next := &Topic{Topic: mt, Partitions: slices.Clone(tp.Partitions), cfg: tp.cfg}
	if reconf {
		next.cfg = b.resolve(mt.Configs)
		for _, p := range next.Partitions {
			p.configure(next.cfg)
		}
	}
	var replaced []*Partition
	if moved {
		// Replicas gained or lost by a reassignment (reassign.go).
		var err error
		if replaced, err = b.movedPartitions(tp, next); err != nil {
			return err
		}
	}
	if grow {
		from := tp.Topic.Partitions
		for i := from; i < mt.Partitions; i++ {
			if b.holds(next, i) {
				// What a creation that died may have left.
				if err := os.RemoveAll(b.partitionDir(name, i)); err != nil {
					return err
				}
			}
		}
		if err := b.openPartitions(next, from, mt.Partitions); err != nil {
			for _, p := range next.Partitions[from:] {
				p.log.Close()
			}
			return err
		}
	}
	if !b.install(next) {
		return ErrClosed
	}
	b.changed(name)
	for _, p := range replaced {
		if err := p.log.Delete(); err != nil {
			b.log.Warn("deleting a replica moved away", "topic", name, "partition", p.Index, "err", err)
		}
	}
	return nil
}

// dropFollowed removes a topic deleted through another node, as
// DeleteTopic does after its metadata write.
func (b *Broker) dropFollowed(tp *Topic) error {
	b.mu.Lock()
	delete(b.topics, tp.Name)
	b.mu.Unlock()
	b.changed(tp.Name)
	var errs []error
	for _, p := range tp.Partitions {
		errs = append(errs, p.log.Delete())
	}
	errs = append(errs, offsetsErr(b.offsets.DeleteTopic(tp.Name)))
	b.log.Info("topic deleted through another node", "topic", tp.Name)
	return errors.Join(errs...)
}

// place chooses the nodes of count partitions numbered from first of a
// topic (the proposer's choice, carried by the metadata command): nil on
// a single node; in a cluster, round-robin over the registered nodes
// (meta.Place), continuing the topic's round when it has one (existing)
// or from a random start; on this node alone while the registry is
// empty (a node registers as it starts).
func (b *Broker) place(existing [][]int32, first, count int32) [][]int32 {
	if b.opts.NodeID == 0 {
		return nil
	}
	nodes := b.meta.Nodes()
	if len(nodes) == 0 {
		nodes = []meta.Node{{ID: b.opts.NodeID}}
	}
	start := rand.IntN(len(nodes))
	if existing != nil {
		start = meta.PlacementStart(nodes, existing)
	}
	return meta.Place(nodes, first, count, start)
}

// checkAssignment checks a client's placement of count partitions: in a
// cluster one registered node each (more is a replication factor the
// cluster cannot give yet), on a single node none at all.
func (b *Broker) checkAssignment(replicas [][]int32, count int32) error {
	if replicas == nil {
		return nil
	}
	if b.opts.NodeID == 0 {
		return ErrInvalidReplicaAssignment
	}
	if len(replicas) != int(count) {
		return ErrInvalidReplicaAssignment
	}
	nodes := b.meta.Nodes()
	for _, rs := range replicas {
		if len(rs) > 1 && b.opts.Replication.Host == nil {
			return ErrInvalidReplicationFactor
		}
		if len(rs) == 0 {
			return ErrInvalidReplicaAssignment
		}
		for k, r := range rs {
			id := uint64(r)
			known := id == b.opts.NodeID && len(nodes) == 0
			for _, n := range nodes {
				known = known || n.ID == id
			}
			if r <= 0 || !known || slices.Contains(rs[:k], r) {
				return ErrInvalidReplicaAssignment
			}
		}
	}
	return nil
}
