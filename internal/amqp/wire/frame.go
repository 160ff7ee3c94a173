package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ProtocolHeader opens every AMQP 0-9-1 connection. A server that receives
// anything else writes it back and closes the connection.
var ProtocolHeader = []byte("AMQP\x00\x00\x09\x01")

// frameOverhead is the type, channel and size before a payload and the
// frame-end octet after it.
const frameOverhead = 8

var (
	// ErrBadProtocolHeader means the peer did not open with ProtocolHeader.
	ErrBadProtocolHeader = errors.New("wire: bad protocol header")
	// ErrFrameTooLarge means a frame announced more than the frame-max.
	ErrFrameTooLarge = errors.New("wire: frame larger than frame-max")
	// ErrBadFrameEnd means a frame did not end with FrameEnd.
	ErrBadFrameEnd = errors.New("wire: frame does not end with frame-end octet")
	// ErrUnknownFrameType means a frame type other than method, header,
	// body or heartbeat.
	ErrUnknownFrameType = errors.New("wire: unknown frame type")
)

// Frame is one AMQP frame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// ReadProtocolHeader reads the 8-byte protocol header from r and returns
// ErrBadProtocolHeader (wrapped, with the bytes read) when it is not
// ProtocolHeader, or the read error.
func ReadProtocolHeader(r io.Reader) error {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if !bytes.Equal(h[:], ProtocolHeader) {
		return fmt.Errorf("%w: %q", ErrBadProtocolHeader, h[:])
	}
	return nil
}

// FrameReader reads frames from a stream. It is not safe for concurrent
// use.
type FrameReader struct {
	// OnPartial, when set, runs after a frame's header has been read if
	// the rest of the frame is not buffered yet: the reader is about to
	// wait for it (where a frame timeout starts).
	OnPartial func()

	r   *bufio.Reader
	max uint32
	buf []byte
	hdr [7]byte // here rather than on the stack, where io.ReadFull would move it to the heap
}

// NewFrameReader returns a FrameReader over r with the frame-max set to
// FrameMinSize, the limit before connection.tune-ok.
func NewFrameReader(r io.Reader) *FrameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &FrameReader{r: br, max: FrameMinSize}
}

// Grow gives the reader a read buffer of size bytes if its own is
// smaller, keeping whatever it has buffered: a busy connection then takes
// more frames per system call, while an idle one keeps the small default.
func (fr *FrameReader) Grow(size int) {
	if fr.r.Size() < size {
		// The old reader hands over what it holds, then, its buffer
		// empty and each read larger than it, passes reads through.
		fr.r = bufio.NewReaderSize(fr.r, size)
	}
}

// SetMaxFrame sets the largest accepted frame, counting the 8 bytes of
// framing, as negotiated by connection.tune-ok's frame-max. Zero restores
// FrameMinSize, the limit before tuning.
func (fr *FrameReader) SetMaxFrame(n uint32) {
	if n == 0 {
		n = FrameMinSize
	}
	fr.max = n
}

// ReadFrame reads the next frame. Its size is checked against the
// frame-max before the payload is read or any buffer grown. The returned
// Payload aliases the FrameReader's buffer and is valid only until the next
// call to ReadFrame. Errors are ErrFrameTooLarge, ErrBadFrameEnd and
// ErrUnknownFrameType (all answered with 501 FRAME_ERROR), or a read error
// (io.EOF at a frame boundary, io.ErrUnexpectedEOF inside a frame).
func (fr *FrameReader) ReadFrame() (Frame, error) {
	h := &fr.hdr
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: h[0], Channel: binary.BigEndian.Uint16(h[1:])}
	size := binary.BigEndian.Uint32(h[3:])
	switch f.Type {
	case FrameMethod, FrameHeader, FrameBody, FrameHeartbeat:
	default:
		return Frame{}, fmt.Errorf("%w: %d", ErrUnknownFrameType, f.Type)
	}
	if uint64(size)+frameOverhead > uint64(fr.max) {
		return Frame{}, fmt.Errorf("%w: %d-byte payload, frame-max %d", ErrFrameTooLarge, size, fr.max)
	}
	n := int(size) + 1 // payload and frame-end
	if fr.OnPartial != nil && fr.r.Buffered() < n {
		fr.OnPartial()
	}
	if cap(fr.buf) < n {
		fr.buf = make([]byte, n)
	}
	fr.buf = fr.buf[:n]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if end := fr.buf[size]; end != FrameEnd {
		return Frame{}, fmt.Errorf("%w: got %#02x", ErrBadFrameEnd, end)
	}
	f.Payload = fr.buf[:size]
	return f, nil
}

// AppendFrame appends a frame holding payload.
func AppendFrame(dst []byte, typ uint8, channel uint16, payload []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, channel)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return append(dst, FrameEnd)
}

// appendFrameWith appends a frame whose payload body writes in place.
func appendFrameWith(dst []byte, typ uint8, channel uint16, body func([]byte) []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, channel)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = body(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return append(dst, FrameEnd)
}

// AppendMethodFrame appends a method frame for m on channel.
func AppendMethodFrame(dst []byte, channel uint16, m Method) []byte {
	return appendFrameWith(dst, FrameMethod, channel, func(b []byte) []byte { return AppendMethod(b, m) })
}

// AppendHeaderFrame appends a content header frame.
func AppendHeaderFrame(dst []byte, channel uint16, classID uint16, bodySize uint64, p *Properties) []byte {
	return appendFrameWith(dst, FrameHeader, channel, func(b []byte) []byte {
		return AppendContentHeader(b, classID, bodySize, p)
	})
}

// AppendBodyFrames appends body as body frames of at most frameMax bytes
// each (payloads of frameMax-8). An empty body appends nothing, as no body
// frame follows a header announcing size zero. A frameMax of zero means no
// limit; one below FrameMinSize is raised to it, the size every peer
// accepts.
func AppendBodyFrames(dst []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := uint64(math.MaxUint32)
	if frameMax != 0 {
		chunk = uint64(max(frameMax, FrameMinSize)) - frameOverhead
	}
	for len(body) > 0 {
		n := min(uint64(len(body)), chunk)
		dst = AppendFrame(dst, FrameBody, channel, body[:n])
		body = body[n:]
	}
	return dst
}
