package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/rpc"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Consuming through any node. A client of node B consumes from (or gets
// from) a classic queue living on node A through a remoteHandle, a
// queue.Handle on B whose work is done on A by calls (package rpc):
//
//   - consume: A attaches a proxy consumer to the queue, which takes at
//     most remoteWindow deliveries ahead of B's acks (its credit, which B
//     grants once it has registered the subscription, so that no delivery
//     overtakes the answer) and sends each to B (deliver). B hands them to the channel's consumer
//     as its prefetch allows, keeping the rest (at most the window) until
//     the channel has room (Kick).
//   - settle: B's acks, requeues and rejects go to A by A's delivery ids
//     and give the proxy its credit back; a no-ack consumer's deliveries
//     return credit as B hands them over.
//   - cancel: the consumer is gone; cancelled (A to B): the queue is.
//   - check: every second B asks A whether its consumers still exist
//     (A restarted, or dropped them), and cancels those that do not;
//     a node that does not answer for remoteDeadAfter loses B's
//     consumers (basic.cancel to the client, as RabbitMQ tells the
//     consumers of a queue whose node is lost).
//   - A gives the deliveries of a node it has not reached for
//     remoteDeadAfter back to their queues, and drops its proxies.
//   - get and count: basic.get and the counts of queue.declare-ok.
//
// Deliveries keep RabbitMQ's guarantees: a message is acked once, on A,
// after the client acked it through B; an unacked message whose consumer,
// channel, connection or node goes away is requeued on A, flagged
// redelivered.

const (
	methodConsume   rpc.Method = 2
	methodCancel    rpc.Method = 3 // notification
	methodDeliver   rpc.Method = 4 // notification, A to B
	methodSettle    rpc.Method = 5 // notification
	methodCheck     rpc.Method = 6
	methodGet       rpc.Method = 7
	methodCount     rpc.Method = 8
	methodCancelled rpc.Method = 9 // notification, A to B
	methodPurge     rpc.Method = 10
	methodList      rpc.Method = 11
	// methodGone (notification, B to A): B has no subscription of this
	// sid (a delivery for it arrived): A drops the proxy and requeues
	// what it sent it.
	methodGone rpc.Method = 12
	// methodCheckProxies (A asks B): which of these proxies' sids B no
	// longer has a subscription for (B restarted, say, before A saw it
	// go); A drops those, as for methodGone.
	methodCheckProxies rpc.Method = 13
)

// Answers.
const (
	remoteOK        rpc.Status = 1
	remoteGone      rpc.Status = 2 // no such queue here
	remoteExclusive rpc.Status = 3 // an exclusive consumer holds the queue
	remoteEmpty     rpc.Status = 4 // basic.get found nothing
	remoteFailed    rpc.Status = 5
	remoteNotImpl   rpc.Status = 6 // the queue's type does not support it (a stream's purge)
)

// Settle kinds.
const (
	settleAckKind byte = iota
	settleRequeueKind
	settleRejectKind
	settleCreditKind // a no-ack consumer's deliveries handed over
)

const (
	// remoteWindow is how many deliveries a proxy consumer takes ahead
	// of B's settling them: what B may hold beyond the channel's
	// prefetch is bounded by it.
	remoteWindow = 128
	// remoteCallTimeout bounds a call that a client waits for.
	remoteCallTimeout = 10 * time.Second
	// proxyCheckAge is how old a proxy is before A asks its node whether
	// the subscription behind it still exists.
	proxyCheckAge = 5 * time.Second
	// remoteDeadAfter is how long a node may go unheard before the
	// other side drops what it holds for it.
	remoteDeadAfter = 3 * time.Second
)

// remoteState is a router's side of remote consuming: as B, its
// subscriptions to other nodes' queues; as A, its proxies and the
// deliveries it sent.
type remoteState struct {
	mu   sync.Mutex
	subs map[subKey]*remoteSub // B
	// A
	nextSub uint64
	nextID  uint64
	proxies map[uint64]*proxyConsumer
	sent    map[uint64]sentDelivery
}

type subKey struct {
	node cluster.NodeID
	sid  uint64
}

type sentDelivery struct {
	lane  queue.Settler
	off   int64
	from  cluster.NodeID
	proxy *proxyConsumer // nil for basic.get
}

func (st *remoteState) init() {
	st.subs = map[subKey]*remoteSub{}
	st.proxies = map[uint64]*proxyConsumer{}
	st.sent = map[uint64]sentDelivery{}
}

// serveRemote registers the handlers and starts the watch loop.
func (r *Router) serveRemote() {
	mux := r.opts.Forward
	r.remoteSt.init()
	mux.Handle(methodConsume, r.serveConsume)
	mux.Handle(methodCancel, r.serveCancel)
	mux.Handle(methodDeliver, r.serveDeliver)
	mux.Handle(methodSettle, r.serveSettle)
	mux.Handle(methodCheck, r.serveCheck)
	mux.Handle(methodGet, r.serveGet)
	mux.Handle(methodCount, r.serveCount)
	mux.Handle(methodCancelled, r.serveCancelled)
	mux.Handle(methodPurge, r.servePurge)
	mux.Handle(methodList, r.serveList)
	mux.Handle(methodGone, r.serveGone)
	mux.Handle(methodCheckProxies, r.serveCheckProxies)
	mux.Handle(methodNodeInfo, r.serveNodeInfo)
	r.wg.Add(2)
	go r.remoteWatch()
	go r.quorumWatch()
}

func (r *Router) stopRemote() {
	for _, m := range []rpc.Method{methodConsume, methodCancel, methodDeliver, methodSettle, methodCheck, methodGet, methodCount, methodCancelled, methodPurge, methodList, methodGone, methodCheckProxies, methodNodeInfo} {
		r.opts.Forward.Handle(m, nil)
	}
}

// ---- B: the node the client is connected to ----

// remoteHandle is a queue living on another node, for consuming and
// getting through this one.
type remoteHandle struct {
	r   *Router
	def meta.Queue
	mu  sync.Mutex
	// subs are this handle's consumers by local id.
	subs   map[uint64]*remoteSub
	nextID uint64
}

var _ queue.Handle = (*remoteHandle)(nil)

func (r *Router) remoteHandle(def meta.Queue) *remoteHandle {
	return &remoteHandle{r: r, def: def, subs: map[uint64]*remoteSub{}}
}

// remoteSub is one consumer of a queue on another node.
type remoteSub struct {
	h     *remoteHandle
	key   subKey
	c     queue.Consumer
	noAck bool
	mu    sync.Mutex
	held  []queue.Delivery // arrived, waiting for the channel's room
	gone  bool
	// pumping: a goroutine hands held deliveries over (kick); again: run
	// it once more.
	pumping, again bool
	// credit counts no-ack deliveries handed over and not yet reported.
	credit int
}

func (h *remoteHandle) node() cluster.NodeID { return cluster.NodeID(h.def.Node) }

func (h *remoteHandle) call(method rpc.Method, req []byte) (rpc.Status, []byte, error) {
	p, err := h.r.opts.Forward.Go(h.node(), method, req, remoteCallTimeout)
	if err != nil {
		return 0, nil, err
	}
	return p.Result()
}

func (h *remoteHandle) Name() string         { return h.def.Name }
func (h *remoteHandle) Config() queue.Config { return queue.NoLimits() }
func (h *remoteHandle) Publish(*message.Message) (*storage.Appended, error) {
	return nil, queue.ErrRejected // publishes are forwarded by routing (router_forward.go)
}
func (h *remoteHandle) LastUsed() (time.Time, bool) { return time.Time{}, true }
func (h *remoteHandle) Touch()                      {}
func (h *remoteHandle) Close() error                { return nil }
func (h *remoteHandle) Shutdown() error             { return nil }
func (h *remoteHandle) Delete() error               { return nil }
func (h *remoteHandle) Failed() error               { return nil }
func (h *remoteHandle) Purge() int64                { return 0 }

// errRemoteQueue is a remote call's failure as the client sees it.
func (h *remoteHandle) errRemoteQueue(err error) error {
	return fmt.Errorf("%w: queue '%s' in vhost '%s' on node %d could not be reached: %v", ErrNotFound, h.def.Name, h.def.Vhost, h.def.Node, err)
}

func (h *remoteHandle) AddConsumer(c queue.Consumer, opts queue.ConsumerOptions) (uint64, error) {
	w := newWire(queueRef(h.def))
	w.bool(opts.NoAck)
	w.bool(opts.Exclusive)
	w.u64(uint64(int64(opts.Priority)))
	st, body, err := h.call(methodConsume, w.b)
	switch {
	case err != nil:
		return 0, h.errRemoteQueue(err)
	case st == remoteExclusive:
		return 0, queue.ErrExclusiveConsumer
	case st == remoteGone:
		return 0, queue.ErrDeleted
	case st != remoteOK || len(body) != 8:
		return 0, h.errRemoteQueue(fmt.Errorf("answer %d", st))
	}
	sub := &remoteSub{h: h, key: subKey{h.node(), binary.BigEndian.Uint64(body)}, c: c, noAck: opts.NoAck}
	st2 := &h.r.remoteSt
	st2.mu.Lock()
	st2.subs[sub.key] = sub
	st2.mu.Unlock()
	h.mu.Lock()
	h.nextID++
	id := h.nextID
	h.subs[id] = sub
	h.mu.Unlock()
	sub.grant(remoteWindow) // deliveries may come now
	return id, nil
}

// grant gives the proxy consumer n more deliveries.
func (s *remoteSub) grant(n int) {
	w := newWire(nil)
	w.u8(settleCreditKind)
	w.u64(s.key.sid)
	w.u64(uint64(n))
	s.h.r.opts.Forward.Notify(s.key.node, methodSettle, w.b)
}

func (h *remoteHandle) RemoveConsumer(id uint64) {
	h.mu.Lock()
	sub := h.subs[id]
	delete(h.subs, id)
	h.mu.Unlock()
	if sub == nil {
		return
	}
	held := sub.drop()
	// Deliveries that never reached the client go back now.
	h.settleHeld(held)
	w := newWire(nil)
	w.u64(sub.key.sid)
	h.r.opts.Forward.Notify(sub.key.node, methodCancel, w.b)
}

// drop unregisters sub and returns what it held.
func (s *remoteSub) drop() []queue.Delivery {
	st := &s.h.r.remoteSt
	st.mu.Lock()
	delete(st.subs, s.key)
	st.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = true
	held := s.held
	s.held = nil
	return held
}

func (h *remoteHandle) settleHeld(held []queue.Delivery) {
	var ids []int64
	for _, d := range held {
		if d.Queue != nil {
			ids = append(ids, d.Offset)
		}
	}
	if len(ids) > 0 {
		h.r.remoteSettler(h.node()).settle(settleRequeueKind, ids)
	}
}

// Kick hands held deliveries over as the channel has room.
func (h *remoteHandle) Kick() {
	h.mu.Lock()
	subs := make([]*remoteSub, 0, len(h.subs))
	for _, s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.kick()
	}
}

// kick has held deliveries handed over by a goroutine: handing over
// writes to the client, which must not hold up the caller (the
// transport's reader, for deliveries).
func (s *remoteSub) kick() {
	s.mu.Lock()
	if s.pumping {
		s.again = true
		s.mu.Unlock()
		return
	}
	s.pumping = true
	s.mu.Unlock()
	go func() {
		for {
			s.pump()
			s.mu.Lock()
			if !s.again {
				s.pumping = false
				s.mu.Unlock()
				return
			}
			s.again = false
			s.mu.Unlock()
		}
	}()
}

// pump delivers held deliveries while the consumer takes them.
func (s *remoteSub) pump() {
	s.mu.Lock()
	for len(s.held) > 0 && !s.gone && s.c.Reserve() {
		d := s.held[0]
		s.held = s.held[1:]
		s.mu.Unlock()
		s.c.Deliver(d)
		s.mu.Lock()
		if s.noAck {
			s.credit++
		}
	}
	credit := s.credit
	s.credit = 0
	s.mu.Unlock()
	if credit > 0 {
		s.grant(credit)
	}
}

func (h *remoteHandle) Get(noAck bool) (queue.Delivery, bool) {
	w := newWire(queueRef(h.def))
	w.bool(noAck)
	st, body, err := h.call(methodGet, w.b)
	if err != nil || st != remoteOK {
		return queue.Delivery{}, false
	}
	d, err := decodeDelivery(body)
	if err != nil {
		h.r.log.Warn("malformed delivery from another node", "node", h.def.Node, "err", err)
		return queue.Delivery{}, false
	}
	if !noAck {
		d.Queue = h.r.remoteSettler(h.node())
	}
	return d.Delivery, true
}

func (h *remoteHandle) Counts() (ready, unacked int64, consumers int) {
	ready, unacked, consumers, _ = h.counts()
	return ready, unacked, consumers
}

// remoteSettler settles deliveries of node A's queues, by A's ids.
type remoteSettler struct {
	r    *Router
	node cluster.NodeID
}

func (r *Router) remoteSettler(node cluster.NodeID) *remoteSettler {
	return &remoteSettler{r: r, node: node}
}

func (s *remoteSettler) Ack(ids ...int64)     { s.settle(settleAckKind, ids) }
func (s *remoteSettler) Requeue(ids ...int64) { s.settle(settleRequeueKind, ids) }
func (s *remoteSettler) Reject(ids ...int64)  { s.settle(settleRejectKind, ids) }

func (s *remoteSettler) settle(kind byte, ids []int64) {
	w := newWire(nil)
	w.u8(kind)
	w.u64(uint64(len(ids)))
	for _, id := range ids {
		w.u64(uint64(id))
	}
	// A lost settle (the node unreachable) is a requeue there when it
	// drops this node's deliveries: a redelivery, never a loss.
	s.r.opts.Forward.Notify(s.node, methodSettle, w.b)
}

// serveDeliver takes a delivery for one of this node's subscriptions.
func (r *Router) serveDeliver(from cluster.NodeID, req []byte, _ func(rpc.Status, []byte)) {
	rd, sid, err := decodeDeliver(req)
	if err != nil {
		r.log.Warn("malformed delivery from another node", "node", from, "err", err)
		return
	}
	st := &r.remoteSt
	st.mu.Lock()
	sub := st.subs[subKey{from, sid}]
	st.mu.Unlock()
	d := rd.Delivery
	if sub == nil {
		// The consumer went meanwhile (or this node restarted since it
		// subscribed): the queue's node drops the proxy, then puts this
		// delivery and the proxy's others back in the queue. Requeued
		// before the proxy went, the message would go straight back to
		// it, again and again, up to the delivery limit.
		w := newWire(nil)
		w.u64(sid)
		w.u64(uint64(d.Offset))
		r.opts.Forward.Notify(from, methodGone, w.b)
		return
	}
	if !sub.noAck {
		d.Queue = r.remoteSettler(from)
	}
	sub.mu.Lock()
	if sub.gone {
		sub.mu.Unlock()
		if !sub.noAck {
			r.remoteSettler(from).settle(settleRequeueKind, []int64{d.Offset})
		}
		return
	}
	sub.held = append(sub.held, d)
	sub.mu.Unlock()
	sub.kick()
}

// serveCancelled: a queue on another node cancelled a consumer of ours.
func (r *Router) serveCancelled(from cluster.NodeID, req []byte, _ func(rpc.Status, []byte)) {
	if len(req) != 8 {
		return
	}
	r.cancelSub(subKey{from, binary.BigEndian.Uint64(req)})
}

func (r *Router) cancelSub(k subKey) {
	st := &r.remoteSt
	st.mu.Lock()
	sub := st.subs[k]
	st.mu.Unlock()
	if sub == nil {
		return
	}
	sub.drop() // what it held is requeued on A when A drops it
	sub.c.Cancelled()
}

// ---- A: the node the queue lives on ----

// proxyConsumer consumes from a queue of this node for a consumer on node
// from.
type proxyConsumer struct {
	r      *Router
	sid    uint64
	from   cluster.NodeID
	q      queue.Handle
	id     uint64 // the queue's consumer id
	noAck  bool
	mu     sync.Mutex
	credit int
	gone   bool
	// created is when the proxy was made: a check of its subscription
	// leaves young ones alone (their node may not have recorded the
	// subscription yet).
	created time.Time
}

func (p *proxyConsumer) Reserve() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone || p.credit == 0 {
		return false
	}
	p.credit--
	return true
}

// track numbers a delivery sent to node from and, unless noAck, keeps it
// until settled.
func (st *remoteState) track(d queue.Delivery, from cluster.NodeID, p *proxyConsumer, noAck bool) uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.nextID++
	if !noAck {
		st.sent[st.nextID] = sentDelivery{lane: d.Queue, off: d.Offset, from: from, proxy: p}
	}
	return st.nextID
}

func (p *proxyConsumer) Deliver(d queue.Delivery) {
	id := p.r.remoteSt.track(d, p.from, p, p.noAck)
	d.Offset = int64(id)
	w := newWire(nil)
	w.u64(p.sid)
	w.delivery(&d)
	if err := p.r.opts.Forward.Notify(p.from, methodDeliver, w.b); err != nil {
		// The consumer's node cannot be reached: the proxy goes, and
		// what it sent goes back to the queue. Requeued with the proxy
		// still there, the message would come straight back to it, as
		// fast as the queue can hand it out, until the delivery limit
		// dropped it. Its node, reached again, finds the subscription
		// gone (checkSubs) and cancels it.
		go p.r.proxyGone(p)
	}
}

func (p *proxyConsumer) Cancelled() {
	p.r.dropProxy(p, false)
	w := newWire(nil)
	w.u64(p.sid)
	p.r.opts.Forward.Notify(p.from, methodCancelled, w.b)
}

// localQueue finds queue ref of this node.
func (r *Router) localQueue(ref meta.Queue) queue.Handle {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if v, ok := r.vhosts[ref.Vhost]; ok && !r.closed {
		if qe, ok := v.queues[ref.Name]; ok && qe.def.ID == ref.ID {
			return qe.q
		}
	}
	return nil
}

// consumeReq is a consume call.
type consumeReq struct {
	ref  meta.Queue
	opts queue.ConsumerOptions
}

func parseConsume(req []byte) (consumeReq, error) {
	rd := reader{b: req}
	var c consumeReq
	c.ref = rd.queueRef()
	c.opts.NoAck, c.opts.Exclusive, c.opts.Priority = rd.bool(), rd.bool(), int32(int64(rd.u64()))
	return c, rd.end()
}

func (r *Router) serveConsume(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	c, err := parseConsume(req)
	if err != nil {
		reply(remoteFailed, nil)
		return
	}
	ref, noAck := c.ref, c.opts.NoAck
	q := r.localQueue(ref)
	if q == nil {
		reply(remoteGone, nil)
		return
	}
	// Attaching may wait on the queue's opening: not on the reader.
	go func() {
		st := &r.remoteSt
		st.mu.Lock()
		st.nextSub++
		// No credit until node from has the subscription (its first
		// credit): a delivery must not get there before the answer.
		p := &proxyConsumer{r: r, sid: st.nextSub, from: from, q: q, noAck: noAck, created: time.Now()}
		st.proxies[p.sid] = p
		st.mu.Unlock()
		id, err := q.AddConsumer(p, c.opts)
		if err != nil {
			st.mu.Lock()
			delete(st.proxies, p.sid)
			st.mu.Unlock()
			switch {
			case errors.Is(err, queue.ErrExclusiveConsumer):
				reply(remoteExclusive, nil)
			case errors.Is(err, queue.ErrDeleted):
				reply(remoteGone, nil)
			default:
				reply(remoteFailed, nil)
			}
			return
		}
		p.mu.Lock()
		p.id = id
		p.mu.Unlock()
		reply(remoteOK, binary.BigEndian.AppendUint64(nil, p.sid))
		q.Kick()
	}()
}

func (r *Router) serveCancel(from cluster.NodeID, req []byte, _ func(rpc.Status, []byte)) {
	if len(req) != 8 {
		return
	}
	st := &r.remoteSt
	st.mu.Lock()
	p := st.proxies[binary.BigEndian.Uint64(req)]
	st.mu.Unlock()
	if p != nil && p.from == from {
		go r.dropProxy(p, true)
	}
}

// serveGone: node from got delivery id for proxy sid, for which it has no
// subscription: the proxy goes (with what it sent), or, gone already, the
// delivery goes back to its queue.
func (r *Router) serveGone(from cluster.NodeID, req []byte, _ func(rpc.Status, []byte)) {
	if len(req) != 16 {
		return
	}
	sid, id := binary.BigEndian.Uint64(req), int64(binary.BigEndian.Uint64(req[8:]))
	st := &r.remoteSt
	st.mu.Lock()
	p := st.proxies[sid]
	st.mu.Unlock()
	if p != nil && p.from == from {
		go r.proxyGone(p)
		return
	}
	r.settleSent(from, settleRequeueKind, []int64{id})
}

// proxyGone drops a proxy whose subscription is gone from its node and
// requeues what it sent there: that node will never settle it.
func (r *Router) proxyGone(p *proxyConsumer) {
	r.dropProxy(p, true)
	st := &r.remoteSt
	st.mu.Lock()
	var ids []int64
	for id, sd := range st.sent {
		if sd.proxy == p {
			ids = append(ids, int64(id))
		}
	}
	st.mu.Unlock()
	r.settleSent(p.from, settleRequeueKind, ids)
}

// serveCheckProxies answers A with the sids it asked about that have no
// subscription here.
func (r *Router) serveCheckProxies(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	r.answerMissing(req, reply, func(st *remoteState, sid uint64) bool {
		_, ok := st.subs[subKey{from, sid}]
		return !ok
	})
}

// answerMissing answers a check: the sids of req (a list of ids) for
// which missing, called under the remote state's lock, says true.
func (r *Router) answerMissing(req []byte, reply func(rpc.Status, []byte), missing func(st *remoteState, sid uint64) bool) {
	sids, err := parseIDs(req)
	if err != nil {
		reply(remoteFailed, nil)
		return
	}
	w := newWire(nil)
	st := &r.remoteSt
	st.mu.Lock()
	for _, sid := range sids {
		if missing(st, sid) {
			w.u64(sid)
		}
	}
	st.mu.Unlock()
	reply(remoteOK, w.b)
}

// checkProxies asks node which of its proxies here it no longer has a
// subscription for, and drops those.
func (r *Router) checkProxies(node cluster.NodeID, proxies []*proxyConsumer) {
	w := newWire(nil)
	w.u64(uint64(len(proxies)))
	for _, p := range proxies {
		w.u64(p.sid)
	}
	call, err := r.opts.Forward.Go(node, methodCheckProxies, w.b, remoteCallTimeout)
	if err != nil {
		return
	}
	status, body, err := call.Result()
	if err != nil || status != remoteOK {
		return
	}
	gone := map[uint64]bool{}
	for rd := (reader{b: body}); len(rd.b) >= 8; {
		gone[rd.u64()] = true
	}
	for _, p := range proxies {
		if gone[p.sid] {
			r.log.Info("a remote consumer's subscription is gone from its node: its proxy dropped, its deliveries requeued", "node", node)
			r.proxyGone(p)
		}
	}
}

// dropProxy detaches a proxy consumer; its deliveries stay unacked until
// settled (as a cancelled AMQP consumer's do), unless its node is gone
// (requeue).
func (r *Router) dropProxy(p *proxyConsumer, detach bool) {
	st := &r.remoteSt
	st.mu.Lock()
	delete(st.proxies, p.sid)
	st.mu.Unlock()
	p.mu.Lock()
	p.gone = true
	id := p.id
	p.mu.Unlock()
	if detach {
		p.q.RemoveConsumer(id)
	}
}

// settleReq is a settle call: ids settled by kind, or (settleCreditKind)
// n deliveries of subscription sid handed over.
type settleReq struct {
	kind   byte
	sid, n uint64
	ids    []int64
}

func parseSettle(req []byte) (settleReq, error) {
	rd := reader{b: req}
	s := settleReq{kind: rd.u8()}
	if s.kind == settleCreditKind {
		s.sid, s.n = rd.u64(), rd.u64()
		if rd.err == nil && s.n > remoteWindow {
			return s, errShort
		}
		return s, rd.end()
	}
	n := rd.u64()
	if rd.err != nil || n != uint64(len(rd.b))/8 || s.kind > settleRejectKind {
		return s, errShort
	}
	s.ids = make([]int64, n)
	for i := range s.ids {
		s.ids[i] = int64(rd.u64())
	}
	return s, rd.end()
}

func (r *Router) serveSettle(from cluster.NodeID, req []byte, _ func(rpc.Status, []byte)) {
	s, err := parseSettle(req)
	if err != nil {
		return
	}
	if s.kind == settleCreditKind {
		sid, n := s.sid, s.n
		st := &r.remoteSt
		st.mu.Lock()
		p := st.proxies[sid]
		st.mu.Unlock()
		if p != nil && p.from == from {
			p.mu.Lock()
			p.credit = min(p.credit+int(n), remoteWindow)
			p.mu.Unlock()
			p.q.Kick()
		}
		return
	}
	r.settleSent(from, s.kind, s.ids)
}

// settleSent settles deliveries this node sent to node from.
func (r *Router) settleSent(from cluster.NodeID, kind byte, ids []int64) {
	type laneOffs struct {
		lane queue.Settler
		offs []int64
	}
	var lanes []laneOffs
	kick := map[*proxyConsumer]bool{}
	st := &r.remoteSt
	st.mu.Lock()
	for _, id := range ids {
		sd, ok := st.sent[uint64(id)]
		if !ok || sd.from != from {
			continue
		}
		delete(st.sent, uint64(id))
		i := 0
		for i < len(lanes) && lanes[i].lane != sd.lane {
			i++
		}
		if i == len(lanes) {
			lanes = append(lanes, laneOffs{lane: sd.lane})
		}
		lanes[i].offs = append(lanes[i].offs, sd.off)
		if sd.proxy != nil {
			kick[sd.proxy] = true
			sd.proxy.mu.Lock()
			sd.proxy.credit = min(sd.proxy.credit+1, remoteWindow)
			sd.proxy.mu.Unlock()
		}
	}
	st.mu.Unlock()
	for _, l := range lanes {
		switch kind {
		case settleAckKind:
			l.lane.Ack(l.offs...)
		case settleRequeueKind:
			l.lane.Requeue(l.offs...)
		default:
			l.lane.Reject(l.offs...)
		}
	}
	for p := range kick {
		p.q.Kick()
	}
}

// serveCheck answers which of the subscriptions asked about are unknown
// here.
func parseIDs(req []byte) ([]uint64, error) {
	rd := reader{b: req}
	n := rd.u64()
	if rd.err != nil || n != uint64(len(rd.b))/8 {
		return nil, errShort
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = rd.u64()
	}
	return ids, rd.end()
}

func (r *Router) serveCheck(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	r.answerMissing(req, reply, func(st *remoteState, sid uint64) bool {
		p, ok := st.proxies[sid]
		return !ok || p.from != from
	})
}

func parseGet(req []byte) (meta.Queue, bool, error) {
	rd := reader{b: req}
	ref := rd.queueRef()
	noAck := rd.bool()
	return ref, noAck, rd.end()
}

func parseRef(req []byte) (meta.Queue, error) {
	rd := reader{b: req}
	ref := rd.queueRef()
	return ref, rd.end()
}

func (r *Router) serveGet(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	ref, noAck, err := parseGet(req)
	if err != nil {
		reply(remoteFailed, nil)
		return
	}
	q := r.localQueue(ref)
	if q == nil {
		reply(remoteGone, nil)
		return
	}
	go func() {
		d, ok := q.Get(noAck)
		if !ok {
			reply(remoteEmpty, nil)
			return
		}
		d.Offset = int64(r.remoteSt.track(d, from, nil, noAck))
		w := newWire(nil)
		w.delivery(&d)
		reply(remoteOK, w.b)
	}()
}

func (r *Router) serveCount(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	ref, err := parseRef(req)
	if err != nil {
		reply(remoteFailed, nil)
		return
	}
	q := r.localQueue(ref)
	if q == nil {
		reply(remoteGone, nil)
		return
	}
	go func() {
		ready, unacked, consumers := q.Counts()
		w := newWire(nil)
		w.u64(uint64(ready))
		w.u64(uint64(unacked))
		w.u64(uint64(consumers))
		reply(remoteOK, w.b)
	}()
}

func (r *Router) servePurge(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	ref, err := parseRef(req)
	if err != nil {
		reply(remoteFailed, nil)
		return
	}
	r.mu.RLock()
	var qe *queueEntry
	if v, ok := r.vhosts[ref.Vhost]; ok && !r.closed {
		if e, ok := v.queues[ref.Name]; ok && e.def.ID == ref.ID {
			qe = e
		}
	}
	r.mu.RUnlock()
	switch {
	case qe == nil:
		reply(remoteGone, nil)
	case qe.qa.queueType == QueueTypeStream:
		reply(remoteNotImpl, nil)
	default:
		go func() { reply(remoteOK, binary.BigEndian.AppendUint64(nil, uint64(qe.q.Purge()))) }()
	}
}

// purge purges the queue on its node and returns how many messages went.
func (h *remoteHandle) purge() (int64, error) {
	st, body, err := h.call(methodPurge, queueRef(h.def))
	switch {
	case err != nil:
		return 0, h.errRemoteQueue(err)
	case st == remoteGone:
		return 0, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, h.def.Name, h.def.Vhost)
	case st == remoteNotImpl:
		return 0, fmt.Errorf("%w: queue.purge not supported by stream queues queue '%s' in vhost '%s'", ErrNotImplemented, h.def.Name, h.def.Vhost)
	case st != remoteOK || len(body) != 8:
		return 0, h.errRemoteQueue(fmt.Errorf("answer %d", st))
	}
	return int64(binary.BigEndian.Uint64(body)), nil
}

// counts asks the queue's node for its counts.
func (h *remoteHandle) counts() (ready, unacked int64, consumers int, err error) {
	st, body, err := h.call(methodCount, queueRef(h.def))
	switch {
	case err != nil:
		return 0, 0, 0, h.errRemoteQueue(err)
	case st == remoteGone:
		return 0, 0, 0, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, h.def.Name, h.def.Vhost)
	case st != remoteOK || len(body) != 24:
		return 0, 0, 0, h.errRemoteQueue(fmt.Errorf("answer %d", st))
	}
	return int64(binary.BigEndian.Uint64(body)), int64(binary.BigEndian.Uint64(body[8:])), int(binary.BigEndian.Uint64(body[16:])), nil
}

// serveList answers the counts of this node's queues in a vhost: for
// each, its name, id, ready, unacked and consumers.
func (r *Router) serveList(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	rd := reader{b: req}
	vh := rd.str()
	if rd.end() != nil {
		reply(remoteFailed, nil)
		return
	}
	go func() {
		qs, err := r.QueueStatuses(vh)
		if err != nil {
			reply(remoteGone, nil)
			return
		}
		w := newWire(nil)
		for _, q := range qs {
			if q.Remote || q.Node != r.opts.NodeID {
				continue
			}
			w.str(q.Name)
			w.str(q.ID)
			w.u64(uint64(q.Ready))
			w.u64(uint64(q.Unacked))
			w.u64(uint64(q.Consumers))
		}
		reply(remoteOK, w.b)
	}()
}

type listedCounts struct {
	ready, unacked int64
	consumers      int
}

// parseList decodes serveList's answer, by queue id.
func parseList(b []byte) (map[string]listedCounts, error) {
	rd := reader{b: b}
	out := map[string]listedCounts{}
	for len(rd.b) > 0 && rd.err == nil {
		rd.str() // the name, for reading the bytes
		id := rd.str()
		c := listedCounts{ready: int64(rd.u64()), unacked: int64(rd.u64()), consumers: int(rd.u64())}
		if rd.err == nil {
			out[id] = c
		}
	}
	return out, rd.err
}

// RemoteQueueStatuses lists vhost vh's queues living on other nodes, with
// their nodes' counts (one call per node), sorted by name.
func (r *Router) RemoteQueueStatuses(vh string) []QueueStatus {
	r.mu.RLock()
	v, ok := r.vhosts[vh]
	var defs []meta.Queue
	if ok {
		for _, rq := range v.remote {
			defs = append(defs, rq.def)
		}
	}
	r.mu.RUnlock()
	if len(defs) == 0 {
		return nil
	}
	nodes := map[cluster.NodeID]bool{}
	for _, d := range defs {
		nodes[cluster.NodeID(d.Node)] = true
	}
	var mu sync.Mutex
	counts := map[cluster.NodeID]map[string]listedCounts{}
	var wg sync.WaitGroup
	for node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.opts.Forward == nil {
				return
			}
			w := newWire(nil)
			w.str(vh)
			p, err := r.opts.Forward.Go(node, methodList, w.b, 5*time.Second)
			if err != nil {
				return
			}
			st, body, err := p.Result()
			if err != nil || st != remoteOK {
				return
			}
			if c, err := parseList(body); err == nil {
				mu.Lock()
				counts[node] = c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out := make([]QueueStatus, 0, len(defs))
	for _, d := range defs {
		args, _ := decodeArgs(d.Arguments)
		typ, _ := stringArg(args["x-queue-type"])
		s := QueueStatus{Queue: d, Args: args, Type: typ, Memory: -1, Remote: true}
		var c listedCounts
		byNode, answered := counts[cluster.NodeID(d.Node)]
		if !answered {
			s.Down = true
		} else if c, ok = byNode[d.ID]; !ok {
			continue // deleted there meanwhile
		}
		s.Ready, s.Unacked, s.Consumers = c.ready, c.unacked, c.consumers
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b QueueStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// remoteWatch, every second: as B, checks its subscriptions with their
// nodes; as A, gives back what it holds for nodes unheard for
// remoteDeadAfter.
func (r *Router) remoteWatch() {
	defer r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	unheard := map[cluster.NodeID]time.Time{}
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		st := &r.remoteSt
		st.mu.Lock()
		byNode := map[cluster.NodeID][]uint64{}
		for k := range st.subs {
			byNode[k.node] = append(byNode[k.node], k.sid)
		}
		held := map[cluster.NodeID]bool{}
		older := map[cluster.NodeID][]*proxyConsumer{}
		for _, p := range st.proxies {
			held[p.from] = true
			if now.Sub(p.created) > proxyCheckAge {
				older[p.from] = append(older[p.from], p)
			}
		}
		for _, sd := range st.sent {
			held[sd.from] = true
		}
		st.mu.Unlock()
		for node := range held {
			if _, ok := byNode[node]; !ok {
				byNode[node] = nil // watched for reachability only
			}
		}
		for node, sids := range byNode {
			if !r.opts.Forward.Reachable(node) {
				if _, ok := unheard[node]; !ok {
					unheard[node] = now
				}
				if now.Sub(unheard[node]) >= remoteDeadAfter {
					r.nodeGone(node)
				}
				continue
			}
			delete(unheard, node)
			if len(sids) > 0 {
				go r.checkSubs(node, sids)
			}
			if ps := older[node]; len(ps) > 0 {
				go r.checkProxies(node, ps)
			}
		}
	}
}

// checkSubs cancels this node's subscriptions that node no longer has.
func (r *Router) checkSubs(node cluster.NodeID, sids []uint64) {
	w := newWire(nil)
	w.u64(uint64(len(sids)))
	for _, sid := range sids {
		w.u64(sid)
	}
	p, err := r.opts.Forward.Go(node, methodCheck, w.b, remoteCallTimeout)
	if err != nil {
		return
	}
	st, body, err := p.Result()
	if err != nil || st != remoteOK {
		return
	}
	rd := reader{b: body}
	for len(rd.b) >= 8 {
		r.cancelSub(subKey{node, rd.u64()})
	}
}

// nodeGone drops everything held with node: its subscriptions here
// (cancelled to their clients) and, as A, its proxies and deliveries
// (requeued).
func (r *Router) nodeGone(node cluster.NodeID) {
	st := &r.remoteSt
	st.mu.Lock()
	var subs []subKey
	for k := range st.subs {
		if k.node == node {
			subs = append(subs, k)
		}
	}
	var proxies []*proxyConsumer
	for _, p := range st.proxies {
		if p.from == node {
			proxies = append(proxies, p)
		}
	}
	var ids []int64
	for id, sd := range st.sent {
		if sd.from == node {
			ids = append(ids, int64(id))
		}
	}
	st.mu.Unlock()
	if len(subs)+len(proxies)+len(ids) == 0 {
		return
	}
	r.log.Info("cluster node unreachable: its remote consumers and deliveries dropped", "node", node,
		"consumers_here", len(subs), "consumers_there", len(proxies), "deliveries_requeued", len(ids))
	for _, k := range subs {
		r.cancelSub(k)
	}
	for _, p := range proxies {
		r.dropProxy(p, true)
	}
	r.settleSent(node, settleRequeueKind, ids)
}

// ---- encoding ----

// wire builds a call's bytes.
type wire struct{ b []byte }

func newWire(b []byte) *wire { return &wire{b: b} }

func (w *wire) u8(v byte)    { w.b = append(w.b, v) }
func (w *wire) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *wire) bool(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}
func (w *wire) str(s string) {
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(min(len(s), 0xffff)))
	w.b = append(w.b, s[:min(len(s), 0xffff)]...)
}

// delivery appends d (without Queue) and its message.
func (w *wire) delivery(d *queue.Delivery) {
	w.u64(uint64(d.Offset))
	w.bool(d.Redelivered)
	w.u64(uint64(int64(d.DeliveryCount)))
	rec, err := d.Message.Record()
	if err != nil {
		rec.Value = d.Message.Body
	}
	w.b = append(w.b, storage.BuildRecordBatch(0, 0, []storage.Record{rec})...)
}

// queueRef is a queue's vhost, name and id.
func queueRef(q meta.Queue) []byte {
	w := newWire(nil)
	w.str(q.Vhost)
	w.str(q.Name)
	w.str(q.ID)
	return w.b
}

// reader reads a call's bytes with a sticky error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("malformed call from another node")

func (r *reader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = errShort
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) u8() byte {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *reader) bool() bool { return r.u8() != 0 }

// end is the error of a read that must have used every byte.
func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errShort
	}
	return r.err
}

func (r *reader) str() string {
	b := r.take(2)
	if b == nil {
		return ""
	}
	return string(r.take(int(binary.BigEndian.Uint16(b))))
}

func (r *reader) queueRef() meta.Queue {
	return meta.Queue{Vhost: r.str(), Name: r.str(), ID: r.str()}
}

// remoteDelivery is a decoded delivery.
type remoteDelivery struct{ queue.Delivery }

func decodeDelivery(b []byte) (remoteDelivery, error) {
	rd := reader{b: b}
	var d queue.Delivery
	d.Offset = int64(rd.u64())
	d.Redelivered = rd.bool()
	d.DeliveryCount = int32(int64(rd.u64()))
	if rd.err != nil {
		return remoteDelivery{}, rd.err
	}
	var (
		count int
		merr  error
	)
	n, err := storage.ReadRecords(rd.b, func(_, _ int64, r storage.Record) bool {
		count++
		d.Message, merr = message.FromRecord(r)
		return true
	})
	switch {
	case err != nil:
		return remoteDelivery{}, err
	case merr != nil:
		return remoteDelivery{}, merr
	case count != 1 || n != len(rd.b):
		return remoteDelivery{}, errShort
	}
	return remoteDelivery{d}, nil
}

func decodeDeliver(b []byte) (remoteDelivery, uint64, error) {
	if len(b) < 8 {
		return remoteDelivery{}, 0, errShort
	}
	d, err := decodeDelivery(b[8:])
	return d, binary.BigEndian.Uint64(b), err
}
