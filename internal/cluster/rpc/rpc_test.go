package rpc

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/multiraft"
)

func pair(t *testing.T) (*multiraft.LocalNetwork, *Mux, *Mux, *recorder) {
	t.Helper()
	n := multiraft.NewLocalNetwork()
	a, b := New(n.Transport(1)), New(n.Transport(2))
	rec := &recorder{}
	b.SetHandler(rec.receive)
	for _, m := range []*Mux{a, b} {
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
	}
	return n, a, b, rec
}

// recorder keeps the Raft envelopes the host would get.
type recorder struct {
	mu   sync.Mutex
	envs []cluster.Envelope
}

func (r *recorder) receive(_ cluster.NodeID, envs []cluster.Envelope) {
	r.mu.Lock()
	for i := range envs {
		r.envs = append(r.envs, cluster.Envelope{Group: envs[i].Group})
	}
	r.mu.Unlock()
}

func (r *recorder) groups() []cluster.GroupID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gs []cluster.GroupID
	for i := range r.envs {
		gs = append(gs, r.envs[i].Group)
	}
	return gs
}

func TestCallIsAnsweredAndRaftTrafficPassesThrough(t *testing.T) {
	_, a, b, rec := pair(t)
	b.Handle(7, func(from cluster.NodeID, req []byte, reply func(Status, []byte)) {
		if from != 1 {
			t.Errorf("request from %d, want 1", from)
		}
		go reply(3, append([]byte("re:"), req...)) // answered later, elsewhere
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Raft envelopes before and after the call reach the host, in order.
	hb := raftpb.MsgHeartbeat
	raftEnv := func(g cluster.GroupID) cluster.Envelope {
		return cluster.Envelope{Group: g, Msg: raftpb.Message{Type: &hb, From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1)}}
	}
	a.Send(2, []cluster.Envelope{raftEnv(5)})
	st, body, err := a.Call(ctx, 2, 7, []byte("hello"))
	if err != nil || st != 3 || !bytes.Equal(body, []byte("re:hello")) {
		t.Fatalf("call: status %d body %q err %v", st, body, err)
	}
	a.Send(2, []cluster.Envelope{raftEnv(6)})
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.groups()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if gs := rec.groups(); len(gs) != 2 || gs[0] != 5 || gs[1] != 6 {
		t.Fatalf("the host got groups %v, want [5 6] (and no call)", gs)
	}
	// A method without a handler is answered with status 0.
	if st, body, err := a.Call(ctx, 2, 9, []byte("x")); err != nil || st != 0 || len(body) != 0 {
		t.Fatalf("unhandled method: status %d body %q err %v", st, body, err)
	}
}

func TestCallToUnreachableNodeFailsAtOnce(t *testing.T) {
	n, a, _, _ := pair(t)
	n.Cut(1, 2)
	if _, _, err := a.Call(context.Background(), 2, 1, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call over a cut link: %v, want ErrUnreachable", err)
	}
}

func TestCallWithoutAnswerEndsWithItsContext(t *testing.T) {
	n, a, b, _ := pair(t)
	b.Handle(1, func(cluster.NodeID, []byte, func(Status, []byte)) {}) // never answers
	n.SetDrop(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := a.Call(ctx, 2, 1, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered call: %v", err)
	}
	a.mu.Lock()
	left := len(a.pending)
	a.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d calls left pending", left)
	}
}

func TestCallsReachTheHandlerInOrderAndTimeOut(t *testing.T) {
	_, a, b, _ := pair(t)
	var mu sync.Mutex
	var got []byte
	b.Handle(2, func(_ cluster.NodeID, req []byte, reply func(Status, []byte)) {
		mu.Lock()
		got = append(got, req[0])
		mu.Unlock()
		if req[0] != 99 {
			reply(1, nil)
		}
	})
	var calls []*Pending
	for i := range 50 {
		p, err := a.Go(2, 2, []byte{byte(i)}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, p)
	}
	for i, p := range calls {
		if st, _, err := p.Result(); err != nil || st != 1 {
			t.Fatalf("call %d: status %d err %v", i, st, err)
		}
	}
	mu.Lock()
	for i, c := range got {
		if int(c) != i {
			t.Fatalf("handled in the order %v", got)
		}
	}
	mu.Unlock()
	p, err := a.Go(2, 2, []byte{99}, 30*time.Millisecond) // never answered
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Result(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("unanswered call: %v, want ErrTimeout", err)
	}
}

func TestCallsToAPeerGoneUnreachableFailAtOnce(t *testing.T) {
	n, a, b, _ := pair(t)
	b.Handle(1, func(cluster.NodeID, []byte, func(Status, []byte)) {}) // never answers
	p, err := a.Go(2, 1, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n.Cut(1, 2)
	select {
	case <-p.Done():
		if _, _, err := p.Result(); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("call to a peer cut off: %v, want ErrUnreachable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call to a peer cut off was still waiting after 10 s")
	}
}
