package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// Handshake constants. The magic opens every connection so that a
// stray client (an AMQP or Kafka client pointed at the cluster port) is
// recognised at once.
const (
	magic        = "SLCN"
	version      = 1
	nonceSize    = 32
	proofSize    = sha256.Size
	maxRecord    = 1024 // a handshake record's largest body
	maxClusterID = 255
	maxReason    = 200
)

// Handshake record types.
const (
	recHello  = 1 // magic, version, node id, cluster id, nonce
	recProof  = 2 // dialer's proof (empty without a secret)
	recOK     = 3 // acceptor's proof (empty without a secret): accepted
	recRefuse = 4 // a reason: refused, the connection closes
)

// hello is the first record each side sends.
type hello struct {
	Version   byte
	NodeID    cluster.NodeID
	ClusterID string
	Nonce     [nonceSize]byte
}

func newHello(node cluster.NodeID, clusterID string) (hello, error) {
	h := hello{Version: version, NodeID: node, ClusterID: clusterID}
	_, err := rand.Read(h.Nonce[:])
	return h, err
}

func (h *hello) appendTo(b []byte) []byte {
	b = append(b, magic...)
	b = append(b, h.Version)
	b = binary.AppendUvarint(b, h.NodeID)
	b = append(b, byte(len(h.ClusterID)))
	b = append(b, h.ClusterID...)
	return append(b, h.Nonce[:]...)
}

// errProtocol marks input that is not the cluster protocol (bad magic,
// another version, a malformed record).
var errProtocol = errors.New("not the sluice cluster protocol")

// decodeHello decodes a hello record's body.
func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) < len(magic)+1 || string(b[:len(magic)]) != magic {
		return h, fmt.Errorf("%w: bad magic", errProtocol)
	}
	h.Version = b[len(magic)]
	if h.Version != version {
		return h, fmt.Errorf("%w: version %d, want %d", errProtocol, h.Version, version)
	}
	r := reader{b: b[len(magic)+1:]}
	h.NodeID = r.uvarint()
	id := r.bytes(uint64(r.byte()))
	nonce := r.bytes(nonceSize)
	if r.err != nil || len(r.b) != 0 {
		return h, fmt.Errorf("%w: malformed hello", errProtocol)
	}
	h.ClusterID = string(id)
	copy(h.Nonce[:], nonce)
	return h, nil
}

// writeRecord writes one handshake record: a 2-byte big-endian length of
// what follows, the type, the body.
func writeRecord(w io.Writer, typ byte, body []byte) error {
	if len(body) > maxRecord {
		return fmt.Errorf("handshake record of %d bytes", len(body))
	}
	b := make([]byte, 0, 3+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(body)))
	b = append(b, typ)
	b = append(b, body...)
	_, err := w.Write(b)
	return err
}

// readRecord reads one handshake record, refusing one longer than
// maxRecord before reading its body.
func readRecord(r io.Reader) (typ byte, body []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > 1+maxRecord {
		return 0, nil, fmt.Errorf("%w: handshake record of %d bytes", errProtocol, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// proof is what a side sends to show it holds the cluster secret: an
// HMAC-SHA256 keyed with the secret over a label, the side's role, the
// cluster id, both node ids and both fresh nonces. The nonces make every
// proof new (a recorded one is useless), the role makes the dialer's
// proof unusable as the acceptor's (no reflection), and the secret never
// crosses the wire.
func proof(secret []byte, role byte, clusterID string, dialer, acceptor *hello) []byte {
	m := hmac.New(sha256.New, secret)
	b := make([]byte, 0, 64+len(clusterID)+2*nonceSize)
	b = append(b, "sluice cluster proof v1"...)
	b = append(b, role, byte(len(clusterID)))
	b = append(b, clusterID...)
	b = binary.BigEndian.AppendUint64(b, dialer.NodeID)
	b = binary.BigEndian.AppendUint64(b, acceptor.NodeID)
	b = append(b, dialer.Nonce[:]...)
	b = append(b, acceptor.Nonce[:]...)
	m.Write(b)
	return m.Sum(nil)
}

// Proof roles.
const (
	roleDialer   = 'D'
	roleAcceptor = 'A'
)

// checkProof compares a received proof with the expected one in
// constant time. Without a secret the proof must be empty; a side with a
// secret never accepts an empty proof.
func checkProof(secret, got []byte, role byte, clusterID string, dialer, acceptor *hello) bool {
	if len(secret) == 0 {
		return len(got) == 0
	}
	return hmac.Equal(got, proof(secret, role, clusterID, dialer, acceptor))
}
