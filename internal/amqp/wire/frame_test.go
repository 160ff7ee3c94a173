package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var b []byte
	b = AppendMethodFrame(b, 1, &BasicPublish{Exchange: "x", RoutingKey: "k"})
	p := Properties{ContentType: "text/plain"}
	body := bytes.Repeat([]byte("0123456789"), 1000)
	b = AppendHeaderFrame(b, 1, ClassBasic, uint64(len(body)), &p)
	b = AppendBodyFrames(b, 1, body, FrameMinSize)
	b = AppendFrame(b, FrameHeartbeat, 0, nil)

	fr := NewFrameReader(bytes.NewReader(b))
	f, err := fr.ReadFrame()
	if err != nil || f.Type != FrameMethod || f.Channel != 1 {
		t.Fatalf("method frame: %+v, %v", f, err)
	}
	m, err := DecodeMethod(f.Payload)
	if err != nil || m.(*BasicPublish).RoutingKey != "k" {
		t.Fatalf("method: %+v, %v", m, err)
	}
	f, err = fr.ReadFrame()
	if err != nil || f.Type != FrameHeader {
		t.Fatalf("header frame: %+v, %v", f, err)
	}
	_, size, got, err := DecodeContentHeader(f.Payload)
	if err != nil || size != uint64(len(body)) || got.ContentType != "text/plain" {
		t.Fatalf("header: %d %+v %v", size, got, err)
	}
	var read []byte
	for frames := 0; len(read) < len(body); frames++ {
		f, err := fr.ReadFrame()
		if err != nil || f.Type != FrameBody {
			t.Fatalf("body frame %d: %+v, %v", frames, f, err)
		}
		if len(f.Payload) > FrameMinSize-8 {
			t.Fatalf("body frame of %d bytes exceeds frame-max", len(f.Payload))
		}
		read = append(read, f.Payload...)
	}
	if !bytes.Equal(read, body) {
		t.Fatal("body changed")
	}
	if f, err := fr.ReadFrame(); err != nil || f.Type != FrameHeartbeat || len(f.Payload) != 0 {
		t.Fatalf("heartbeat: %+v, %v", f, err)
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestAppendBodyFrames(t *testing.T) {
	count := func(b []byte) (n int) {
		fr := NewFrameReader(bytes.NewReader(b))
		fr.SetMaxFrame(1 << 30)
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return n
			}
			n++
		}
	}
	body := make([]byte, 2*(FrameMinSize-8)+1)
	tests := []struct {
		body     []byte
		frameMax uint32
		want     int
	}{
		{nil, FrameMinSize, 0},
		{body[:FrameMinSize-8], FrameMinSize, 1},
		{body[:FrameMinSize-7], FrameMinSize, 2},
		{body, FrameMinSize, 3},
		{body, 0, 1},   // no limit
		{body, 100, 3}, // raised to FrameMinSize
	}
	for _, tt := range tests {
		if got := count(AppendBodyFrames(nil, 1, tt.body, tt.frameMax)); got != tt.want {
			t.Errorf("%d bytes at frame-max %d: %d frames, want %d", len(tt.body), tt.frameMax, got, tt.want)
		}
	}
}

// strictReader fails the test if more than limit bytes are read from it.
type strictReader struct {
	t     *testing.T
	r     io.Reader
	limit int
}

func (s *strictReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.limit -= n
	if s.limit < 0 {
		s.t.Fatalf("read %d bytes past the limit", -s.limit)
	}
	return n, err
}

func TestFrameTooLargeCheckedBeforeReading(t *testing.T) {
	// A 7-byte header announcing a payload one byte over frame-max, followed
	// by data that must not be read. bufio.NewReaderSize with a 16-byte
	// buffer keeps read-ahead small so the strict reader can tell.
	hdr := []byte{FrameBody, 0, 1, 0, 0, 0x0f, 0xf9} // 4089 + 8 = 4097
	sr := &strictReader{t: t, r: io.MultiReader(bytes.NewReader(hdr), strings.NewReader(strings.Repeat("x", 1<<20))), limit: 16}
	fr := NewFrameReader(bufio.NewReaderSize(sr, 16))
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	if cap(fr.buf) != 0 {
		t.Errorf("buffer of %d bytes allocated for a rejected frame", cap(fr.buf))
	}

	// Exactly frame-max is accepted, and SetMaxFrame raises the limit.
	ok := AppendFrame(nil, FrameBody, 1, make([]byte, FrameMinSize-8))
	if _, err := NewFrameReader(bytes.NewReader(ok)).ReadFrame(); err != nil {
		t.Fatalf("frame of exactly frame-max: %v", err)
	}
	big := AppendFrame(nil, FrameBody, 1, make([]byte, 10000))
	fr = NewFrameReader(bytes.NewReader(big))
	fr.SetMaxFrame(10008)
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatalf("after SetMaxFrame: %v", err)
	}
	fr = NewFrameReader(bytes.NewReader(big))
	fr.SetMaxFrame(10007)
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
	fr.SetMaxFrame(0)
	if fr.max != FrameMinSize {
		t.Errorf("SetMaxFrame(0) = %d, want FrameMinSize", fr.max)
	}
}

func TestReadFrameErrors(t *testing.T) {
	good := AppendFrame(nil, FrameMethod, 0, []byte{1, 2, 3})
	badEnd := append([]byte{}, good...)
	badEnd[len(badEnd)-1] = 0
	badType := append([]byte{}, good...)
	badType[0] = 7
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"bad frame end", badEnd, ErrBadFrameEnd},
		{"unknown type", badType, ErrUnknownFrameType},
		{"truncated header", good[:5], io.ErrUnexpectedEOF},
		{"truncated payload", good[:9], io.ErrUnexpectedEOF},
		{"missing frame end", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"huge size", []byte{FrameBody, 0, 1, 0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFrameReader(bytes.NewReader(tt.in)).ReadFrame(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadProtocolHeader(t *testing.T) {
	if err := ReadProtocolHeader(bytes.NewReader(ProtocolHeader)); err != nil {
		t.Errorf("valid header: %v", err)
	}
	for _, in := range []string{"AMQP\x00\x00\x09\x00", "AMQP\x01\x01\x00\x09", "GET / HTTP/1.1\r\n"} {
		if err := ReadProtocolHeader(strings.NewReader(in)); !errors.Is(err, ErrBadProtocolHeader) {
			t.Errorf("%q: %v, want ErrBadProtocolHeader", in, err)
		}
	}
	if err := ReadProtocolHeader(strings.NewReader("AMQP")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short header: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "x"}))
	f.Add(AppendFrame(nil, FrameHeartbeat, 0, nil))
	f.Add(AppendBodyFrames(nil, 2, []byte("hello"), 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bytes.NewReader(in))
		var frames []Frame
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if len(f.Payload)+8 > FrameMinSize {
				t.Fatalf("accepted a %d-byte payload", len(f.Payload))
			}
			f.Payload = append([]byte(nil), f.Payload...)
			frames = append(frames, f)
		}
		// Frames that were read re-encode to frames that read back equal.
		var enc []byte
		for _, f := range frames {
			enc = AppendFrame(enc, f.Type, f.Channel, f.Payload)
		}
		fr = NewFrameReader(bytes.NewReader(enc))
		for i, want := range frames {
			got, err := fr.ReadFrame()
			if err != nil || got.Type != want.Type || got.Channel != want.Channel || !bytes.Equal(got.Payload, want.Payload) {
				t.Fatalf("frame %d: got %+v, %v; want %+v", i, got, err, want)
			}
		}
		if _, err := fr.ReadFrame(); err != io.EOF {
			t.Fatalf("after re-encoded frames: %v", err)
		}
	})
}

// TestFrameReaderGrow: a reader given a bigger buffer between two frames
// (Grow) reads on from where it was, what its small buffer held first,
// and then with reads of the new size.
func TestFrameReaderGrow(t *testing.T) {
	var b []byte
	for i := range 200 {
		b = AppendFrame(b, FrameBody, uint16(i+1), bytes.Repeat([]byte{byte(i)}, 100+i))
	}
	src := &countingReader{r: bytes.NewReader(b)}
	fr := NewFrameReader(src)
	for i := range 200 {
		if i == 7 {
			fr.Grow(64 << 10)
			fr.Grow(1 << 10) // smaller: no change
			src.reads = 0
		}
		f, err := fr.ReadFrame()
		if err != nil || f.Channel != uint16(i+1) || !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte(i)}, 100+i)) {
			t.Fatalf("frame %d after a Grow at 7: channel %d, %d bytes, %v", i, f.Channel, len(f.Payload), err)
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
	// About 40 KB left after frame 7: one read of the new size, then EOF.
	if src.reads > 3 {
		t.Fatalf("%d reads after Grow, want the rest in one or two", src.reads)
	}
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// BenchmarkReadPublishFrames reads the three frames of 1 KiB publishes
// (method, header, body) as a connection's read loop does, with bufio's
// default 4 KiB buffer and after Grow(64 KiB), from a source that hands
// out as much as each read asks for (a socket with data waiting). reads/op
// is system calls per publish.
//
//	go test -run - -bench ReadPublishFrames -benchmem ./internal/amqp/wire/
func BenchmarkReadPublishFrames(b *testing.B) {
	var one []byte
	one = AppendMethodFrame(one, 1, &BasicPublish{RoutingKey: "q"})
	p := Properties{DeliveryMode: 2}
	one = AppendHeaderFrame(one, 1, ClassBasic, 1024, &p)
	one = AppendBodyFrames(one, 1, make([]byte, 1024), 131072)
	for _, grow := range []int{0, 64 << 10} {
		b.Run(fmt.Sprintf("buffer=%d", max(grow, 4096)), func(b *testing.B) {
			src := &countingReader{r: &repeatReader{b: one}}
			fr := NewFrameReader(src)
			fr.SetMaxFrame(131072)
			if grow > 0 {
				fr.Grow(grow)
			}
			b.SetBytes(int64(len(one)))
			b.ReportAllocs()
			src.reads = 0
			for b.Loop() {
				for range 3 {
					if _, err := fr.ReadFrame(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(src.reads)/float64(b.N), "reads/op")
		})
	}
}

// repeatReader returns b over and over, filling each read.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}
