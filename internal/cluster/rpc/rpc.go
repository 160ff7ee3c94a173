// Package rpc carries calls between the nodes of a cluster: one node asks
// another to do something (publish a message to a queue living there) and
// waits for the answer.
//
// Calls ride the Raft transport's connections (one per pair of nodes,
// authenticated, TLS when configured) as envelopes of cluster.RPCGroup,
// which no Raft group has: a Mux sits between the transport and the
// multi-Raft host, takes those envelopes for itself and hands every other
// to the host. A call is a raftpb.Message with
//
//	Index   the call's id, chosen by the caller
//	Commit  the method (requests) or the status (answers)
//	Reject  set on answers
//	Context the request's or the answer's bytes
//
// The transport drops what it cannot deliver (a peer unreachable, its
// queue full) without telling the sender, as Raft expects; a call
// therefore fails at once when the peer is not reachable and otherwise
// waits for its answer at most as long as its context allows. A caller
// that gives up may still see the call done on the other node: methods
// are for operations the caller can answer for either way (a publish
// the caller does not confirm is one the publisher sends again).
package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// Method names what a request asks for.
type Method uint8

// Status is a handler's answer code; its meaning is the method's.
type Status uint8

// Handler serves one method: it answers each request once by calling
// reply, from any goroutine, at any time (not after the Mux's peer
// connection is gone: the answer is then dropped). It is called on the
// transport's reader goroutine for the peer, so it must not block: work
// that waits (an fsync) goes to another goroutine.
type Handler func(from cluster.NodeID, req []byte, reply func(Status, []byte))

// ErrUnreachable is a call's error when the peer cannot be reached.
var ErrUnreachable = errors.New("cluster node not reachable")

// Mux is a cluster.Transport for the multi-Raft host that also makes and
// serves calls.
type Mux struct {
	tr    cluster.Transport
	inner func(from cluster.NodeID, envs []cluster.Envelope)

	next     atomic.Uint64
	mu       sync.Mutex
	pending  map[uint64]*Pending
	handlers map[Method]Handler
	watching bool // a goroutine fails the calls to peers gone unreachable
}

// watchEvery is how often calls in flight are checked for a peer gone
// unreachable, which fails them at once rather than at their timeout.
const watchEvery = 200 * time.Millisecond

var _ cluster.Transport = (*Mux)(nil)

// New makes a Mux over tr, whose handler it becomes: New must be called
// before tr starts.
func New(tr cluster.Transport) *Mux {
	m := &Mux{tr: tr, inner: func(cluster.NodeID, []cluster.Envelope) {},
		pending: map[uint64]*Pending{}, handlers: map[Method]Handler{}}
	tr.SetHandler(m.receive)
	return m
}

// Handle sets the handler of method (nil: none, and its requests are
// answered with status 0 and no bytes).
func (m *Mux) Handle(method Method, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h == nil {
		delete(m.handlers, method)
		return
	}
	m.handlers[method] = h
}

// Pending is a call sent and not yet answered.
type Pending struct {
	m     *Mux
	id    uint64
	to    cluster.NodeID
	once  sync.Once
	done  chan struct{}
	timer *time.Timer // set and stopped under m.mu

	// set before done is closed
	status Status
	body   []byte
	err    error
}

// ErrTimeout is the error of a call not answered in time.
var ErrTimeout = errors.New("cluster call not answered in time")

// Go sends req for method to node to now, so that calls to a node made
// one after the other reach its handlers in that order, and returns the
// call, which fails with ErrTimeout if not answered within timeout.
func (m *Mux) Go(to cluster.NodeID, method Method, req []byte, timeout time.Duration) (*Pending, error) {
	if !m.tr.Reachable(to) {
		return nil, ErrUnreachable
	}
	p := &Pending{m: m, id: m.next.Add(1), to: to, done: make(chan struct{})} // never 0, a notification's
	m.mu.Lock()
	m.pending[p.id] = p
	p.timer = time.AfterFunc(timeout, func() { p.finish(0, nil, ErrTimeout) })
	if !m.watching {
		m.watching = true
		go m.watch()
	}
	m.mu.Unlock()
	m.tr.Send(to, []cluster.Envelope{{Group: cluster.RPCGroup, Msg: raftpb.Message{
		Index: proto.Uint64(p.id), Commit: proto.Uint64(uint64(method)), Context: req}}})
	return p, nil
}

func (p *Pending) finish(st Status, body []byte, err error) {
	p.once.Do(func() {
		p.m.mu.Lock()
		p.timer.Stop()
		delete(p.m.pending, p.id)
		p.m.mu.Unlock()
		p.status, p.body, p.err = st, body, err
		close(p.done)
	})
}

// watch fails the calls in flight to peers that are no longer reachable
// (the transport dropped their requests, or will never bring their
// answers), until no call is in flight.
func (m *Mux) watch() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for range t.C {
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.watching = false
			m.mu.Unlock()
			return
		}
		var lost []*Pending
		down := map[cluster.NodeID]bool{}
		for _, p := range m.pending {
			gone, seen := down[p.to]
			if !seen {
				gone = !m.tr.Reachable(p.to)
				down[p.to] = gone
			}
			if gone {
				lost = append(lost, p)
			}
		}
		m.mu.Unlock()
		for _, p := range lost {
			p.finish(0, nil, ErrUnreachable)
		}
	}
}

// Done is closed when the call is answered or has failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Result waits for the call and returns its answer, or why there is none.
func (p *Pending) Result() (Status, []byte, error) {
	<-p.done
	return p.status, p.body, p.err
}

// Notify sends req for method to node to now, expecting no answer (the
// handler's reply does nothing). Like Go, notifications to a node reach
// its handlers in the order sent; one the transport drops is lost.
func (m *Mux) Notify(to cluster.NodeID, method Method, req []byte) error {
	if !m.tr.Reachable(to) {
		return ErrUnreachable
	}
	m.tr.Send(to, []cluster.Envelope{{Group: cluster.RPCGroup, Msg: raftpb.Message{
		Index: proto.Uint64(0), Commit: proto.Uint64(uint64(method)), Context: req}}})
	return nil
}

// Call sends req for method to node to and waits for the answer, until
// ctx is done.
func (m *Mux) Call(ctx context.Context, to cluster.NodeID, method Method, req []byte) (Status, []byte, error) {
	p, err := m.Go(to, method, req, time.Hour)
	if err != nil {
		return 0, nil, err
	}
	select {
	case <-p.done:
		return p.Result()
	case <-ctx.Done():
		p.finish(0, nil, ctx.Err())
		return p.Result()
	}
}

// receive takes the calls out of a batch and passes the rest on, each
// run of Raft envelopes between calls as it came (no copies).
func (m *Mux) receive(from cluster.NodeID, envs []cluster.Envelope) {
	start := 0
	for i := range envs {
		if envs[i].Group != cluster.RPCGroup {
			continue
		}
		if i > start {
			m.inner(from, envs[start:i])
		}
		m.serve(from, &envs[i].Msg)
		start = i + 1
	}
	if start < len(envs) {
		m.inner(from, envs[start:])
	}
}

// serve handles one call envelope: an answer wakes its caller, a request
// goes to its method's handler.
func (m *Mux) serve(from cluster.NodeID, msg *raftpb.Message) {
	id, code := msg.GetIndex(), msg.GetCommit()
	if msg.GetReject() {
		m.mu.Lock()
		p := m.pending[id]
		m.mu.Unlock()
		if p != nil && code <= 0xff { // answered twice: the second ignored
			p.finish(Status(code), msg.GetContext(), nil)
		}
		return
	}
	reply := func(st Status, body []byte) {
		if id == 0 {
			return // a notification
		}
		m.tr.Send(from, []cluster.Envelope{{Group: cluster.RPCGroup, Msg: raftpb.Message{
			Index: proto.Uint64(id), Commit: proto.Uint64(uint64(st)), Reject: proto.Bool(true), Context: body}}})
	}
	m.mu.Lock()
	h := m.handlers[Method(code)]
	m.mu.Unlock()
	if h == nil || code > 0xff {
		reply(0, nil)
		return
	}
	h(from, msg.GetContext(), reply)
}

// Send implements cluster.Transport.
func (m *Mux) Send(to cluster.NodeID, envs []cluster.Envelope) { m.tr.Send(to, envs) }

// SetHandler implements cluster.Transport: h gets every envelope that is
// not a call.
func (m *Mux) SetHandler(h func(from cluster.NodeID, envs []cluster.Envelope)) { m.inner = h }

// Reachable implements cluster.Transport.
func (m *Mux) Reachable(to cluster.NodeID) bool { return m.tr.Reachable(to) }

// Alive is the transport's Alive, if it has one (the host uses it), else
// Reachable.
func (m *Mux) Alive(to cluster.NodeID) bool {
	if a, ok := m.tr.(interface{ Alive(cluster.NodeID) bool }); ok {
		return a.Alive(to)
	}
	return m.tr.Reachable(to)
}

// Start implements cluster.Transport.
func (m *Mux) Start() error { return m.tr.Start() }

// Close implements cluster.Transport.
func (m *Mux) Close() error { return m.tr.Close() }
