package wire

import (
	"testing"
	"time"
)

// TestEncodeDoesNotAllocate pins the hot path: publishing a message appends
// its frames to a reused buffer without allocating.
func TestEncodeDoesNotAllocate(t *testing.T) {
	m := &BasicDeliver{ConsumerTag: "ctag", DeliveryTag: 42, Exchange: "ex", RoutingKey: "rk"}
	p := &Properties{ContentType: "text/plain", DeliveryMode: 2, Timestamp: time.Unix(1, 0)}
	body := make([]byte, 10000)
	buf := make([]byte, 0, 1<<16)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendMethodFrame(buf[:0], 1, m)
		b = AppendHeaderFrame(b, 1, ClassBasic, uint64(len(body)), p)
		b = AppendBodyFrames(b, 1, body, 4096)
		_ = b
	})
	if allocs != 0 {
		t.Errorf("%v allocations per publish, want 0", allocs)
	}
}
