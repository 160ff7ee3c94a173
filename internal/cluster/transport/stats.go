package transport

import "sync/atomic"

// Reason says why a handshake was refused. The set is fixed so that
// metrics have bounded labels.
type Reason int

// Refusal reasons.
const (
	ReasonProtocol    Reason = iota // not the cluster protocol, another version, malformed
	ReasonTLS                       // the TLS handshake failed (e.g. a certificate from another CA)
	ReasonCertificate               // a client certificate not verified by the CA or naming another node
	ReasonClusterID                 // another cluster id
	ReasonProof                     // a missing or wrong secret proof
	ReasonUnknownNode               // a node id not among the peers
	ReasonSameNode                  // our own node id
	ReasonDirection                 // a node with a higher id dialled (only the lower id dials)
	ReasonUnexpected                // the dialled address answered with another node id
	ReasonBlocked                   // refused by fault injection (Block)
	ReasonByPeer                    // the peer refused us
	numReasons
)

var reasonNames = [numReasons]string{
	"protocol", "tls", "certificate", "cluster-id", "proof", "unknown-node",
	"same-node", "direction", "unexpected-node", "blocked", "refused-by-peer",
}

func (r Reason) String() string {
	if r < 0 || r >= numReasons {
		return "unknown"
	}
	return reasonNames[r]
}

// Stats are a transport's counters since New, for metrics.
type Stats struct {
	FramesSent, FramesReceived     uint64
	MessagesSent, MessagesReceived uint64 // envelopes
	// HeartbeatsCoalesced counts heartbeats and heartbeat responses sent
	// as compact entries rather than full messages.
	HeartbeatsCoalesced      uint64
	BytesSent, BytesReceived uint64 // frame bytes, length prefixes included
	// Drops of outbound messages, by cause: the peer's queue was full
	// (it does not read fast enough), the peer was not connected, the
	// peer is blocked (fault injection), the message exceeds the frame
	// size.
	DroppedQueueFull, DroppedUnreachable, DroppedBlocked, DroppedOversize uint64
	// DroppedInvalid counts messages that may not cross the network
	// (Responses set, more log entries than a frame may hold): a bug
	// of the sender, logged.
	DroppedInvalid uint64
	// DroppedInbound counts received messages dropped because their
	// sender is blocked.
	DroppedInbound uint64
	// Handshakes counts completed handshakes (connections up).
	Handshakes uint64
	// Peers is how many other nodes the transport knows now (Peers).
	Peers int
	// Refusals counts refused handshakes by reason (Reason.String()):
	// ReasonByPeer when the other side refused, the rest when this
	// side did.
	Refusals map[string]uint64
}

type counters struct {
	framesSent, framesReceived     atomic.Uint64
	messagesSent, messagesReceived atomic.Uint64
	heartbeatsCoalesced            atomic.Uint64
	bytesSent, bytesReceived       atomic.Uint64
	dropQueueFull, dropUnreachable atomic.Uint64
	dropBlocked, dropOversize      atomic.Uint64
	dropInvalid                    atomic.Uint64
	dropInbound                    atomic.Uint64
	handshakes                     atomic.Uint64
	refusals                       [numReasons]atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	s := Stats{
		FramesSent:          c.framesSent.Load(),
		FramesReceived:      c.framesReceived.Load(),
		MessagesSent:        c.messagesSent.Load(),
		MessagesReceived:    c.messagesReceived.Load(),
		HeartbeatsCoalesced: c.heartbeatsCoalesced.Load(),
		BytesSent:           c.bytesSent.Load(),
		BytesReceived:       c.bytesReceived.Load(),
		DroppedQueueFull:    c.dropQueueFull.Load(),
		DroppedUnreachable:  c.dropUnreachable.Load(),
		DroppedBlocked:      c.dropBlocked.Load(),
		DroppedOversize:     c.dropOversize.Load(),
		DroppedInvalid:      c.dropInvalid.Load(),
		DroppedInbound:      c.dropInbound.Load(),
		Handshakes:          c.handshakes.Load(),
		Refusals:            make(map[string]uint64),
	}
	t.mu.Lock()
	s.Peers = len(t.peers)
	t.mu.Unlock()
	for r := Reason(0); r < numReasons; r++ {
		if n := c.refusals[r].Load(); n > 0 {
			s.Refusals[r.String()] = n
		}
	}
	return s
}
