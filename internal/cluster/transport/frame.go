package transport

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-mq/sluice/internal/cluster"
)

// Item tags inside a frame body.
const (
	tagMessage   = 0x01 // one envelope in full: group, length, protobuf
	tagHeartbeat = 0x02 // a run of compact heartbeats: count, entries
)

// Flag bits in the low bits of a compact heartbeat's key (group<<hbShift).
const (
	hbResp      = 1 << 0 // MsgHeartbeatResp rather than MsgHeartbeat
	hbHasTerm   = 1 << 1 // a term follows
	hbHasCommit = 1 << 2 // a commit index follows
	hbShift     = 3
)

// frameHeader is the size of a frame's length prefix.
const frameHeader = 4

// maxCompactGroup is the largest group id a compact heartbeat can carry;
// larger ids (never seen in practice) travel in full.
const maxCompactGroup = 1<<(64-hbShift) - 1

var (
	errMalformed = errors.New("malformed frame")
	errLocalOnly = errors.New("a message with Responses is local to a node (storage thread) and never crosses the network")
)

// Limits on one frame's content beside its size. Decoding turns a few
// bytes into a large struct (a compact heartbeat of 1 byte into an
// Envelope of some 250 bytes, an empty log entry of 2 bytes into an
// Entry of some 100), so the size limit alone would let a frame of
// 64 MiB cost gigabytes; these make the worst case tens of megabytes.
const (
	maxFrameItems   = 1 << 16 // envelopes
	maxFrameEntries = 1 << 20 // log entries over all its messages
)

// compactable reports whether m can travel as a compact heartbeat entry
// from node from to node to: a heartbeat or heartbeat response between
// exactly these nodes, with no field beyond term and commit set (field
// presence included, so that decoding gives back an equal message). A
// ReadIndex heartbeat carries a Context and so travels in full.
func compactable(group cluster.GroupID, m *raftpb.Message, from, to cluster.NodeID) bool {
	if group == 0 || group > maxCompactGroup {
		return false
	}
	if m.Type == nil || (*m.Type != raftpb.MsgHeartbeat && *m.Type != raftpb.MsgHeartbeatResp) {
		return false
	}
	if m.From == nil || *m.From != from || m.To == nil || *m.To != to {
		return false
	}
	return m.LogTerm == nil && m.Index == nil && len(m.Entries) == 0 && m.Vote == nil &&
		m.Snapshot == nil && m.Reject == nil && m.RejectHint == nil && m.Context == nil &&
		len(m.Responses) == 0 && len(m.ProtoReflect().GetUnknown()) == 0
}

// appendCompact appends m's compact heartbeat entry (m is compactable).
func appendCompact(b []byte, group cluster.GroupID, m *raftpb.Message) []byte {
	key := group << hbShift
	if *m.Type == raftpb.MsgHeartbeatResp {
		key |= hbResp
	}
	if m.Term != nil {
		key |= hbHasTerm
	}
	if m.Commit != nil {
		key |= hbHasCommit
	}
	b = binary.AppendUvarint(b, key)
	if m.Term != nil {
		b = binary.AppendUvarint(b, *m.Term)
	}
	if m.Commit != nil {
		b = binary.AppendUvarint(b, *m.Commit)
	}
	return b
}

// appendFull appends m as a full item: tag, group, length, protobuf.
func appendFull(b []byte, group cluster.GroupID, m *raftpb.Message) ([]byte, error) {
	n := proto.Size(m)
	b = append(b, tagMessage)
	b = binary.AppendUvarint(b, group)
	b = binary.AppendUvarint(b, uint64(n))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
}

// item is one envelope already encoded, as queued for a peer: the bytes
// buf[start:end] of its queue are a full item or one compact entry.
type item struct {
	end     int
	entries int // log entries in the message
	compact bool
}

// encoder builds frames from envelopes for one direction of one node
// pair. It is what the per-peer queue holds: items appended by Send,
// taken whole by the writer.
type encoder struct {
	from, to cluster.NodeID
	buf      []byte
	items    []item
	compacts int // compact entries among items
}

// add encodes one envelope. It returns the bytes added.
func (e *encoder) add(env *cluster.Envelope) (int, error) {
	before := len(e.buf)
	if compactable(env.Group, &env.Msg, e.from, e.to) {
		e.buf = appendCompact(e.buf, env.Group, &env.Msg)
		e.items = append(e.items, item{end: len(e.buf), compact: true})
		e.compacts++
		return len(e.buf) - before, nil
	}
	if len(env.Msg.Responses) > 0 {
		return 0, errLocalOnly
	}
	if len(env.Msg.Entries) > maxFrameEntries {
		return 0, fmt.Errorf("%d log entries in one message, limit %d", len(env.Msg.Entries), maxFrameEntries)
	}
	b, err := appendFull(e.buf, env.Group, &env.Msg)
	if err != nil {
		e.buf = e.buf[:before]
		return 0, err
	}
	e.buf = b
	e.items = append(e.items, item{end: len(e.buf), entries: len(env.Msg.Entries)})
	return len(e.buf) - before, nil
}

// undo removes the last item added.
func (e *encoder) undo() {
	last := e.items[len(e.items)-1]
	e.items = e.items[:len(e.items)-1]
	if last.compact {
		e.compacts--
	}
	start := 0
	if len(e.items) > 0 {
		start = e.items[len(e.items)-1].end
	}
	e.buf = e.buf[:start]
}

// reset empties the encoder keeping its memory.
func (e *encoder) reset() {
	e.buf, e.items, e.compacts = e.buf[:0], e.items[:0], 0
}

// runOverhead bounds the bytes a heartbeat run adds besides its entries:
// the tag and the count.
const runOverhead = 1 + binary.MaxVarintLen64

// frames appends to out the queued items as frames, in order, each
// within maxFrame body bytes, maxFrameItems envelopes and maxFrameEntries
// log entries; consecutive compact entries form one run. It returns out
// and the number of frames.
func (e *encoder) frames(out []byte, maxFrame int) ([]byte, int) {
	nframes := 0
	i, start := 0, 0
	for i < len(e.items) {
		hdr := len(out)
		out = append(out, 0, 0, 0, 0)
		nframes++
		body, items, entries := 0, 0, 0
		for i < len(e.items) && items < maxFrameItems {
			it := e.items[i]
			if !it.compact {
				size := it.end - start
				if body > 0 && (body+size > maxFrame || entries+it.entries > maxFrameEntries) {
					break
				}
				out = append(out, e.buf[start:it.end]...)
				body += size
				items++
				entries += it.entries
				start = it.end
				i++
				continue
			}
			// A run: count how many compact entries fit.
			j, size := i, 0
			for j < len(e.items) && e.items[j].compact && items+(j-i) < maxFrameItems {
				s := e.items[j].end - start - size
				if body+runOverhead+size+s > maxFrame && j > i {
					break
				}
				size += s
				j++
			}
			if body > 0 && body+runOverhead+size > maxFrame {
				break
			}
			out = append(out, tagHeartbeat)
			out = binary.AppendUvarint(out, uint64(j-i))
			out = append(out, e.buf[start:start+size]...)
			body += 1 + uvarintLen(uint64(j-i)) + size
			items += j - i
			start += size
			i = j
		}
		binary.BigEndian.PutUint32(out[hdr:], uint32(len(out)-hdr-frameHeader))
	}
	return out, nframes
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendFrame encodes envs from node from to node to as one frame
// (several past maxFrameItems envelopes), length prefix included,
// appended to b. It is the encoder the transport
// uses, exposed for tests and benchmarks; frames larger than the
// receiver's limit are refused there.
func AppendFrame(b []byte, from, to cluster.NodeID, envs []cluster.Envelope) ([]byte, error) {
	e := encoder{from: from, to: to}
	for i := range envs {
		if _, err := e.add(&envs[i]); err != nil {
			return b, err
		}
	}
	if len(e.items) == 0 {
		return binary.BigEndian.AppendUint32(b, 0), nil
	}
	out, _ := e.frames(b, int(^uint32(0)>>1))
	return out, nil
}

// reader is a length-checked view of a frame body with a sticky error,
// checked once at the end (or when a count must be trusted).
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errMalformed
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errMalformed
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// countItems counts the envelopes in a frame body without decoding
// them, so DecodeFrame allocates once and never more than the body can
// hold (a count from the network is never trusted beyond that).
func countItems(body []byte) (int, error) {
	r := reader{b: body}
	n, entries := 0, 0
	for len(r.b) > 0 && r.err == nil {
		switch r.byte() {
		case tagMessage:
			r.uvarint()
			k, err := countEntries(r.bytes(r.uvarint()))
			if err != nil {
				return 0, err
			}
			entries += k
			n++
		case tagHeartbeat:
			c := r.uvarint()
			if c == 0 || c > uint64(len(r.b)) { // an entry is at least one byte
				return 0, errMalformed
			}
			for k := uint64(0); k < c && r.err == nil; k++ {
				key := r.uvarint()
				if key&hbHasTerm != 0 {
					r.uvarint()
				}
				if key&hbHasCommit != 0 {
					r.uvarint()
				}
			}
			n += int(c)
		default:
			return 0, errMalformed
		}
		if n > maxFrameItems || entries > maxFrameEntries {
			return 0, fmt.Errorf("%w: more than %d envelopes or %d log entries", errMalformed, maxFrameItems, maxFrameEntries)
		}
	}
	return n, r.err
}

// Field numbers of raftpb.Message that countEntries looks for.
const (
	fieldEntries   = 7
	fieldResponses = 14
)

// countEntries counts the log entries of an encoded raftpb.Message
// without decoding it, and refuses Responses, which only the local
// storage thread uses (they would nest more entries).
func countEntries(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return 0, errMalformed
		}
		b = b[k:]
		k = protowire.ConsumeFieldValue(num, typ, b)
		if k < 0 {
			return 0, errMalformed
		}
		b = b[k:]
		switch num {
		case fieldEntries:
			n++
		case fieldResponses:
			return 0, fmt.Errorf("%w: %v", errMalformed, errLocalOnly)
		}
	}
	return n, nil
}

// DecodeFrame decodes a frame body (without its length prefix) sent by
// node from to node to. Compact heartbeats come back as ordinary
// raftpb.Messages with From and To set to the two nodes. Every byte is
// checked: an error means the peer is broken or hostile and the
// connection should close.
func DecodeFrame(body []byte, from, to cluster.NodeID) ([]cluster.Envelope, error) {
	n, err := countItems(body)
	if err != nil || n == 0 {
		return nil, err
	}
	envs := make([]cluster.Envelope, n)
	r := reader{b: body}
	i := 0
	for len(r.b) > 0 {
		switch r.byte() {
		case tagMessage:
			env := &envs[i]
			i++
			env.Group = r.uvarint()
			b := r.bytes(r.uvarint())
			if r.err != nil {
				return nil, r.err
			}
			if env.Group == 0 {
				return nil, fmt.Errorf("%w: group 0", errMalformed)
			}
			if err := proto.Unmarshal(b, &env.Msg); err != nil {
				return nil, fmt.Errorf("%w: %v", errMalformed, err)
			}
		case tagHeartbeat:
			c := r.uvarint()
			// The fields of a run's messages point into two arrays
			// allocated once per run rather than five times per
			// message: the run is of a thousand groups' heartbeats.
			vals := make([]uint64, 4*c)
			types := make([]raftpb.MessageType, c)
			for k := uint64(0); k < c; k++ {
				v := vals[4*k : 4*k+4 : 4*k+4]
				env := &envs[i]
				i++
				key := r.uvarint()
				env.Group = key >> hbShift
				if r.err == nil && env.Group == 0 {
					return nil, fmt.Errorf("%w: group 0", errMalformed)
				}
				m := &env.Msg
				types[k] = raftpb.MsgHeartbeat
				if key&hbResp != 0 {
					types[k] = raftpb.MsgHeartbeatResp
				}
				m.Type = &types[k]
				v[0], v[1] = from, to
				m.From, m.To = &v[0], &v[1]
				if key&hbHasTerm != 0 {
					v[2] = r.uvarint()
					m.Term = &v[2]
				}
				if key&hbHasCommit != 0 {
					v[3] = r.uvarint()
					m.Commit = &v[3]
				}
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	return envs, nil
}
