package multiraft

import (
	"sync"

	"encoding/binary"
	"errors"
	"github.com/sluice-mq/sluice/internal/cluster"
	"google.golang.org/protobuf/proto"
)

// LocalNetwork is an in-memory network of cluster.Transports for tests:
// every node's transport delivers to the others through the network,
// which can cut links and drop messages. Messages are marshalled and
// unmarshalled on the way, as over a real connection, so no memory is
// shared between nodes.
type LocalNetwork struct {
	mu    sync.Mutex
	nodes map[cluster.NodeID]*localTransport
	cut   map[[2]cluster.NodeID]bool
	pause map[cluster.NodeID]bool
	drop  func(from, to cluster.NodeID, env *cluster.Envelope) bool
}

// NewLocalNetwork returns an empty network.
func NewLocalNetwork() *LocalNetwork {
	return &LocalNetwork{
		nodes: make(map[cluster.NodeID]*localTransport),
		cut:   make(map[[2]cluster.NodeID]bool),
		pause: make(map[cluster.NodeID]bool),
	}
}

// Pause makes node id look like a paused process: nothing it sends is
// delivered, nothing sent to it arrives, and the others see it reachable
// (its connections are open) but not Alive, until Pause(id, false).
func (n *LocalNetwork) Pause(id cluster.NodeID, paused bool) {
	n.mu.Lock()
	n.pause[id] = paused
	n.mu.Unlock()
}

// Transport returns a new transport for node id on this network,
// replacing a previous one of the same node (a restarted node).
func (n *LocalNetwork) Transport(id cluster.NodeID) cluster.Transport {
	return &localTransport{net: n, id: id}
}

// Cut stops traffic between a and b, both ways, until Heal.
func (n *LocalNetwork) Cut(a, b cluster.NodeID) {
	n.mu.Lock()
	n.cut[[2]cluster.NodeID{a, b}] = true
	n.cut[[2]cluster.NodeID{b, a}] = true
	n.mu.Unlock()
}

// Isolate cuts node id off from every node in others.
func (n *LocalNetwork) Isolate(id cluster.NodeID, others ...cluster.NodeID) {
	for _, o := range others {
		if o != id {
			n.Cut(id, o)
		}
	}
}

// Heal restores every cut link.
func (n *LocalNetwork) Heal() {
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
}

// SetDrop installs a filter that drops the messages for which it returns
// true (nil: none). It is called from sending goroutines.
func (n *LocalNetwork) SetDrop(fn func(from, to cluster.NodeID, env *cluster.Envelope) bool) {
	n.mu.Lock()
	n.drop = fn
	n.mu.Unlock()
}

// link returns the receiving end for a message from from to to, nil if
// it cannot be delivered.
func (n *LocalNetwork) link(from, to cluster.NodeID) (*localTransport, func(from, to cluster.NodeID, env *cluster.Envelope) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[[2]cluster.NodeID{from, to}] {
		return nil, nil
	}
	if n.pause[from] || n.pause[to] {
		return nil, nil
	}
	src, dst := n.nodes[from], n.nodes[to]
	if src == nil || dst == nil {
		return nil, nil
	}
	return dst, n.drop
}

// localTransport is one node's end of a LocalNetwork. Each receiving end
// has one queue and one goroutine per sender, so a peer's batches arrive
// in the order sent, as over one connection.
type localTransport struct {
	net     *LocalNetwork
	id      cluster.NodeID
	handler func(from cluster.NodeID, envs []cluster.Envelope)

	mu     sync.Mutex
	queues map[cluster.NodeID]chan []byte
	closed bool
	wg     sync.WaitGroup
}

// localQueue bounds what one sender may have in flight to one receiver;
// beyond it messages are dropped, as a slow connection would.
const localQueue = 4096

func (t *localTransport) SetHandler(fn func(from cluster.NodeID, envs []cluster.Envelope)) {
	t.handler = fn
}

func (t *localTransport) Start() error {
	t.net.mu.Lock()
	t.net.nodes[t.id] = t
	t.net.mu.Unlock()
	return nil
}

func (t *localTransport) Close() error {
	t.net.mu.Lock()
	if t.net.nodes[t.id] == t {
		delete(t.net.nodes, t.id)
	}
	t.net.mu.Unlock()
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		for _, q := range t.queues {
			close(q)
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// Reachable is true for a paused node, as for a real connection to a
// paused process.
func (t *localTransport) Reachable(to cluster.NodeID) bool {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	return !t.net.cut[[2]cluster.NodeID{t.id, to}] && t.net.nodes[t.id] != nil && t.net.nodes[to] != nil
}

// Alive is Reachable and not paused.
func (t *localTransport) Alive(to cluster.NodeID) bool {
	dst, _ := t.net.link(t.id, to)
	return dst != nil
}

func (t *localTransport) Send(to cluster.NodeID, envs []cluster.Envelope) {
	dst, drop := t.net.link(t.id, to)
	if dst == nil {
		return
	}
	var b []byte
	n := 0
	for i := range envs {
		if drop != nil && drop(t.id, to, &envs[i]) {
			continue
		}
		var err error
		if b, err = appendEnvelope(b, &envs[i]); err != nil {
			return
		}
		n++
	}
	if n > 0 {
		dst.deliver(t.id, b)
	}
}

func (t *localTransport) deliver(from cluster.NodeID, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	q := t.queues[from]
	if q == nil {
		if t.queues == nil {
			t.queues = make(map[cluster.NodeID]chan []byte)
		}
		q = make(chan []byte, localQueue)
		t.queues[from] = q
		t.wg.Add(1)
		go t.receive(from, q)
	}
	select {
	case q <- b:
	default: // full: dropped, Raft resends
	}
}

func (t *localTransport) receive(from cluster.NodeID, q chan []byte) {
	defer t.wg.Done()
	for b := range q {
		envs, err := decodeEnvelopes(b)
		if err == nil && t.handler != nil {
			t.handler(from, envs)
		}
	}
}

// The LocalNetwork's encoding of a batch: for each envelope, the group id
// (uvarint), the message's length (uvarint) and its protobuf encoding.

// maxLocalMessage bounds one encoded message.
const maxLocalMessage = 64 << 20

func appendEnvelope(b []byte, env *cluster.Envelope) ([]byte, error) {
	m, err := proto.Marshal(&env.Msg)
	if err != nil {
		return b, err
	}
	b = binary.AppendUvarint(b, env.Group)
	b = binary.AppendUvarint(b, uint64(len(m)))
	return append(b, m...), nil
}

var errBadBatch = errors.New("multiraft: malformed batch")

// decodeEnvelopes decodes a batch. Lengths are checked against the bytes
// present before anything is allocated for them.
func decodeEnvelopes(b []byte) ([]cluster.Envelope, error) {
	var envs []cluster.Envelope
	for len(b) > 0 {
		group, n := binary.Uvarint(b)
		if n <= 0 || group == 0 {
			return nil, errBadBatch
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > maxLocalMessage || size > uint64(len(b)-n) {
			return nil, errBadBatch
		}
		b = b[n:]
		envs = append(envs, cluster.Envelope{Group: group})
		if err := proto.Unmarshal(b[:size], &envs[len(envs)-1].Msg); err != nil {
			return nil, errBadBatch
		}
		b = b[size:]
	}
	return envs, nil
}
