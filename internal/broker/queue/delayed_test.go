package queue

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// TestDelayedIndexesOnlyTheWindow: messages due far ahead are on disk only;
// the in-memory index holds those due within the window, and everything
// is released in due order once its time comes.
func TestDelayedIndexesOnlyTheWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(1_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var released []string
	d, err := OpenDelayed(t.TempDir(), storage.Options{}, clock, nil, func(m message.Message) error {
		mu.Lock()
		released = append(released, string(m.Body))
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const n = 2000
	for i := range n {
		// due from 2 to 3 hours ahead, in reverse order of publication
		at := now.Add(2*time.Hour + time.Duration(n-i)*time.Second)
		app, err := d.Publish(&message.Message{Body: []byte(fmt.Sprint(n - i))}, at)
		if err != nil {
			t.Fatal(err)
		}
		app.Wait()
	}
	app, err := d.Publish(&message.Message{Body: []byte("soon")}, now.Add(10*time.Second))
	if err != nil || app.Wait() != nil {
		t.Fatal(err)
	}
	waitCond(t, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.loadedUntil >= now.UnixMilli() && len(d.due) == 1
	})
	if p := d.Pending(); p != n+1 {
		t.Fatalf("pending %d", p)
	}
	mu.Lock()
	now = now.Add(4 * time.Hour)
	mu.Unlock()
	d.kick <- struct{}{}
	waitCond(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(released) == n+1 })
	if released[0] != "soon" || released[1] != "1" || released[n] != fmt.Sprint(n) {
		t.Fatalf("release order: %v ... %v", released[:3], released[n-2:])
	}
	if p := d.Pending(); p != 0 {
		t.Fatalf("pending after release %d", p)
	}
}

func waitCond(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestDelayedTail: a store over a log another appends to (a delayed
// exchange on a cluster) indexes what is appended, releases it in due
// order, hands its settles to Record and asks DeleteBefore to move the
// log start; a store opened again over the same log with those settles
// (a new leader) releases only what was not settled.
func TestDelayedTail(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(5_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l, err := storage.Open(t.TempDir(), storage.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var (
		released []string
		acks     []byte
		asked    []int64
	)
	open := func(settled []byte) *Delayed {
		d, err := OpenDelayedTail(DelayedTail{Log: l, Acks: settled,
			Record:       func(e []byte) { mu.Lock(); acks = append(acks, e...); mu.Unlock() },
			DeleteBefore: func(off int64) { mu.Lock(); asked = append(asked, off); mu.Unlock() },
		}, clock, nil, func(m message.Message) error {
			mu.Lock()
			released = append(released, string(m.Body))
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// write appends a message due in `in` as the owner does.
	write := func(body string, in time.Duration) {
		rec, err := (&message.Message{Body: []byte(body)}).Record()
		if err != nil {
			t.Fatal(err)
		}
		app, err := l.Append(storage.BuildRecordBatch(0, DelayedMessageTime(clock().Add(in)), []storage.Record{rec}))
		if err != nil || app.Wait() != nil {
			t.Fatal(err)
		}
	}
	releasedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(released) }

	d := open(nil)
	write("c", 30*time.Second)
	write("a", 10*time.Second)
	write("far", 2*time.Hour) // beyond the window: found again by a scan
	write("b", 20*time.Second)
	waitCond(t, func() bool { return d.Pending() == 4 })
	advance(25 * time.Second)
	d.kick <- struct{}{}
	waitCond(t, func() bool { return releasedCount() == 2 })
	mu.Lock()
	if released[0] != "a" || released[1] != "b" || len(acks) != 2*ackEntryLen {
		t.Fatalf("released %v with %d bytes of settles, want a, b and two entries", released, len(acks))
	}
	settled := bytes.Clone(acks)
	mu.Unlock()
	// The owner applies the settles to its record; a new leader opens a
	// store with them: a and b are not released again.
	d.Close()
	d = open(settled)
	defer d.Close()
	if p := d.Pending(); p != 2 {
		t.Fatalf("pending %d after reopening, want 2", p)
	}
	advance(3 * time.Hour)
	d.kick <- struct{}{}
	waitCond(t, func() bool { return releasedCount() == 4 })
	mu.Lock()
	defer mu.Unlock()
	if released[2] != "c" || released[3] != "far" {
		t.Fatalf("released %v, want c then far after a and b", released)
	}
	if len(asked) == 0 || asked[len(asked)-1] != 4 {
		t.Fatalf("log start asked %v, want 4 last (everything settled)", asked)
	}
}
