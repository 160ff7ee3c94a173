package queue

import (
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
