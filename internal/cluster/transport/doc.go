// Package transport carries Raft messages between the nodes of a Sluice
// cluster: it is the cluster.Transport of every node. All Raft groups
// share one connection per pair of nodes, messages queued for a peer go
// out together (one Ready round of many groups becomes one frame), and
// the heartbeats of many groups travel as one compact run.
//
// # Using it
//
//	t, err := transport.New(cfg, transport.Options{Logger: log})
//	t.SetHandler(func(from cluster.NodeID, envs []cluster.Envelope) { ... })
//	err = t.Start()              // listen on cfg.Addr, dial the peers with higher ids
//	t.Send(to, envs)             // encoded and queued now; never blocks
//	t.Reachable(to)              // a handshake completed and the connection is up
//	t.Alive(to)                  // reachable, and heard from within 3 keepalives
//	t.SetPeerAddr(id, addr)      // a node joined or moved
//	t.SetAcceptUnknown(true)     // while joining: admit authenticated strangers
//	t.Block(id, true)            // fault injection: partition from id
//	s := t.Stats()               // counters for metrics
//	t.Close()
//
// The handler runs on the reading goroutine of the sender's connection,
// so a slow handler slows that peer only (its writes time out after
// Options.WriteTimeout and the connection is redialled). It owns the
// envelopes it gets.
//
// # Connections
//
// Of two nodes, the one with the lower id dials and the other accepts;
// a connection dialled by the higher id is refused. There is never more
// than one connection per pair: a new connection from a peer (it
// restarted, or it saw the old one fail first) replaces the old one. The
// dialer redials a lost connection with backoff (Options.MinBackoff
// doubling to MaxBackoff). Messages sent while a peer is not connected
// are dropped and counted: Raft resends, and the host learns of the
// outage from Reachable. An idle connection carries an empty frame every
// Options.KeepAlive, and one on which nothing arrives for IdleTimeout is
// closed, so a peer that vanished without closing is noticed.
//
// # Handshake
//
// When cluster.Config.ServerTLS and ClientTLS are set, the connection is
// TLS first (the dialer verifies the acceptor's certificate against its
// RootCAs and the host of the peer's address). The certificate rule:
// a certificate a peer presents must verify against our CA (so a server
// configuration with tls.RequestClientCert, which does not verify, still
// gets a checked certificate or a refusal), and a certificate whose
// subject common name is "sluice-node-<id>" is valid for node <id> only.
// Mutual TLS is had with ClientAuth tls.RequireAndVerifyClientCert;
// per-node certificate names bind a certificate to its node; a shared
// name (any other CN) admits any node holding a certificate of the CA.
// Without client certificates only the secret authenticates a node: a
// cluster should have a secret, mutual TLS, or both.
//
// Then four records, each a 2-byte big-endian length (of type and body,
// at most 1025), a type byte and a body:
//
//	dialer → acceptor   hello:  "SLCN" version(1) node-id(uvarint) len(1) cluster-id nonce(32)
//	acceptor → dialer   hello   (the acceptor's), or refuse
//	dialer → acceptor   proof:  HMAC-SHA256 or empty
//	acceptor → dialer   ok:     the acceptor's HMAC-SHA256 or empty, or refuse
//
// A refuse record's body is the reason (see Reason), sent so that the
// refused side can log it. The acceptor refuses a hello with another
// magic or version, another cluster id, our own node id, a node id not
// among the peers (unless SetAcceptUnknown), or a node id above ours;
// then a wrong proof. The
// dialer refuses an acceptor with another cluster id, another node id
// than the one it dialled, or a wrong proof.
//
// With cluster.Config.Secret set, each side proves it holds the secret
// without sending it: the proof is HMAC-SHA256 keyed with the secret
// over a label, the role ('D' or 'A'), the cluster id, both node ids and
// both nonces. Fresh nonces from both sides make a recorded proof
// useless, the role keeps a dialer's proof from being reflected as the
// acceptor's, and proofs are compared in constant time. Without a secret
// the proofs are empty, and a side with a secret refuses an empty one.
// Refusals are counted by reason (Stats.Refusals) and logged with the
// reason, each reason at Warn at most every 30 seconds. At most
// Options.MaxHandshakes accepted connections may be in their handshake
// at once, each for at most HandshakeTimeout.
//
// # Frames
//
// After the handshake both directions carry frames: a 4-byte big-endian
// length, then that many bytes of body, at most Options.MaxFrameSize
// (64 MiB by default: metadata snapshots travel as Raft messages). A
// receiver checks the length against its limit before reading and grows
// its buffer with the bytes that arrive. A length of 0 is a keepalive.
// The body is a sequence of items:
//
//	0x01 group(uvarint) length(uvarint) raftpb.Message(protobuf, length bytes)
//	0x02 count(uvarint) count × entry
//
// where a compact heartbeat entry is
//
//	key(uvarint) = group<<3 | commit?<<2 | term?<<1 | resp
//	[term(uvarint)] [commit(uvarint)]
//
// An entry stands for a MsgHeartbeat (resp 0) or MsgHeartbeatResp
// (resp 1) of the group whose From is the sending node and To the
// receiving node, with Term and Commit present as the flags say and no
// other field: it decodes to a message equal to the one sent (field
// presence included). Any other message, and a heartbeat with more
// (a ReadIndex Context, say), travels in full as item 0x01. Items keep
// the order in which Send was called; consecutive compact entries form
// one run. A heartbeat costs some 6 bytes instead of a protobuf message
// and its framing.
//
// Decoding multiplies memory (a 1-byte heartbeat entry becomes a struct
// of some 250 bytes, a 2-byte empty log entry one of some 100), so
// besides its size a frame holds at most 65,536 envelopes and 1,048,576
// log entries (counted before decoding); the encoder splits to stay
// within them. Messages with Responses are local to a node (raft's
// storage thread) and never cross the network.
//
// # Memory
//
// Send encodes at once into the peer's queue, bounded by
// Options.MaxQueueMessages and MaxQueueBytes; past either it drops (and
// counts) instead of growing or blocking. The writer takes the whole
// queue when it wakes, so a peer costs at most about three times
// MaxQueueBytes (the queue filling, the batch being framed, the frames
// being written). Each write has a deadline (WriteTimeout).
//
// # Fault injection
//
// Block(id, true) closes the connection to id, stops redialling it,
// refuses its connections (ReasonBlocked, logged at Debug) and drops
// what is sent to it or arrives from it: a partition between this node
// and id, seen the same way by both. It costs one atomic load per frame
// received when unused.
//
// # Locking
//
// Transport.mu (peers, listener, open connections) is taken before
// peer.mu (address, connection, queue); neither is held across network
// I/O or a handler call.
package transport
