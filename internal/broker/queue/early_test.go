package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// A queue delivers a message once it is written, before its fsync (the
// publisher's confirm still waits for it). If the power goes before the
// fsync, the message is gone; an ack the consumer gave for it may have
// reached the ack record all the same, and it must not settle the new
// message that takes the same offset after the restart.
func TestDeliveredBeforeFsyncThenPowerLoss(t *testing.T) {
	mem := storage.NewMemFS()
	gate := storage.NewFaultFS(mem)
	// Hold the fsyncs of data files only.
	gate.SetFilter(func(name string) bool { return strings.HasSuffix(name, ".log") })
	// The ack record lives on the real file system and survives the crash.
	dir := t.TempDir()
	open := func() *Queue {
		q, err := Open(Options{Name: "q", Dir: dir, Config: NoLimits(), Storage: storage.Options{FS: gate}})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := open()
	publish(t, q, "a") // durable
	c := newConsumer(10)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); string(d.Message.Body) != "a" {
		t.Fatalf("got %q, want a", d.Message.Body)
	}

	gate.HoldSyncs()
	app, err := q.Publish(&message.Message{Body: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	b := c.next(t) // delivered while its fsync is held
	if string(b.Message.Body) != "b" {
		t.Fatalf("got %q, want b", b.Message.Body)
	}
	select {
	case <-app.Done():
		t.Fatal("b's append completed (its confirm could go out) before its fsync")
	default:
	}
	ackFile := filepath.Join(dir, ackFileName)
	before := fileSize(t, ackFile)
	q.Ack(b.Offset)
	deadline := time.Now().Add(5 * time.Second)
	for fileSize(t, ackFile) == before {
		if time.Now().After(deadline) {
			t.Fatal("the ack of b never reached the ack record")
		}
		time.Sleep(time.Millisecond)
	}

	mem.Crash() // b was never fsync'd: it is lost, its ack is on disk
	gate.ReleaseSyncs()
	q.Close()
	mem.Restart()

	q = open()
	defer q.Close()
	if ready, _, _ := q.Counts(); ready != 1 {
		t.Fatalf("ready after the power loss = %d, want 1 (a, never acked)", ready)
	}
	publish(t, q, "c") // takes b's offset
	c = newConsumer(10)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); string(d.Message.Body) != "a" || !d.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a redelivered", d.Message.Body, d.Redelivered)
	}
	d := c.next(t)
	if string(d.Message.Body) != "c" || d.Offset != b.Offset {
		t.Fatalf("got %q at %d, want c at %d", d.Message.Body, d.Offset, b.Offset)
	}
	if d.Redelivered {
		t.Fatal("c, published after the restart, came flagged redelivered")
	}
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
