package broker

// Quorum queues on a cluster (docs/clustering.md, "Quorum queues"): a
// quorum queue's messages and acks are a replicated log (quorum.go), and
// every node has the queue as a quorumHandle. On the member that leads
// the log's Raft group the handle runs the queue itself (queue.Queue in
// tail mode over the log: deliveries, acks, TTL, limits, dead-lettering
// decided there, settles replicated as Raft entries); on every other node
// it reaches the leader as a queue on another node (router_remote.go):
// consumers there are proxies of the leader's, deliveries come through
// this node with prefetch honoured. When the leader changes, the handle
// moves its consumers to the new one: they stay subscribed, and what
// they had not acked is delivered again by the new leader, flagged
// redelivered (the delivered mark is replicated too).
//
// Publishing through any member proposes the message to the group (Raft
// forwards a follower's proposal to the leader); the publisher's confirm
// waits until it is committed (a majority of the members has it in an
// fsynced Raft log) and applied on the node the publisher is connected
// to. A node that is not a member forwards the message to one that is.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// quorumRefresh is how often every quorum handle looks at its group's
// leader (besides when a publish finds none).
const quorumRefresh = 200 * time.Millisecond

// defaultQuorumGroupSize is x-quorum-initial-group-size's default, as in
// RabbitMQ: three members, or every node of a smaller cluster.
const defaultQuorumGroupSize = 3

// quorumHandle is a quorum queue on this node.
type quorumHandle struct {
	r     *Router
	def   meta.Queue
	topic string
	cfg   atomic.Pointer[queue.Config]

	mu sync.Mutex
	// local is the queue while this node leads its group; remote the
	// leader's while another node leads (or, on a node that is not a
	// member, the member it reaches). Neither during an election.
	local  *queue.Queue
	remote *remoteHandle
	subs   map[uint64]*quorumSub
	nextID uint64
	closed bool
	// leader is the leader refresh saw last; localTerm the term local
	// was opened in.
	leader    uint64
	localTerm uint64
	// refreshing: quorumWatch has a refresh of this handle under way.
	refreshing atomic.Bool
	// published mirrors local and closed for publish, which must not
	// wait for the lock a refresh holds across calls to other nodes.
	published atomic.Pointer[quorumPublishState]
	// counts are the leader's last answer when another node leads;
	// counting: a request for them is under way.
	counts   quorumCounts
	counting bool
	// warned is when warnAttach last logged.
	warned time.Time
	// skip: members a node without a copy passes over (reachableMember).
	skip atomic.Uint32
}

type quorumPublishState struct {
	local  *queue.Queue
	closed bool
}

// publishedLocked records local and closed for publish; h.mu is held.
func (h *quorumHandle) publishedLocked() {
	h.published.Store(&quorumPublishState{local: h.local, closed: h.closed})
}

type quorumCounts struct {
	ready, unacked int64
	consumers      int
	at             time.Time
}

var (
	_ queue.Handle = (*quorumHandle)(nil)
	_ Destination  = quorumDest{}
)

// quorumDest is a quorum queue as a routing destination.
type quorumDest struct{ h *quorumHandle }

func (d quorumDest) Publish(m *message.Message, now time.Time) (Pending, error) {
	return d.h.publish(m, now)
}

// Flow is the running queue's credit flow, when it runs here.
func (d quorumDest) Flow() <-chan struct{} {
	if st := d.h.published.Load(); st != nil && st.local != nil {
		return st.local.Flow()
	}
	return nil
}

// quorumSub is a consumer registered through the handle, wherever the
// queue runs now.
type quorumSub struct {
	h    *quorumHandle
	c    queue.Consumer
	opts queue.ConsumerOptions
	// on is the backend it is registered with (nil: none, waiting for a
	// leader), and id its id there; attaching: a registration with the
	// leader's node is under way. key is its id in the handle.
	on        queue.Handle
	id        uint64
	attaching bool
	key       uint64
}

func (s *quorumSub) Reserve() bool            { return s.c.Reserve() }
func (s *quorumSub) Deliver(d queue.Delivery) { s.c.Deliver(d) }

// Cancelled: the queue's backend let the consumer go. If the queue still
// exists (its leader moved, or its node is gone) the consumer is
// registered again with the leader; only a deleted queue cancels it.
func (s *quorumSub) Cancelled() {
	h := s.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.c.Cancelled()
		return
	}
	if s.on != nil {
		s.on = nil
	}
	h.mu.Unlock()
	go h.refresh()
}

func (r *Router) openQuorum(def meta.Queue, cfg queue.Config) *quorumHandle {
	h := &quorumHandle{r: r, def: def, topic: quorumTopic(def.ID), subs: map[uint64]*quorumSub{}}
	h.cfg.Store(&cfg)
	r.quorumMu.Lock()
	if r.quorums == nil {
		r.quorums = map[*quorumHandle]bool{}
	}
	r.quorums[h] = true
	r.quorumMu.Unlock()
	go h.refresh()
	return h
}

// quorumWatch refreshes every quorum handle every quorumRefresh.
func (r *Router) quorumWatch() {
	defer r.wg.Done()
	t := time.NewTicker(quorumRefresh)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.quorumMu.Lock()
		hs := make([]*quorumHandle, 0, len(r.quorums))
		for h := range r.quorums {
			hs = append(hs, h)
		}
		r.quorumMu.Unlock()
		for _, h := range hs {
			// Each on its own: a handle waiting on an unreachable node
			// (a consumer moved there) holds up no other.
			if h.refreshing.CompareAndSwap(false, true) {
				go func() {
					defer h.refreshing.Store(false)
					h.refresh()
				}()
			}
		}
	}
}

// refresh makes the handle's backend the group's leader as this node
// knows it, and registers the consumers with it.
func (h *quorumHandle) refresh() {
	if to := h.refreshLocked(); to != nil {
		h.attachRemote(to)
	}
}

// refreshLocked is refresh's decision, under the lock; it returns the
// other node's queue to register the waiting consumers with (a call per
// consumer, made without the lock), or nil.
func (h *quorumHandle) refreshLocked() *remoteHandle {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	b := h.r.opts.Topics
	ql, member := b.quorumLog(h.topic)
	// The queue opens on a leader that has applied its predecessors'
	// entries (settled), and stays open for the rest of its term (its
	// applying may lag its commit for a moment under load).
	var term uint64
	if member {
		term = ql.leaderTerm()
	}
	leads := term != 0 && (h.local != nil && term == h.localTerm || ql.leads())
	var leader uint64
	switch {
	case member:
		leader = ql.leader()
	default:
		leader = h.reachableMember()
	}
	if member && h.leader != 0 && leader != h.leader {
		// Publishes proposed to the leader that went will not be
		// answered by it: refuse them now (the publisher sends them
		// again) rather than at the proposal timeout.
		ql.r.failWaiting(ErrReplicationTimeout)
	}
	h.leader = leader
	if leads {
		if h.local != nil && term == h.localTerm {
			h.attachLocked(h.local)
			return nil
		}
		// Led again in a new term: the queue is opened anew from what
		// the group holds now.
		h.closeLocalLocked()
		q, err := h.openLocal(ql)
		if err != nil {
			h.r.log.Error("quorum queue: opening the queue on its new leader failed", "vhost", h.def.Vhost, "queue", h.def.Name, "err", err)
			return nil
		}
		h.detachLocked()
		h.remote = nil
		h.local, h.localTerm = q, term
		h.publishedLocked()
		h.r.log.Info("quorum queue: this node leads it", "vhost", h.def.Vhost, "queue", h.def.Name)
		h.attachLocked(q)
		return nil
	}
	// Another node leads now: the consumers go there; what they had not
	// acked is the new leader's to deliver again.
	h.closeLocalLocked()
	if leader == 0 || leader == h.r.opts.NodeID {
		// An election, or this node won one and has not applied its
		// predecessor's entries yet: the consumers wait.
		if h.remote != nil {
			h.detachLocked()
			h.remote = nil
		}
		return nil
	}
	if h.remote == nil || h.remote.def.Node != leader {
		h.detachLocked()
		def := h.def
		def.Node = leader
		h.remote = h.r.remoteHandle(def)
	}
	return h.remote
}

// attachRemote registers with to, the leader's queue on another node,
// the consumers registered nowhere, one call each without the lock (the
// leader's node may be slow to answer, or be waiting on this one), and
// keeps each registration only if to is still where consumers go.
func (h *quorumHandle) attachRemote(to *remoteHandle) {
	h.mu.Lock()
	var todo []*quorumSub
	for _, s := range h.subs {
		if s.on == nil && !s.attaching {
			s.attaching = true
			todo = append(todo, s)
		}
	}
	h.mu.Unlock()
	for _, s := range todo {
		h.attachOne(to, s)
	}
}

// warnAttach logs, at most every 10 s, that a consumer could not be
// registered with the leader (refresh tries again).
func (h *quorumHandle) warnAttach(err error) {
	h.mu.Lock()
	due := time.Since(h.warned) > 10*time.Second
	if due {
		h.warned = time.Now()
	}
	h.mu.Unlock()
	if due {
		h.r.log.Warn("quorum queue: a consumer could not be moved to the leader; retrying", "queue", h.def.Name, "err", err)
	}
}

// reachableMember is the member a node that is not one reaches the queue
// through: the first member the transport hears from, starting with the
// one after those that refused this node's consumers (not the leader).
func (h *quorumHandle) reachableMember() uint64 {
	ms := h.r.opts.Topics.quorumMembers(h.topic)
	skip := int(h.skip.Load())
	for i := range ms {
		m := ms[(i+skip)%len(ms)]
		if h.r.opts.Forward != nil && h.r.opts.Forward.Reachable(cluster.NodeID(m)) {
			return m
		}
	}
	return 0
}

func (h *quorumHandle) openLocal(ql quorumLog) (*queue.Queue, error) {
	lg, err := ql.segmentLog()
	if err != nil {
		return nil, err
	}
	r, vname, qname := h.r, h.def.Vhost, h.def.Name
	return queue.Open(queue.Options{
		Name: qname, Config: *h.cfg.Load(), Now: r.opts.Now,
		Logger:      r.log.With("vhost", vname),
		FlowBacklog: r.opts.FlowBacklog, FlowBacklogBytes: r.opts.FlowBacklogBytes,
		DeadLetter: func(q *queue.Queue, dead []queue.Dead) error {
			return r.deadLetter(vname, qname, q.Config(), dead)
		},
		Tail: &queue.Tail{
			Log:          lg,
			Acks:         ql.acks().Entries(),
			Record:       ql.recordAcks(r.log.With("vhost", vname, "queue", qname)),
			DeleteBefore: ql.deleteBefore,
		},
	})
}

// closeLocalLocked closes the queue run here, if it is, its consumers
// let go of (not cancelled).
//
// Other nodes' consumers (proxies) are let go with a basic.cancel to their
// node, which registers them with the new leader itself: consumers are
// never chained through a node that no longer leads.
func (h *quorumHandle) closeLocalLocked() {
	if h.local == nil {
		return
	}
	h.detachLocked()
	h.local.Close()
	h.local = nil
	h.publishedLocked()
	for k, s := range h.subs {
		if p, ok := s.c.(*proxyConsumer); ok {
			delete(h.subs, k)
			p.Cancelled()
		}
	}
}

// detachLocked unregisters every consumer from its backend.
func (h *quorumHandle) detachLocked() {
	for _, s := range h.subs {
		if s.on != nil {
			on := s.on
			s.on = nil
			on.RemoveConsumer(s.id)
		}
	}
}

// attachLocked registers with to every consumer that is not registered.
//
// to is this node's own queue: registering takes no call to another
// node.
func (h *quorumHandle) attachLocked(to *queue.Queue) {
	for _, s := range h.subs {
		if s.on != nil || s.attaching {
			continue
		}
		id, err := to.AddConsumer(s, s.opts)
		if err != nil {
			h.r.log.Warn("quorum queue: a consumer could not be registered with the queue", "queue", h.def.Name, "err", err)
			continue
		}
		s.on, s.id = to, id
	}
}

// backend is where operations go now; nil during an election.
func (h *quorumHandle) backend() queue.Handle {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.local != nil:
		return h.local
	case h.remote != nil:
		return h.remote
	}
	return nil
}

// publish proposes m to the group (through this node if it is a member,
// else forwarded to one). The Pending is done once m is committed.
func (h *quorumHandle) publish(m *message.Message, now time.Time) (Pending, error) {
	var local *queue.Queue
	if st := h.published.Load(); st != nil {
		if st.closed {
			return nil, queue.ErrDeleted
		}
		local = st.local
	}
	if local != nil {
		// Length limits, as the leader sees the queue now: messages
		// proposed meanwhile may take it a little past. A queue closed
		// since it was read here (its leadership moved: refresh closes
		// it) answers ErrDeleted, which means only that it runs
		// elsewhere now: the group still takes the publish. Returned,
		// it would be taken for a queue deleted since routing, and the
		// message confirmed as unroutable, that is, lost.
		if err := local.Admit(m); err != nil && !errors.Is(err, queue.ErrDeleted) {
			return nil, err
		}
	}
	ql, member := h.r.opts.Topics.quorumLog(h.topic)
	if !member {
		node := h.reachableMember()
		if node == 0 {
			return nil, queue.ErrRejected
		}
		def := h.def
		def.Node = node
		return h.r.newRemoteQueue(def).Publish(m, now)
	}
	rec, err := m.Record()
	if err != nil {
		return nil, err
	}
	// Without a leader to take it (an election) it is refused when the
	// entry is: a publisher in confirm mode is nacked and sends it again.
	return ql.publish(storage.BuildRecordBatch(0, now.UnixMilli(), []storage.Record{rec})), nil
}

func (h *quorumHandle) Name() string         { return h.def.Name }
func (h *quorumHandle) Config() queue.Config { return *h.cfg.Load() }

// SetConfig takes a policy's configuration, for the queue wherever it
// opens next and for the one running here.
func (h *quorumHandle) SetConfig(cfg queue.Config) {
	h.cfg.Store(&cfg)
	h.mu.Lock()
	local := h.local
	h.mu.Unlock()
	if local != nil {
		local.SetConfig(cfg)
	}
}

// Publish as a queue.Handle is not the way in: routing publishes to the
// handle's quorumDest.
func (h *quorumHandle) Publish(*message.Message) (*storage.Appended, error) {
	return nil, queue.ErrRejected
}

// AddConsumer registers c with the queue where it runs. Another node's
// consumer (a proxy) is taken only while the queue runs here: consumers
// are never chained through a node that does not lead (their own node
// registers them again with the leader). A consumer of this node's
// clients is registered at once when the queue runs here, else with the
// leader in the background (its deliveries start then).
func (h *quorumHandle) AddConsumer(c queue.Consumer, opts queue.ConsumerOptions) (uint64, error) {
	if _, proxy := c.(*proxyConsumer); proxy {
		if st := h.published.Load(); st == nil || st.local == nil {
			return 0, errQuorumNotLeader
		}
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return 0, queue.ErrDeleted
	}
	s := &quorumSub{h: h, c: c, opts: opts}
	_, proxy := c.(*proxyConsumer)
	if h.local != nil {
		id, err := h.local.AddConsumer(s, opts)
		if err != nil {
			h.mu.Unlock()
			return 0, err
		}
		s.on, s.id = h.local, id
	} else if proxy {
		h.mu.Unlock()
		return 0, errQuorumNotLeader
	}
	h.nextID++
	s.key = h.nextID
	h.subs[s.key] = s
	remote := h.remote
	if s.on == nil && remote != nil {
		s.attaching = true
	}
	h.mu.Unlock()
	if s.on == nil && remote != nil {
		// Registered with the leader before basic.consume-ok, as
		// RabbitMQ answers: an exclusive consumer the leader refuses is
		// refused to the client. Any other failure (the leader's node
		// unreachable) leaves it to refresh to register.
		if err := h.attachOne(remote, s); errors.Is(err, queue.ErrExclusiveConsumer) {
			h.RemoveConsumer(s.key)
			return 0, err
		}
	}
	return s.key, nil
}

// attachOne registers s, marked attaching, with to; as attachRemote, it
// keeps the registration only if to is still where consumers go.
func (h *quorumHandle) attachOne(to *remoteHandle, s *quorumSub) error {
	id, err := to.AddConsumer(s, s.opts)
	h.mu.Lock()
	s.attaching = false
	keep := err == nil && !h.closed && h.remote == to && s.on == nil && h.subs[s.key] == s
	if keep {
		s.on, s.id = to, id
	}
	h.mu.Unlock()
	switch {
	case err != nil:
		if !errors.Is(err, queue.ErrExclusiveConsumer) {
			h.skip.Add(1) // a node without a copy tries the next member
			h.warnAttach(err)
		}
	case !keep:
		to.RemoveConsumer(id)
	}
	return err
}

// errQuorumNotLeader refuses another node's consumer on a node that does
// not run the queue (its node tries the leader again).
var errQuorumNotLeader = errors.New("quorum queue: this node does not lead the queue")

func (h *quorumHandle) RemoveConsumer(id uint64) {
	h.mu.Lock()
	s := h.subs[id]
	delete(h.subs, id)
	var on queue.Handle
	if s != nil {
		on, s.on = s.on, nil
	}
	h.mu.Unlock()
	if on != nil {
		on.RemoveConsumer(s.id)
	}
}

func (h *quorumHandle) Kick() {
	if q := h.backend(); q != nil {
		q.Kick()
	}
}

func (h *quorumHandle) Get(noAck bool) (queue.Delivery, bool) {
	if q := h.backend(); q != nil {
		return q.Get(noAck)
	}
	return queue.Delivery{}, false
}

// Counts are the leader's. Asked of another node, they are what it last
// said (at most countsMaxAge old; a fresh figure is asked for in the
// background), so that a listing taken under the router's lock never
// waits for the network.
func (h *quorumHandle) Counts() (ready, unacked int64, consumers int) {
	h.mu.Lock()
	local, remote := h.local, h.remote
	if local == nil {
		c := h.counts
		if remote != nil && time.Since(c.at) > countsMaxAge && !h.counting {
			h.counting = true
			go h.fetchCounts(remote)
		}
		h.mu.Unlock()
		return c.ready, c.unacked, c.consumers
	}
	h.mu.Unlock()
	return local.Counts()
}

// countsMaxAge is how old the counts a handle gives of another node's
// queue may be before it asks again.
const countsMaxAge = time.Second

// fetchCounts asks remote for the counts and keeps them.
func (h *quorumHandle) fetchCounts(remote *remoteHandle) {
	ready, unacked, consumers, err := remote.counts()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counting = false
	if err == nil {
		h.counts = quorumCounts{ready: ready, unacked: unacked, consumers: consumers, at: time.Now()}
	}
}

// status is the queue's leader as this node knows it, its members, and
// those of them that are reachable.
func (h *quorumHandle) status() (leader uint64, members, online []uint64) {
	if ql, member := h.r.opts.Topics.quorumLog(h.topic); member {
		leader = ql.leader() // a node without a copy does not know it
	}
	members = h.r.opts.Topics.quorumMembers(h.topic)
	for _, m := range members {
		if m == h.r.opts.NodeID || h.r.opts.Forward != nil && h.r.opts.Forward.Reachable(cluster.NodeID(m)) {
			online = append(online, m)
		}
	}
	return leader, members, online
}

func (h *quorumHandle) Purge() int64 {
	h.mu.Lock()
	local, remote := h.local, h.remote
	h.mu.Unlock()
	switch {
	case local != nil:
		return local.Purge()
	case remote != nil:
		n, _ := remote.purge()
		return n
	}
	return 0
}

func (h *quorumHandle) LastUsed() (time.Time, bool) {
	if q := h.backend(); q != nil {
		return q.LastUsed()
	}
	return time.Time{}, true
}

func (h *quorumHandle) Touch() {
	if q := h.backend(); q != nil {
		q.Touch()
	}
}

// close stops the handle; cancel tells its consumers the queue is gone.
func (h *quorumHandle) close(cancel bool) error {
	h.r.quorumMu.Lock()
	delete(h.r.quorums, h)
	h.r.quorumMu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	local := h.local
	h.local = nil
	h.publishedLocked()
	subs := slices.Collect(maps.Values(h.subs))
	h.detachLocked()
	h.remote = nil
	h.subs = map[uint64]*quorumSub{}
	h.mu.Unlock()
	var err error
	if local != nil {
		err = local.Close()
	}
	if cancel {
		for _, s := range subs {
			s.c.Cancelled()
		}
	}
	return err
}

func (h *quorumHandle) Close() error    { return h.close(false) }
func (h *quorumHandle) Shutdown() error { return h.close(true) }

// Delete stops the handle and cancels its consumers; the queue's log goes
// with its topic, which the node deleting the queue deletes.
func (h *quorumHandle) Delete() error { return h.close(true) }

func (h *quorumHandle) Failed() error {
	h.mu.Lock()
	local := h.local
	h.mu.Unlock()
	if local != nil {
		return local.Failed()
	}
	return nil
}

// quorumTopicConfigs keep a quorum queue's log until the queue settles
// it (the queue moves the log start itself), and take a message as large
// as AMQP's default limit (16 MiB) with its properties.
var quorumTopicConfigs = map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "max.message.bytes": strconv.Itoa(17 << 20)}

// quorumPlacement picks a new quorum queue's members: this node first
// (its first leader, as RabbitMQ places a new queue's leader on the node
// the client declared it through), then the nodes after it in id order,
// those the transport hears from before the others; as many as
// x-quorum-initial-group-size (default defaultQuorumGroupSize), at most
// every registered node.
func (r *Router) quorumPlacement(args map[string]any) []uint64 {
	size := defaultQuorumGroupSize
	if n, ok := IntArg(args["x-quorum-initial-group-size"]); ok && n > 0 {
		size = int(min(n, 1<<15))
	}
	var ids []uint64
	for _, n := range r.meta.Nodes() {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	i, registered := slices.BinarySearch(ids, r.opts.NodeID)
	ordered := append(slices.Clone(ids[i:]), ids[:i]...)
	var members, down []uint64
	if registered {
		members = append(members, r.opts.NodeID)
	}
	for _, id := range ordered {
		switch {
		case id == r.opts.NodeID:
		case r.opts.Forward != nil && r.opts.Forward.Reachable(cluster.NodeID(id)):
			members = append(members, id)
		default:
			down = append(down, id)
		}
	}
	members = append(members, down...)
	return members[:min(size, len(members))]
}

// createQuorumQueue makes a new quorum queue, its name reserved in
// v.declaring: its log (a topic on its members, with a leader) first,
// then its definition, as createQueue lays out a classic queue's files
// before its definition.
func (r *Router) createQuorumQueue(v *vhost, d QueueDecl, args []byte, members []uint64) (QueueInfo, error) {
	def := meta.Queue{ID: meta.NewQueueID(), Vhost: v.name, Name: d.Name, Durable: d.Durable, Exclusive: d.Exclusive, AutoDelete: d.AutoDelete, Arguments: args, Quorum: true}
	b := r.opts.Topics
	reps := make([]int32, len(members))
	for i, m := range members {
		reps[i] = int32(m)
	}
	topic := quorumTopic(def.ID)
	res := b.CreateTopics([]TopicSpec{{Name: topic, Partitions: 1, Replicas: [][]int32{reps}, Configs: quorumTopicConfigs}}, false)[0]
	if res.Err != nil {
		return QueueInfo{}, fmt.Errorf("%w: the quorum queue's replicated log: %w", ErrStorage, res.Err)
	}
	b.AwaitLeaders(topic, time.Now().Add(5*time.Second))
	def, err := r.meta.DeclareQueue(def)
	if err != nil {
		r.deleteQuorumTopic(def)
		return QueueInfo{}, err
	}
	r.mu.RLock()
	pols := v.pols
	r.mu.RUnlock()
	qe, open, err := r.newQueueEntry(v, def, pols)
	if err != nil {
		return QueueInfo{}, err
	}
	q, _ := open(qe.qa.cfg)
	qe.setQueue(q)
	qe.owner = d.Owner
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		q.Close()
		return QueueInfo{}, ErrClosed
	case r.vhosts[v.name] != v:
		r.mu.Unlock()
		q.Delete()
		return QueueInfo{}, fmt.Errorf("%w: no vhost '%s'", ErrNotFound, v.name)
	}
	if cur, ok := v.queues[d.Name]; ok && cur.def.ID == def.ID {
		// Installed already, from the store (reconcileDefs).
		r.mu.Unlock()
		q.Close()
		return QueueInfo{Name: d.Name}, nil
	}
	v.queues[d.Name] = qe
	r.applyQueuePolicyLocked(v, qe, true)
	r.mu.Unlock()
	return QueueInfo{Name: d.Name}, nil
}

// deleteQuorumTopic deletes a quorum queue's log, once its definition
// is gone.
func (r *Router) deleteQuorumTopic(def meta.Queue) {
	if err := r.opts.Topics.deleteTopic(quorumTopic(def.ID)); err != nil && !errors.Is(err, ErrUnknownTopic) {
		r.log.Warn("quorum queue: deleting its replicated log", "vhost", def.Vhost, "queue", def.Name, "err", err)
	}
}

// openQuorumDefs installs the quorum queues of vhost v that another node
// declared, from the store's definitions.
func (r *Router) openQuorumDefs(v *vhost, defs map[string]meta.Queue) {
	var opened []*queueEntry
	for _, q := range defs {
		if !q.Quorum {
			continue
		}
		r.mu.RLock()
		cur, ok := v.queues[q.Name]
		_, declaring := v.declaring[q.Name]
		pols := v.pols
		r.mu.RUnlock()
		if ok && cur.def.ID == q.ID || declaring {
			continue
		}
		qe, open, err := r.newQueueEntry(v, q, pols)
		if err != nil {
			r.log.Warn("quorum queue not loaded", "vhost", v.name, "queue", q.Name, "err", err)
			continue
		}
		h, _ := open(qe.qa.cfg)
		qe.setQueue(h)
		opened = append(opened, qe)
	}
	r.mu.Lock()
	var extra []queue.Handle
	for _, qe := range opened {
		if cur, ok := v.queues[qe.def.Name]; ok && cur.def.ID == qe.def.ID {
			extra = append(extra, qe.q)
			continue
		}
		v.queues[qe.def.Name] = qe
		r.applyQueuePolicyLocked(v, qe, true)
	}
	r.mu.Unlock()
	for _, q := range extra {
		q.Close()
	}
}

// Stream queues on a cluster are replicated logs too: a stream declared
// in the Kafka vhost is a topic of its name (superstream.go), one declared
// in any other vhost a one-partition topic of its own,
// __sluice_stream_<queue id>, internal as a quorum queue's. Either is
// placed on x-initial-cluster-size nodes (default 3, or every node of a
// smaller cluster, as RabbitMQ's streams), replicated as any partition,
// and read through the stream view of the partition on every node that
// holds a copy (the members; a node without one has an empty view).

// streamReplication is a stream's number of copies on a cluster: its
// x-initial-cluster-size, by default min(3, registered nodes); 0 (one
// copy) on a single node.
func (r *Router) streamReplication(args map[string]any) int16 {
	if !r.opts.Clustered {
		return 0
	}
	n := len(r.meta.Nodes())
	size := defaultQuorumGroupSize
	if v, ok := IntArg(args["x-initial-cluster-size"]); ok && v > 0 {
		size = int(min(v, 1<<14))
	}
	return int16(max(min(size, n), 1))
}

// createReplicatedStream declares stream queue d of v (outside the Kafka
// vhost, its name reserved) as a topic of its own and its view.
func (r *Router) createReplicatedStream(v *vhost, d QueueDecl, qa queueArgs, args []byte) (QueueInfo, error) {
	def := meta.Queue{ID: meta.NewQueueID(), Vhost: v.name, Name: d.Name, Durable: true, Arguments: args}
	def.Topic = streamTopicPrefix + def.ID
	b := r.opts.Topics
	res := b.CreateTopics([]TopicSpec{{Name: def.Topic, Partitions: 1, Configs: streamTopicConfigs(qa.stream),
		ReplicationFactor: r.streamReplication(d.Arguments)}}, false)[0]
	if res.Err != nil {
		return QueueInfo{}, fmt.Errorf("%w: the stream's replicated log: %w", ErrStorage, res.Err)
	}
	b.AwaitLeaders(def.Topic, time.Now().Add(5*time.Second))
	def, err := r.meta.DeclareQueue(def)
	if err != nil {
		if derr := b.deleteTopic(def.Topic); derr != nil {
			r.log.Warn("removing the topic of a failed stream declaration", "vhost", v.name, "queue", d.Name, "err", derr)
		}
		return QueueInfo{}, err
	}
	qe := r.topicStreamEntry(def, qa, res.Topic.Partitions[0])
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.vhosts[v.name] != v {
		return QueueInfo{}, ErrClosed // defined: it comes back at the next start
	}
	if cur, ok := v.queues[d.Name]; !ok || cur.def.ID != def.ID {
		v.queues[d.Name] = qe
		r.applyQueuePolicyLocked(v, qe, true)
	}
	return QueueInfo{Name: d.Name}, nil
}

// openStreamOf installs the stream queue whose topic is name (declared
// through another node) once both its definition and its topic are here.
func (r *Router) openStreamOf(name string) {
	for _, vh := range r.allVhostNames() {
		for _, q := range r.meta.Queues(vh) {
			if q.Topic == name {
				r.mu.RLock()
				v := r.vhosts[vh]
				r.mu.RUnlock()
				if v != nil {
					r.openStreamDefs(v, map[string]meta.Queue{q.Name: q})
				}
				return
			}
		}
	}
}

// openStreamDefs installs the stream queues of defs (vhost v) declared
// through another node, once their topics are open here.
func (r *Router) openStreamDefs(v *vhost, defs map[string]meta.Queue) {
	for _, q := range defs {
		if q.Topic == "" {
			continue
		}
		tp, ok := r.opts.Topics.Topic(q.Topic)
		if !ok || len(tp.Partitions) == 0 {
			continue // its topic opens later: topicChanged comes back here
		}
		args, err := decodeArgs(q.Arguments)
		var qa queueArgs
		if err == nil {
			qa, err = parseQueueArgs(args, q.Durable, q.Exclusive, q.AutoDelete)
		}
		if err != nil {
			r.log.Warn("stream queue not loaded", "vhost", v.name, "queue", q.Name, "err", err)
			continue
		}
		qe := r.topicStreamEntry(q, qa, tp.Partitions[0])
		r.mu.Lock()
		_, declaring := v.declaring[q.Name]
		var gone []queue.Handle
		if cur, ok := v.queues[q.Name]; (!ok || cur.def.ID != q.ID) && !declaring && r.vhosts[v.name] == v {
			// The topic of a stream declared in the Kafka vhost may
			// have been shown here as a super stream before its
			// definition arrived: those views go.
			if x, has := v.exchanges[q.Topic]; has && x.superStream == q.Topic {
				delete(v.exchanges, q.Topic)
			}
			for _, qn := range r.views[q.Topic] {
				if e := v.queues[qn]; e != nil && e.view == q.Topic && !e.isTopicStream() {
					delete(v.queues, qn)
					gone = append(gone, e.q)
				}
			}
			delete(r.views, q.Topic)
			v.queues[q.Name] = qe
			r.applyQueuePolicyLocked(v, qe, true)
		}
		r.mu.Unlock()
		for _, g := range gone {
			g.Delete()
		}
	}
}
