package broker

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/broker/route"
	"github.com/sluice-mq/sluice/internal/meta"
)

// AMQP definitions on a cluster. Vhosts, exchanges, bindings, queue
// definitions and policies are metadata commands, so every node's store
// holds all of them; a change made through one node reaches the others
// as a command applied to their stores. The store tells the router of
// each applied change by vhost (meta.Store.ObserveAMQP), and a goroutine
// reconciles the router's view of that vhost with the store: the vhost is
// loaded or dropped, exchanges installed or removed, every exchange's
// bindings made those of the store, policies applied again. Reconciling
// is idempotent, so the changes this node makes itself (which the store
// reports too) find nothing left to do.
//
// A classic queue lives on the node that declared it, its home
// (meta.Queue.Node), as in RabbitMQ 4. The other nodes know its
// definition (v.remote): they bind to it, delete it, refuse to declare
// another queue of its name, and forward the messages routed through them
// to it (router_forward.go). Until they also carry deliveries, a client of
// another node that declares, consumes from, gets from or purges it is
// told which node to connect to (NOT_FOUND, as RabbitMQ answers for a
// classic queue whose home node it cannot reach). Queues declared on a
// cluster before queues had a home (Node 0) keep the behaviour of before:
// every node opens its own copy.

// livesElsewhere reports whether queue q lives on another node.
func (r *Router) livesElsewhere(q meta.Queue) bool {
	return r.opts.Clustered && q.Node != 0 && q.Node != r.opts.NodeID && q.Topic == ""
}

// remoteQueueError is the answer to an operation this node cannot do on a
// queue living on another node.
func (r *Router) remoteQueueError(q meta.Queue) error {
	where := ""
	if n, ok := r.meta.Node(q.Node); ok && n.AMQPAddr != "" {
		where = " (AMQP " + n.AMQPAddr + ")"
	}
	return fmt.Errorf("%w: queue '%s' in vhost '%s' lives on node %d%s, which alone serves this operation on it: connect to that node",
		ErrNotFound, q.Name, q.Vhost, q.Node, where)
}

// reachableRemote returns queue name of vhost vh if it lives on another
// node and can be used through this one (not exclusive to a connection
// there).
func (r *Router) reachableRemote(vh, name string) (meta.Queue, bool) {
	if r.opts.Forward == nil {
		return meta.Queue{}, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return meta.Queue{}, false
	}
	if _, local := v.queues[name]; local {
		return meta.Queue{}, false
	}
	q, ok := remoteQueueLocked(v, name)
	if !ok || q.Exclusive {
		return meta.Queue{}, false
	}
	return q, true
}

// declareRemote answers a queue.declare of a queue living on another
// node: equivalence checked here from its definition, counts asked of its
// node.
func (r *Router) declareRemote(q meta.Queue, d QueueDecl) (QueueInfo, error) {
	if q.Exclusive {
		return QueueInfo{}, fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, q.Name, q.Vhost)
	}
	if r.opts.Forward == nil {
		return QueueInfo{}, r.remoteQueueError(q)
	}
	if !d.Passive {
		if q.Durable != d.Durable || q.Exclusive != d.Exclusive || q.AutoDelete != d.AutoDelete {
			return QueueInfo{}, fmt.Errorf("%w: inequivalent arg 'durable' for queue '%s' in vhost '%s'", ErrPreconditionFailed, q.Name, q.Vhost)
		}
		args, err := decodeArgs(q.Arguments)
		if err != nil {
			return QueueInfo{}, err
		}
		qa, err := parseQueueArgs(args, q.Durable, q.Exclusive, q.AutoDelete)
		if err != nil {
			return QueueInfo{}, err
		}
		if k, ok := argsEquivalent(args, d.Arguments, equivalenceKeys(qa.queueType)); !ok {
			return QueueInfo{}, fmt.Errorf("%w: inequivalent arg '%s' for queue '%s' in vhost '%s'", ErrPreconditionFailed, k, q.Name, q.Vhost)
		}
	}
	ready, _, consumers, err := r.remoteHandle(q).counts()
	if err != nil {
		return QueueInfo{}, err
	}
	return QueueInfo{Name: q.Name, Messages: ready, Consumers: consumers}, nil
}

// remoteQueueLocked returns v's queue name if it lives on another node;
// r.mu is held.
func remoteQueueLocked(v *vhost, name string) (meta.Queue, bool) {
	q, ok := v.remote[name]
	if !ok {
		return meta.Queue{}, false
	}
	return q.def, true
}

// deleteRemoteQueue deletes the definition of a queue living on another
// node, whose node deletes the queue when it applies the deletion.
func (r *Router) deleteRemoteQueue(v *vhost, q meta.Queue) error {
	bs := r.meta.Bindings(v.name)
	if err := r.meta.DeleteQueue(v.name, q.Name); err != nil {
		return err
	}
	r.mu.Lock()
	if cur, ok := v.remote[q.Name]; ok && cur.def.ID == q.ID {
		delete(v.remote, q.Name)
	}
	for _, b := range bs {
		if b.DestinationKind == DestQueue && b.Destination == q.Name {
			r.removeBindingLocked(v, b)
		}
	}
	r.mu.Unlock()
	return nil
}

// defsFollower queues the vhosts whose definitions changed.
type defsFollower struct {
	mu      sync.Mutex
	pending map[string]bool // "": every vhost
	wake    chan struct{}
}

// followDefinitions starts reconciling the router with the definitions
// other nodes change (a cluster only).
func (r *Router) followDefinitions() {
	f := &defsFollower{pending: map[string]bool{}, wake: make(chan struct{}, 1)}
	r.meta.ObserveAMQP(func(vhost string) {
		f.mu.Lock()
		f.pending[vhost] = true
		f.mu.Unlock()
		select {
		case f.wake <- struct{}{}:
		default:
		}
	})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// Changes applied while the router loaded, and the loss of
		// every change while the observer was not set, are covered by
		// one pass over every vhost first.
		f.pending[""] = true
		for {
			f.mu.Lock()
			names := slices.Collect(maps.Keys(f.pending))
			clear(f.pending)
			f.mu.Unlock()
			if slices.Contains(names, "") {
				names = r.allVhostNames()
			}
			slices.Sort(names)
			for _, name := range names {
				r.reconcileVhost(name)
			}
			select {
			case <-f.wake:
			case <-r.stop:
				r.meta.ObserveAMQP(nil)
				return
			}
		}
	}()
}

// allVhostNames are the vhosts of the store and of the router.
func (r *Router) allVhostNames() []string {
	names := map[string]bool{}
	for _, v := range r.meta.Vhosts() {
		names[v.Name] = true
	}
	r.mu.RLock()
	for name := range r.vhosts {
		names[name] = true
	}
	r.mu.RUnlock()
	return slices.Collect(maps.Keys(names))
}

// reconcileVhost makes the router's vhost name match the store.
func (r *Router) reconcileVhost(name string) {
	r.vhostDefs.Lock()
	defer r.vhostDefs.Unlock()
	_, defined := r.meta.Vhost(name)
	r.mu.RLock()
	_, here := r.vhosts[name]
	closed := r.closed
	r.mu.RUnlock()
	switch {
	case closed:
	case defined && !here:
		switch err := r.installVhost(name); {
		case errors.Is(err, ErrClosed):
		case err != nil:
			r.log.Warn("loading a vhost another node created", "vhost", name, "err", err)
		default:
			r.log.Info("vhost created through another node", "vhost", name)
		}
	case !defined && here:
		v, err := r.lockDefs(name)
		if err != nil {
			return
		}
		r.mu.Lock()
		delete(r.vhosts, name)
		r.mu.Unlock()
		v.defs.Unlock()
		for _, qe := range v.queues {
			qe.q.Delete()
		}
		for _, x := range v.exchanges {
			if x.delayed != nil {
				x.delayed.Forget()
			}
		}
		r.log.Info("vhost deleted through another node", "vhost", name)
	case defined && here:
		r.reconcileDefs(name)
	}
}

// reconcileDefs makes vhost name's exchanges, queues, bindings and
// policies match the store.
func (r *Router) reconcileDefs(name string) {
	v, err := r.lockDefs(name)
	if err != nil {
		return
	}
	defer v.defs.Unlock()

	// Exchanges.
	defined := map[string]meta.Exchange{}
	for _, e := range r.meta.Exchanges(name) {
		defined[e.Name] = e
	}
	var added []*exchange
	for _, e := range defined {
		if _, ok := v.exchanges[e.Name]; ok {
			continue
		}
		x, err := r.openExchange(e)
		if err != nil {
			r.log.Warn("exchange not loaded", "vhost", name, "exchange", e.Name, "err", err)
			continue
		}
		added = append(added, x)
	}
	var removed []*exchange
	r.mu.Lock()
	for _, x := range added {
		v.exchanges[x.def.Name] = x
		r.applyExchangePolicyLocked(v, x)
	}
	for xn, x := range v.exchanges {
		if _, ok := defined[xn]; !ok && x.superStream == "" && xn != "" && !strings.HasPrefix(xn, "amq.") {
			delete(v.exchanges, xn)
			removed = append(removed, x)
		}
	}
	r.mu.Unlock()
	for _, x := range removed {
		if x.delayed != nil {
			go x.delayed.Forget()
		}
	}

	// Queues: those of other nodes are known by definition; this node's
	// deleted through another node are deleted here.
	queues := map[string]meta.Queue{}
	for _, q := range r.meta.Queues(name) {
		queues[q.Name] = q
	}
	var gone []queue.Handle
	r.mu.Lock()
	clear(v.remote)
	for _, q := range queues {
		if r.livesElsewhere(q) {
			v.remote[q.Name] = r.newRemoteQueue(q)
		}
	}
	for qn, qe := range v.queues {
		if qe.view != "" || qe.def.Topic != "" {
			continue // a topic's view: follows the topic
		}
		if q, ok := queues[qn]; !ok || q.ID != qe.def.ID {
			delete(v.queues, qn)
			gone = append(gone, qe.q)
		}
	}
	r.mu.Unlock()
	for _, q := range gone {
		go q.Delete()
	}
	r.openQuorumDefs(v, queues)
	r.openStreamDefs(v, queues)

	// Bindings: every exchange's matcher rebuilt from the store's when
	// they differ.
	want := map[string][]meta.Binding{}
	for _, b := range r.meta.Bindings(name) {
		if b.SourceKind == meta.SourceTopic {
			continue // feeds (feed.go) follow their own way
		}
		want[b.Source] = append(want[b.Source], b)
	}
	r.mu.Lock()
	for xn, x := range v.exchanges {
		if x.superStream != "" || x.bindings == len(want[xn]) && x.sig == bindingsHash(want[xn]) {
			continue
		}
		typ := x.def.Type
		if typ == ExchangeDelayed {
			typ, _ = stringArg(x.args["x-delayed-type"])
		}
		m, ok := route.New[dest](typ)
		if !ok {
			continue
		}
		x.matcher, x.bindings = m, 0
		for _, b := range want[xn] {
			r.addBindingLocked(v, b)
		}
	}
	r.mu.Unlock()

	// Policies.
	r.reapplyPolicies(v)
}

// bindingHash identifies a binding within its source exchange.
func bindingHash(b meta.Binding) uint64 {
	h := fnv.New64a()
	for _, s := range []string{b.RoutingKey, b.DestinationKind, b.Destination} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(b.Arguments)
	return h.Sum64()
}

// bindingsHash is the XOR of bs's hashes, as exchange.sig.
func bindingsHash(bs []meta.Binding) uint64 {
	var sig uint64
	for _, b := range bs {
		sig ^= bindingHash(b)
	}
	return sig
}
