package broker

import (
	"slices"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/rpc"
)

// Asking the other nodes of a cluster for what only they know, for the
// management API: their AMQP connections, say, so that /api/connections
// on any node lists the cluster's, as RabbitMQ's does. The router carries
// the question and the answer (methodNodeInfo); what is asked and what the
// answer holds are the provider's (SetNodeInfo), opaque here.

// methodNodeInfo (A asks B): B's answer to a question of its management
// API's, by kind.
const methodNodeInfo rpc.Method = 14

// maxNodeInfoKind bounds the question's size (a kind and its arguments:
// a connection's name and a reason, say).
const maxNodeInfoKind = 4096

// NodeInfo answers another node's question of kind; nil when it has no
// answer.
type NodeInfo func(kind string) []byte

// SetNodeInfo sets what answers the other nodes' questions (nil: none).
func (r *Router) SetNodeInfo(fn NodeInfo) {
	if fn == nil {
		r.nodeInfo.Store(nil)
		return
	}
	r.nodeInfo.Store(&fn)
}

func (r *Router) serveNodeInfo(_ cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	fn := r.nodeInfo.Load()
	if fn == nil || len(req) > maxNodeInfoKind {
		reply(remoteGone, nil)
		return
	}
	kind := string(req)
	go func() {
		body := (*fn)(kind)
		if body == nil {
			reply(remoteGone, nil)
			return
		}
		reply(remoteOK, body)
	}()
}

// NodeAnswer is one node's answer to a question of GatherNodeInfo: Body,
// or Err when the node did not answer.
type NodeAnswer struct {
	Node uint64
	Body []byte
	Err  error
}

// GatherNodeInfo asks every other registered node the question kind, all
// at once, and returns their answers by node id (nodes that do not answer
// within timeout have Err set). A single node asks nobody.
func (r *Router) GatherNodeInfo(kind string, timeout time.Duration) []NodeAnswer {
	if r.opts.Forward == nil || r.opts.NodeID == 0 {
		return nil
	}
	var ids []uint64
	for _, n := range r.meta.Nodes() {
		if n.ID != r.opts.NodeID {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	out := make([]NodeAnswer, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		out[i].Node = id
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Body, out[i].Err = r.AskNodeInfo(id, kind, timeout)
		}()
	}
	wg.Wait()
	return out
}

// AskNodeInfo asks one other node the question kind and returns its
// answer (an error when it does not answer within timeout, or has no
// answer).
func (r *Router) AskNodeInfo(node uint64, kind string, timeout time.Duration) ([]byte, error) {
	if r.opts.Forward == nil || r.opts.NodeID == 0 || node == r.opts.NodeID {
		return nil, errNoNodeInfo
	}
	p, err := r.opts.Forward.Go(cluster.NodeID(node), methodNodeInfo, []byte(kind), timeout)
	if err != nil {
		return nil, err
	}
	st, body, err := p.Result()
	switch {
	case err != nil:
		return nil, err
	case st != remoteOK:
		return nil, errNoNodeInfo
	}
	return body, nil
}

var errNoNodeInfo = newError(KindNotFound, "broker: the node has no answer to that")
