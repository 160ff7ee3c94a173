package kafka

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

func TestReadFrame(t *testing.T) {
	for _, size := range []int{1, 100, 1 << 20, 1<<20 + 1, 3<<20 + 17} {
		src := bytes.Repeat([]byte{7}, size)
		got, err := readFrame(bytes.NewReader(src), size)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("size %d: err %v, equal %v", size, err, bytes.Equal(got, src))
		}
	}
	// A frame that claims more than arrives fails without allocating the
	// claimed size up front.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := readFrame(bytes.NewReader(make([]byte, 10)), 90<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("short frame: %v", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Fatalf("a 10-byte frame claiming 90 MiB allocated %d bytes", n)
	}
}
