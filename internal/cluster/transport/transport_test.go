package transport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// waitFor polls cond until it holds, failing the test after 15s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inbox records what a node's handler receives.
type inbox struct {
	mu   sync.Mutex
	got  map[cluster.NodeID][]cluster.Envelope
	hold chan struct{} // when set, the handler blocks until it closes
	// fwd, when set, takes the batches instead (a test's Raft loop).
	fwd atomic.Pointer[func(cluster.NodeID, []cluster.Envelope)]
}

func newInbox() *inbox { return &inbox{got: make(map[cluster.NodeID][]cluster.Envelope)} }

func (in *inbox) handle(from cluster.NodeID, envs []cluster.Envelope) {
	if f := in.fwd.Load(); f != nil {
		(*f)(from, envs)
		return
	}
	if in.hold != nil {
		<-in.hold
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range envs {
		in.got[from] = append(in.got[from], cluster.Envelope{Group: envs[i].Group})
		proto.Merge(&in.got[from][len(in.got[from])-1].Msg, &envs[i].Msg)
	}
}

func (in *inbox) count(from cluster.NodeID) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.got[from])
}

// node is one transport under test.
type node struct {
	*Transport
	in *inbox
}

// setup describes a node of a test cluster; mutate changes its config
// and options before New.
type setup func(id cluster.NodeID, cfg *cluster.Config, o *Options)

// startNodes starts n transports on loopback ports, tells each the
// others' ports and closes them at the end of the test.
func startNodes(t *testing.T, n int, mutate setup) []*node {
	t.Helper()
	peers := make(map[cluster.NodeID]string)
	for id := cluster.NodeID(1); id <= cluster.NodeID(n); id++ {
		peers[id] = "127.0.0.1:0"
	}
	nodes := make([]*node, n+1) // by node id
	for id := cluster.NodeID(1); id <= cluster.NodeID(n); id++ {
		nodes[id] = startNode(t, id, peers, "127.0.0.1:0", mutate)
	}
	for _, a := range nodes[1:] {
		for _, b := range nodes[1:] {
			a.SetPeerAddr(b.cfg.NodeID, b.Addr())
		}
	}
	return nodes
}

func startNode(t *testing.T, id cluster.NodeID, peers map[cluster.NodeID]string, addr string, mutate setup) *node {
	t.Helper()
	cfg := cluster.Config{NodeID: id, Addr: addr, Peers: peers, ClusterID: "test-cluster"}
	opts := Options{
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(id, &cfg, &opts)
	}
	tr, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox()
	tr.SetHandler(in.handle)
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return &node{tr, in}
}

// testWriter sends logs to the test's log, shown when it fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

func waitMesh(t *testing.T, nodes []*node) {
	t.Helper()
	for _, a := range nodes[1:] {
		for _, b := range nodes[1:] {
			if a != b {
				waitFor(t, fmt.Sprintf("node %d reaches node %d", a.cfg.NodeID, b.cfg.NodeID), func() bool {
					return a.Reachable(b.cfg.NodeID)
				})
			}
		}
	}
}

// msgs makes count envelopes from one node to another: appends carrying
// their sequence number as Index, every third one a heartbeat (whose
// sequence number is its Commit), over groups 1..groups.
func msgs(from, to cluster.NodeID, start, count, groups int) []cluster.Envelope {
	envs := make([]cluster.Envelope, count)
	for i := range envs {
		seq := uint64(start + i)
		m := &envs[i].Msg
		envs[i].Group = cluster.GroupID(seq%uint64(groups) + 1)
		m.From, m.To, m.Term = new(from), new(to), new(uint64(2))
		if seq%3 == 0 {
			m.Type, m.Commit = raftpb.MsgHeartbeat.Enum(), new(seq)
		} else {
			m.Type, m.Index = raftpb.MsgApp.Enum(), new(seq)
			m.Entries = []*raftpb.Entry{{Index: new(seq + 1), Data: fmt.Appendf(nil, "entry %d", seq)}}
		}
	}
	return envs
}

func seqOf(m *raftpb.Message) uint64 {
	if m.GetType() == raftpb.MsgHeartbeat {
		return m.GetCommit()
	}
	return m.GetIndex()
}

func TestThreeNodesDeliverInOrder(t *testing.T) {
	nodes := startNodes(t, 3, nil)
	waitMesh(t, nodes)
	const total, chunk = 3000, 7
	for _, a := range nodes[1:] {
		for _, b := range nodes[1:] {
			if a == b {
				continue
			}
			for i := 0; i < total; i += chunk {
				envs := msgs(a.cfg.NodeID, b.cfg.NodeID, i, min(chunk, total-i), 50)
				a.Send(b.cfg.NodeID, envs)
			}
		}
	}
	for _, b := range nodes[1:] {
		for _, a := range nodes[1:] {
			if a == b {
				continue
			}
			from := a.cfg.NodeID
			waitFor(t, fmt.Sprintf("node %d receives from %d", b.cfg.NodeID, from), func() bool { return b.in.count(from) >= total })
			b.in.mu.Lock()
			got := b.in.got[from]
			for i := range got {
				m := &got[i].Msg
				if seqOf(m) != uint64(i) || m.GetFrom() != from || m.GetTo() != b.cfg.NodeID || got[i].Group != cluster.GroupID(i%50+1) {
					b.in.mu.Unlock()
					t.Fatalf("node %d from %d: message %d is %v of group %d", b.cfg.NodeID, from, i, m, got[i].Group)
				}
			}
			b.in.mu.Unlock()
		}
	}
	s := nodes[1].Stats()
	if s.MessagesSent != 2*total || s.DroppedQueueFull+s.DroppedUnreachable != 0 {
		t.Fatalf("node 1 stats %+v, want %d messages sent, none dropped", s, 2*total)
	}
	// Batching: everything queued when the writer wakes goes in one
	// frame, so there are fewer frames than Send calls, let alone
	// messages.
	if calls := uint64(2 * ((total + chunk - 1) / chunk)); s.FramesSent > calls {
		t.Fatalf("%d frames for %d Send calls of %d messages", s.FramesSent, calls, s.MessagesSent)
	}
	if s.HeartbeatsCoalesced != 2*total/3 {
		t.Fatalf("%d heartbeats coalesced, want %d", s.HeartbeatsCoalesced, 2*total/3)
	}
	t.Logf("node 1: %d messages in %d frames, %d bytes", s.MessagesSent, s.FramesSent, s.BytesSent)
}

// TestCoalescedHeartbeatsOverTheWire sends one Ready round's heartbeats
// for a thousand groups and checks they arrive as the same messages,
// having travelled as compact entries.
func TestCoalescedHeartbeatsOverTheWire(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	waitMesh(t, nodes)
	envs := make([]cluster.Envelope, 1000)
	for i := range envs {
		m := &envs[i].Msg
		envs[i].Group = cluster.GroupID(i + 1)
		m.From, m.To, m.Term, m.Commit = new(uint64(1)), new(uint64(2)), new(uint64(i%4+1)), new(uint64(i*7))
		m.Type = raftpb.MsgHeartbeat.Enum()
		if i%2 == 1 {
			m.Type, m.Commit = raftpb.MsgHeartbeatResp.Enum(), nil
		}
	}
	envs[500].Msg.Context = []byte("read index") // travels in full
	before := nodes[1].Stats()
	nodes[1].Send(2, envs)
	waitFor(t, "the heartbeats", func() bool { return nodes[2].in.count(1) >= len(envs) })
	nodes[2].in.mu.Lock()
	sameEnvelopes(t, nodes[2].in.got[1], envs)
	nodes[2].in.mu.Unlock()
	after := nodes[1].Stats()
	if n := after.HeartbeatsCoalesced - before.HeartbeatsCoalesced; n != 999 {
		t.Fatalf("%d heartbeats coalesced, want 999", n)
	}
	if perHB := float64(after.BytesSent-before.BytesSent) / 1000; perHB > 10 {
		t.Fatalf("%.1f bytes per heartbeat on the wire", perHB)
	}
}

func TestReconnectAfterPeerRestarts(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	waitMesh(t, nodes)
	for round := 0; round < 2; round++ {
		// Restart node 2 (the acceptor) in round 0, node 1 (the dialer)
		// in round 1, each on the address it had.
		victim := nodes[2-round]
		other := nodes[1+round]
		addr := victim.Addr()
		victim.Close()
		waitFor(t, "the peer is seen gone", func() bool { return !other.Reachable(victim.cfg.NodeID) })
		peers := map[cluster.NodeID]string{1: nodes[1].Addr(), 2: nodes[2].Addr()}
		peers[victim.cfg.NodeID] = addr
		if round == 0 {
			peers[1] = other.Addr()
		}
		restarted := startNode(t, victim.cfg.NodeID, peers, addr, nil)
		nodes[victim.cfg.NodeID] = restarted
		waitMesh(t, nodes)
		restarted.Send(other.cfg.NodeID, msgs(restarted.cfg.NodeID, other.cfg.NodeID, 0, 10, 3))
		other.Send(restarted.cfg.NodeID, msgs(other.cfg.NodeID, restarted.cfg.NodeID, 0, 10, 3))
		waitFor(t, "traffic after the restart", func() bool {
			return restarted.in.count(other.cfg.NodeID) >= 10
		})
		waitFor(t, "traffic to the restarted node", func() bool {
			return other.in.count(restarted.cfg.NodeID) >= 10*(round+1)
		})
	}
}

// TestRefusals: a node with the wrong secret, cluster id or node id never
// connects, and the refusing side counts the reason.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		mutate setup
		reason Reason
	}{
		{"wrong secret", func(id cluster.NodeID, c *cluster.Config, _ *Options) {
			c.Secret = []byte(fmt.Sprintf("secret-%d", id))
		}, ReasonProof},
		{"secret on one side only", func(id cluster.NodeID, c *cluster.Config, _ *Options) {
			if id == 1 {
				c.Secret = []byte("secret")
			}
		}, ReasonProof},
		{"wrong cluster id", func(id cluster.NodeID, c *cluster.Config, _ *Options) {
			if id == 1 {
				c.ClusterID = "another-cluster"
			}
		}, ReasonClusterID},
		{"unknown node", func(id cluster.NodeID, c *cluster.Config, _ *Options) {
			if id == 2 { // node 2 knows nodes 2 and 3 only
				c.Peers = map[cluster.NodeID]string{2: "127.0.0.1:0", 3: "127.0.0.1:0"}
			}
		}, ReasonUnknownNode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodes := make([]*node, 3)
			peers := map[cluster.NodeID]string{1: "127.0.0.1:0", 2: "127.0.0.1:0"}
			nodes[1] = startNode(t, 1, peers, "127.0.0.1:0", c.mutate)
			nodes[2] = startNode(t, 2, peers, "127.0.0.1:0", c.mutate)
			if c.reason != ReasonUnknownNode {
				nodes[2].SetPeerAddr(1, nodes[1].Addr())
			}
			nodes[1].SetPeerAddr(2, nodes[2].Addr())
			waitFor(t, "refusals", func() bool {
				return nodes[2].Stats().Refusals[c.reason.String()] >= 2 &&
					nodes[1].Stats().Refusals[ReasonByPeer.String()] >= 2
			})
			if nodes[1].Reachable(2) || nodes[2].Reachable(1) {
				t.Fatal("a refused node is reachable")
			}
			if n := nodes[1].Stats().Handshakes + nodes[2].Stats().Handshakes; n != 0 {
				t.Fatalf("%d handshakes completed", n)
			}
		})
	}
}

// TestRefusesSameNodeAndStrangers: a node that claims our id, a node
// with a higher id that dials, and a client that does not speak the
// protocol are refused.
func TestRefusesSameNodeAndStrangers(t *testing.T) {
	target := startNode(t, 2, map[cluster.NodeID]string{1: "127.0.0.1:0", 2: "127.0.0.1:0", 3: "127.0.0.1:0"}, "127.0.0.1:0", nil)
	// An impostor with id 2 that believes node 3 lives at target's
	// address.
	startNode(t, 2, map[cluster.NodeID]string{2: "127.0.0.1:0", 3: target.Addr()}, "127.0.0.1:0", nil)
	waitFor(t, "same-node refusal", func() bool { return target.Stats().Refusals[ReasonSameNode.String()] >= 1 })

	// Node 3 dialling node 2 breaks the rule that the lower id dials.
	nc, err := net.Dial("tcp", target.Addr())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHello(3, "test-cluster")
	writeRecord(nc, recHello, h.appendTo(nil))
	typ, body, err := readRecord(nc)
	if err != nil || typ != recRefuse || string(body) != ReasonDirection.String() {
		t.Fatalf("got record %d %q %v, want a refusal", typ, body, err)
	}
	nc.Close()

	nc, err = net.Dial("tcp", target.Addr())
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	nc.Close()
	waitFor(t, "protocol refusal", func() bool { return target.Stats().Refusals[ReasonProtocol.String()] >= 1 })
}

// devTLS makes dev certificates for TLS between nodes: each node serves
// with the server certificate and dials with a client certificate for
// clientCN, both from one CA; caDir, when set, is another CA's directory
// whose certificates the node uses instead (a stranger).
func devTLS(t *testing.T, dir, clientCN, caDir string) (server, client *tls.Config) {
	t.Helper()
	if err := tlsconf.DevCerts(dir, tlsconf.DevOptions{ClientCN: clientCN, CADir: caDir}); err != nil {
		t.Fatal(err)
	}
	load := func(cert, key string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, cert), filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, tlsconf.DevCACert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	server = &tls.Config{
		Certificates: []tls.Certificate{load(tlsconf.DevServerCert, tlsconf.DevServerKey)},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{load(tlsconf.DevClientCert, tlsconf.DevClientKey)},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}
	return server, client
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	srv, cli := devTLS(t, caDir, "cluster-member", "")
	t.Run("same CA", func(t *testing.T) {
		nodes := startNodes(t, 3, func(id cluster.NodeID, c *cluster.Config, _ *Options) {
			c.ServerTLS, c.ClientTLS, c.Secret = srv, cli, []byte("and a secret")
		})
		waitMesh(t, nodes)
		nodes[1].Send(3, msgs(1, 3, 0, 100, 5))
		nodes[3].Send(1, msgs(3, 1, 0, 100, 5))
		waitFor(t, "traffic over TLS", func() bool { return nodes[3].in.count(1) == 100 && nodes[1].in.count(3) == 100 })
	})
	t.Run("certificate naming its node", func(t *testing.T) {
		// Node 1 presents a certificate for "sluice-node-1": accepted.
		// Node 1 presenting one for "sluice-node-3": refused.
		_, own := devTLS(t, filepath.Join(dir, "n1"), "sluice-node-1", caDir)
		_, wrong := devTLS(t, filepath.Join(dir, "n3"), "sluice-node-3", caDir)
		for _, c := range []struct {
			cert *tls.Config
			ok   bool
		}{{own, true}, {wrong, false}} {
			nodes := startNodes(t, 2, func(id cluster.NodeID, cfg *cluster.Config, _ *Options) {
				cfg.ServerTLS, cfg.ClientTLS = srv, cli
				if id == 1 {
					cfg.ClientTLS = c.cert
				}
			})
			if c.ok {
				waitMesh(t, nodes)
				continue
			}
			waitFor(t, "certificate refusal", func() bool {
				return nodes[2].Stats().Refusals[ReasonCertificate.String()] >= 1
			})
			if nodes[1].Reachable(2) {
				t.Fatal("node 1 with node 3's certificate is reachable")
			}
		}
	})
	t.Run("another CA", func(t *testing.T) {
		strangerSrv, strangerCli := devTLS(t, filepath.Join(dir, "stranger"), "sluice-node-1", "")
		nodes := startNodes(t, 2, func(id cluster.NodeID, c *cluster.Config, _ *Options) {
			c.ServerTLS, c.ClientTLS = srv, cli
			if id == 1 {
				c.ServerTLS, c.ClientTLS = strangerSrv, strangerCli
			}
		})
		waitFor(t, "TLS refusals on both sides", func() bool {
			return nodes[1].Stats().Refusals[ReasonTLS.String()] >= 1 || nodes[2].Stats().Refusals[ReasonTLS.String()] >= 1
		})
		if nodes[1].Reachable(2) || nodes[2].Reachable(1) {
			t.Fatal("a node with another CA's certificate is reachable")
		}
	})
}

// TestPeerThatStopsReading: a peer whose handler is stuck stops reading
// its socket; the sender keeps sending without blocking, its queue stays
// within bounds, and the excess is dropped and counted.
func TestPeerThatStopsReading(t *testing.T) {
	const maxBytes = 1 << 20
	hold := make(chan struct{})
	nodes := startNodes(t, 2, func(id cluster.NodeID, _ *cluster.Config, o *Options) {
		o.MaxQueueBytes, o.MaxQueueMessages = maxBytes, 1000
		o.WriteTimeout = time.Minute // the connection stays up: drops, not a reset
	})
	nodes[2].in.hold = hold
	defer close(hold) // before the transports close (cleanups run later)
	waitMesh(t, nodes)
	big := bytes.Repeat([]byte("x"), 64<<10)
	p := nodes[1].peer(2)
	sent := make(chan struct{})
	timer := time.AfterFunc(15*time.Second, func() {
		select {
		case <-sent:
		default:
			panic("Send blocked on a peer that does not read")
		}
	})
	defer timer.Stop()
	defer close(sent)
	for i := 0; i < 2000 && nodes[1].Stats().DroppedQueueFull == 0; i++ {
		var env [1]cluster.Envelope
		m := &env[0].Msg
		env[0].Group = 1
		m.Type, m.From, m.To, m.Index = raftpb.MsgApp.Enum(), new(uint64(1)), new(uint64(2)), new(uint64(i))
		m.Entries = []*raftpb.Entry{{Data: big}}
		nodes[1].Send(2, env[:])
		p.mu.Lock()
		queued := len(p.q.buf)
		p.mu.Unlock()
		if queued > maxBytes {
			t.Fatalf("%d bytes queued, bound %d", queued, maxBytes)
		}
	}
	if nodes[1].Stats().DroppedQueueFull == 0 {
		t.Fatal("2000 messages of 64 KiB to a peer that does not read and nothing dropped")
	}
	if !nodes[1].Reachable(2) {
		t.Fatal("the connection should stay up while the write deadline has not passed")
	}
}

func TestBlockPartitions(t *testing.T) {
	nodes := startNodes(t, 3, nil)
	waitMesh(t, nodes)
	nodes[3].Block(1, true) // the acceptor blocks: both directions cut
	waitFor(t, "1 and 3 apart", func() bool { return !nodes[1].Reachable(3) && !nodes[3].Reachable(1) })
	nodes[1].Send(3, msgs(1, 3, 0, 5, 1))
	nodes[3].Send(1, msgs(3, 1, 0, 5, 1))
	// The rest of the cluster still talks.
	nodes[1].Send(2, msgs(1, 2, 0, 5, 1))
	nodes[3].Send(2, msgs(3, 2, 0, 5, 1))
	waitFor(t, "2 hears 1 and 3", func() bool { return nodes[2].in.count(1) == 5 && nodes[2].in.count(3) == 5 })
	if nodes[3].Stats().DroppedBlocked != 5 || nodes[1].Stats().DroppedUnreachable != 5 {
		t.Fatalf("drops: node 3 %+v, node 1 %+v", nodes[3].Stats(), nodes[1].Stats())
	}
	if nodes[1].in.count(3)+nodes[3].in.count(1) != 0 {
		t.Fatal("a message crossed the partition")
	}
	nodes[3].Block(1, false)
	waitMesh(t, nodes)
	nodes[1].Send(3, msgs(1, 3, 0, 5, 1))
	waitFor(t, "healed", func() bool { return nodes[3].in.count(1) == 5 })

	nodes[1].Block(2, true) // the dialer blocks
	waitFor(t, "1 and 2 apart", func() bool { return !nodes[1].Reachable(2) && !nodes[2].Reachable(1) })
	nodes[1].Block(2, false)
	waitMesh(t, nodes)
}

// TestBoundedHandshakes: connections that never finish the handshake hold
// at most MaxHandshakes slots; past that new connections close at once,
// and a real peer gets in when a slot frees.
func TestBoundedHandshakes(t *testing.T) {
	nodes := startNodes(t, 2, func(_ cluster.NodeID, _ *cluster.Config, o *Options) { o.MaxHandshakes = 1 })
	waitMesh(t, nodes)
	silent, err := net.Dial("tcp", nodes[2].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "a connection closed for want of a slot", func() bool {
		c, err := net.Dial("tcp", nodes[2].Addr())
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	})
	// With the slot free again, a real peer gets through: drop the
	// connection and let node 1 redial.
	silent.Close()
	nodes[1].Block(2, true)
	nodes[1].Block(2, false)
	waitMesh(t, nodes)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestOversizeMessageDropped: a message larger than a frame may be is
// dropped and counted at Send, and the connection carries on.
func TestOversizeMessageDropped(t *testing.T) {
	nodes := startNodes(t, 2, func(_ cluster.NodeID, _ *cluster.Config, o *Options) { o.MaxFrameSize = 4096 })
	waitMesh(t, nodes)
	envs := msgs(1, 2, 0, 3, 1) // 0 heartbeat, 1 and 2 appends
	envs[1].Msg.Entries[0].Data = make([]byte, 8192)
	nodes[1].Send(2, envs)
	waitFor(t, "the two that fit", func() bool { return nodes[2].in.count(1) == 2 })
	if s := nodes[1].Stats(); s.DroppedOversize != 1 {
		t.Fatalf("stats %+v, want one oversize drop", s)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	peers := map[cluster.NodeID]string{1: "127.0.0.1:0"}
	for name, cfg := range map[string]cluster.Config{
		"disabled":        {},
		"no cluster id":   {NodeID: 1, Peers: peers},
		"half TLS":        {NodeID: 1, Peers: peers, ClusterID: "c", ServerTLS: &tls.Config{}},
		"long cluster id": {NodeID: 1, Peers: peers, ClusterID: string(make([]byte, 256))},
	} {
		if _, err := New(cfg, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPeerMoves: when a peer's address changes, the dialer drops the
// connection to the old address and connects to the new one.
func TestPeerMoves(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	waitMesh(t, nodes)
	peers := map[cluster.NodeID]string{1: nodes[1].Addr(), 2: "127.0.0.1:0"}
	moved := startNode(t, 2, peers, "127.0.0.1:0", nil)
	nodes[1].SetPeerAddr(2, moved.Addr())
	waitFor(t, "the old node 2 dropped", func() bool { return !nodes[2].Reachable(1) })
	waitFor(t, "the moved node 2 reached", func() bool { return moved.Reachable(1) && nodes[1].Reachable(2) })
	nodes[1].Send(2, msgs(1, 2, 0, 5, 1))
	waitFor(t, "traffic to the new address", func() bool { return moved.in.count(1) == 5 })
}

// TestAcceptUnknownWhileJoining: a joining node that does not know the
// node dialling it refuses it until SetAcceptUnknown, then takes the
// connection (still authenticated: a wrong secret is refused) and can
// answer over it; SetPeerAddr later gives the peer an address as usual.
func TestAcceptUnknownWhileJoining(t *testing.T) {
	secret := func(s string) setup {
		return func(_ cluster.NodeID, c *cluster.Config, _ *Options) { c.Secret = []byte(s) }
	}
	joiner := startNode(t, 4, map[cluster.NodeID]string{4: "127.0.0.1:0"}, "127.0.0.1:0", secret("s"))
	member := startNode(t, 2, map[cluster.NodeID]string{2: "127.0.0.1:0", 4: joiner.Addr()}, "127.0.0.1:0", secret("s"))
	waitFor(t, "unknown-node refusal", func() bool { return joiner.Stats().Refusals[ReasonUnknownNode.String()] >= 1 })
	if joiner.Reachable(2) || member.Reachable(4) {
		t.Fatal("connected to a node that is not among the peers")
	}

	// A stranger with the wrong secret is still refused.
	stranger := startNode(t, 1, map[cluster.NodeID]string{1: "127.0.0.1:0", 4: joiner.Addr()}, "127.0.0.1:0", secret("wrong"))
	joiner.SetAcceptUnknown(true)
	waitFor(t, "the member connected", func() bool { return joiner.Reachable(2) && member.Reachable(4) })
	waitFor(t, "the stranger refused", func() bool { return joiner.Stats().Refusals[ReasonProof.String()] >= 1 })
	if joiner.Reachable(1) || stranger.Reachable(4) {
		t.Fatal("a node with the wrong secret connected")
	}
	joiner.Send(2, msgs(4, 2, 0, 3, 1))
	waitFor(t, "the joiner's answer delivered", func() bool { return member.in.count(4) == 3 })

	joiner.SetAcceptUnknown(false)
	joiner.SetPeerAddr(2, member.Addr())
	member.Send(4, msgs(2, 4, 0, 2, 1))
	waitFor(t, "traffic on after the peer is known", func() bool { return joiner.in.count(2) == 2 })
}

// Alive tells a peer that delivers nothing (here: this node's reader for
// it is stuck in the handler) from one that keeps its connection alive,
// while Reachable, which waits for IdleTimeout, still says up.
func TestAliveNeedsRecentFrames(t *testing.T) {
	hold := make(chan struct{})
	nodes := startNodes(t, 2, func(id cluster.NodeID, _ *cluster.Config, o *Options) {
		o.KeepAlive, o.IdleTimeout = 20*time.Millisecond, time.Minute
	})
	nodes[1].in.hold = hold
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	waitMesh(t, nodes)
	waitFor(t, "node 2 alive to node 1", func() bool { return nodes[1].Alive(2) })
	nodes[2].Send(1, msgs(2, 1, 0, 1, 1))
	waitFor(t, "node 2 not alive to node 1, still reachable", func() bool {
		return !nodes[1].Alive(2) && nodes[1].Reachable(2)
	})
	close(hold)
	released = true
	waitFor(t, "node 2 alive again", func() bool { return nodes[1].Alive(2) })
	if nodes[1].Alive(3) || nodes[1].Alive(1) {
		t.Fatal("an unknown node, or this one, is alive")
	}
}
