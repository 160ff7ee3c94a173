package broker

// The store of an x-delayed-message exchange (docs/amqp-compatibility.md,
// docs/clustering.md "Delayed messages on a cluster").
//
// On a single node it is a queue.Delayed of its own: a log and an ack file
// in DataDir/delayed. On a cluster the waiting messages must survive the
// loss of a node, so they are the log of a replicated one-partition
// internal topic, __sluice_delayed_<hash of vhost and name>, held by up to
// three nodes exactly as a quorum queue's log is (quorum.go): a publish
// through a member is proposed to the group and confirmed once committed,
// one through another node is forwarded to a member; the settles of
// released messages are ack-record entries of the same group. The member
// that leads (once it has applied its predecessors' entries) runs a
// queue.Delayed in tail mode over the replicated log and releases what
// comes due through the exchange; a new leader opens it afresh from the
// replicated log and ack record. A message released and not yet settled
// when the leader dies is released again by the next one: at least once,
// as a crash of a single node does.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// delayedStore is where a delayed exchange's messages wait.
type delayedStore interface {
	// Publish stores m until at; the Pending is done once it is durable.
	Publish(m *message.Message, at time.Time) (Pending, error)
	// Close stops releasing, keeping the messages.
	Close() error
	// Delete stops releasing and removes the messages.
	Delete() error
	// Forget is Delete for an exchange deleted through another node: on a
	// cluster that node deletes the replicated log, this one lets go.
	Forget() error
}

// localDelayed is a single node's store.
type localDelayed struct{ *queue.Delayed }

func (d localDelayed) Forget() error { return d.Delete() }

func (d localDelayed) Publish(m *message.Message, at time.Time) (Pending, error) {
	a, err := d.Delayed.Publish(m, at)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// delayedTopicPrefix begins the name of a delayed exchange's topic on a
// cluster: internal, as a quorum queue's is.
const delayedTopicPrefix = "__sluice_delayed_"

// isDelayedTopic reports whether name is a delayed exchange's topic.
func isDelayedTopic(name string) bool { return strings.HasPrefix(name, delayedTopicPrefix) }

// delayedID is the hash of a delayed exchange's vhost and name that names
// its store: its directory on a single node, its topic on a cluster.
func delayedID(vh, name string) string {
	sum := sha256.Sum256([]byte(vh + "\x00" + name))
	return hex.EncodeToString(sum[:16])
}

// delayedTopic names the topic of delayed exchange name of vhost vh.
func delayedTopic(vh, name string) string { return delayedTopicPrefix + delayedID(vh, name) }

// openDelayed opens the store of an x-delayed-message exchange: on a
// cluster the replicated one (its topic created by the declaring node,
// createDelayedTopic), else DataDir/delayed/<delayedID>.
func (r *Router) openDelayed(x *exchange) error {
	if x.def.Type != ExchangeDelayed {
		return nil
	}
	vh, name := x.def.Vhost, x.def.Name
	if r.clustered() {
		// An exchange declared on a cluster before its store was
		// replicated has no topic: it keeps its store on this node.
		if _, ok := r.opts.Topics.meta.Topic(delayedTopic(vh, name)); ok {
			x.delayed = r.openReplDelayed(vh, name)
			return nil
		}
	}
	dir := filepath.Join(r.opts.DataDir, "delayed", delayedID(vh, name))
	so := r.opts.Storage
	so.SegmentBytes = queueSegmentBytes
	d, err := queue.OpenDelayed(dir, so, r.opts.Now, r.log.With("vhost", vh, "exchange", name), func(m message.Message) error {
		return r.releaseDelayed(vh, name, &m)
	})
	if err != nil {
		return err
	}
	x.delayed = localDelayed{d}
	return nil
}

// clustered reports whether this router is a node of a cluster whose
// queues can be replicated.
func (r *Router) clustered() bool {
	b := r.opts.Topics
	return r.opts.NodeID != 0 && b != nil && b.opts.Replication.Host != nil
}

// createDelayedTopic makes the replicated log of a delayed exchange being
// declared on a cluster, on up to three nodes (this one first), before
// its definition is recorded. A log left by an exchange of the same name
// deleted a moment ago is taken as it is.
func (r *Router) createDelayedTopic(vh, name string) error {
	members := r.quorumPlacement(nil)
	reps := make([]int32, len(members))
	for i, m := range members {
		reps[i] = int32(m)
	}
	topic := delayedTopic(vh, name)
	b := r.opts.Topics
	res := b.CreateTopics([]TopicSpec{{Name: topic, Partitions: 1, Replicas: [][]int32{reps}, Configs: quorumTopicConfigs}}, false)[0]
	if res.Err != nil && !errors.Is(res.Err, ErrTopicExists) {
		return res.Err
	}
	b.AwaitLeaders(topic, time.Now().Add(5*time.Second))
	return nil
}

// replDelayed is a delayed exchange's store on a cluster.
type replDelayed struct {
	r               *Router
	vh, name, topic string

	mu     sync.Mutex
	store  *queue.Delayed // while this node leads, in term
	term   uint64
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

func (r *Router) openReplDelayed(vh, name string) *replDelayed {
	d := &replDelayed{r: r, vh: vh, name: name, topic: delayedTopic(vh, name), stop: make(chan struct{}), done: make(chan struct{})}
	go d.watch()
	return d
}

// watch runs the store while this node leads the topic's group.
func (d *replDelayed) watch() {
	defer close(d.done)
	t := time.NewTicker(quorumRefresh)
	defer t.Stop()
	for {
		d.refresh()
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}

func (d *replDelayed) refresh() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	ql, member := d.r.opts.Topics.quorumLog(d.topic)
	var term uint64
	if member {
		term = ql.leaderTerm()
	}
	if term != 0 && d.store != nil && term == d.term {
		return // still leading in the term it opened in
	}
	d.closeStoreLocked()
	if term == 0 || !ql.leads() {
		return
	}
	lg, err := ql.segmentLog()
	if err == nil {
		vh, name := d.vh, d.name
		log := d.r.log.With("vhost", vh, "exchange", name)
		d.store, err = queue.OpenDelayedTail(queue.DelayedTail{
			Log:          lg,
			Acks:         ql.acks().Entries(),
			Record:       ql.recordAcks(log),
			DeleteBefore: ql.deleteBefore,
		}, d.r.opts.Now, log, func(m message.Message) error {
			return d.r.releaseDelayed(vh, name, &m)
		})
	}
	if err != nil {
		d.r.log.Error("delayed exchange: opening its store on the leader failed", "vhost", d.vh, "exchange", d.name, "err", err)
		return
	}
	d.term = term
	d.r.log.Info("delayed exchange: this node leads its store", "vhost", d.vh, "exchange", d.name)
}

func (d *replDelayed) closeStoreLocked() {
	if d.store != nil {
		d.store.Close()
		d.store, d.term = nil, 0
	}
}

// Publish proposes m, due at at, to the group through this node if it is
// a member, else forwards it to one; the Pending is done once committed.
func (d *replDelayed) Publish(m *message.Message, at time.Time) (Pending, error) {
	b := d.r.opts.Topics
	if ql, member := b.quorumLog(d.topic); member {
		rec, err := m.Record()
		if err != nil {
			return nil, err
		}
		return ql.publish(storage.BuildRecordBatch(0, queue.DelayedMessageTime(at), []storage.Record{rec})), nil
	}
	for _, node := range b.quorumMembers(d.topic) {
		if d.r.opts.Forward == nil || !d.r.opts.Forward.Reachable(cluster.NodeID(node)) {
			continue
		}
		// Forwarded as a publish to a pseudo-queue the member's router
		// knows as this exchange's store (servePublish); the member
		// computes the due time again from x-delay.
		return d.r.newRemoteQueue(meta.Queue{Vhost: d.vh, Name: d.name, ID: delayedForwardID, Node: node}).Publish(m, d.r.opts.Now())
	}
	return nil, queue.ErrRejected
}

// delayedDest takes a publish forwarded to a delayed exchange's store: due
// its x-delay after now.
type delayedDest struct {
	r     *Router
	store delayedStore
}

func (d delayedDest) Publish(m *message.Message, now time.Time) (Pending, error) {
	delay, ok := IntArg(m.Properties.Headers["x-delay"])
	if !ok || delay < 0 {
		delay = 0
	}
	return d.store.Publish(m, now.Add(time.Duration(delay)*time.Millisecond))
}

// delayedForwardID is the queue id a publish forwarded to a delayed
// exchange's store carries, the exchange's name in place of the queue's.
const delayedForwardID = "\x00delayed"

// Close stops this node's part, keeping the messages.
func (d *replDelayed) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.closeStoreLocked()
	close(d.stop)
	d.mu.Unlock()
	<-d.done
	return nil
}

// Forget stops this node's part; the node that deleted the exchange
// deletes the log.
func (d *replDelayed) Forget() error { return d.Close() }

// Delete stops this node's part and deletes the replicated log.
func (d *replDelayed) Delete() error {
	d.Close()
	if err := d.r.opts.Topics.deleteTopic(d.topic); err != nil && !errors.Is(err, ErrUnknownTopic) {
		return err
	}
	return nil
}
