package broker

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/testutil"
)

// openRouter opens the metadata store and a router over dir.
func openRouter(t *testing.T, dir string, warmUp bool) (*Router, func()) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouter(RouterOptions{DataDir: dir, Logger: quiet, noWarmUp: !warmUp}, m)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	if err := r.AddVhost("/"); err != nil {
		t.Fatal(err)
	}
	return r, func() { r.Close(); m.Close() }
}

func (r *Router) lazyOf(t *testing.T, name string) *lazyQueue {
	t.Helper()
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := r.vhosts["/"].queues[name].q.(*lazyQueue)
	if !ok {
		t.Fatalf("queue %s was not loaded lazily: %T", name, r.vhosts["/"].queues[name].q)
	}
	return l
}

// TestQueuesOpenOnFirstUse: after a restart durable queues are known but
// not opened until something needs them: a policy set meanwhile is the
// configuration they open with, a count of one opens that one only, a
// listing opens them all, and the warm-up opens them without any use.
// Streams and queues with x-expires open at start.
func TestQueuesOpenOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	r, closeR := openRouter(t, dir, true)
	for _, d := range []QueueDecl{
		{Name: "a", Durable: true}, {Name: "b", Durable: true},
		{Name: "prio", Durable: true, Arguments: fieldtable.Table{"x-max-priority": int32(3)}},
		{Name: "expiring", Durable: true, Arguments: fieldtable.Table{"x-expires": int32(600_000)}},
		{Name: "stream", Durable: true, Arguments: fieldtable.Table{"x-queue-type": "stream"}},
	} {
		if _, err := r.DeclareQueue("/", d); err != nil {
			t.Fatal(err)
		}
	}
	for _, body := range []string{"1", "2", "3"} {
		rt, err := r.Publish("/", &message.Message{RoutingKey: "a", Body: []byte(body)})
		if err != nil || rt.Queues != 1 {
			t.Fatalf("publish: %v routed to %d", err, rt.Queues)
		}
		if err := rt.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	closeR()

	r, closeR = openRouter(t, dir, false)
	a, b, prio := r.lazyOf(t, "a"), r.lazyOf(t, "b"), r.lazyOf(t, "prio")
	for _, name := range []string{"expiring", "stream"} {
		r.mu.RLock()
		q := r.vhosts["/"].queues[name].q
		r.mu.RUnlock()
		if _, lazy := q.(*lazyQueue); lazy {
			t.Errorf("queue %s loaded lazily: it must open at start", name)
		}
	}
	if a.opened() != nil || b.opened() != nil || prio.opened() != nil {
		t.Fatal("queues opened at start")
	}
	if err := r.SetPolicy(Policy{Vhost: "/", Name: "len", Pattern: "^a$", ApplyTo: "queues", Definition: []byte(`{"max-length":2}`)}, false); err != nil {
		t.Fatal(err)
	}
	if a.opened() != nil {
		t.Fatal("a policy opened the queue")
	}
	st, err := r.QueueStatus("/", "a")
	if err != nil {
		t.Fatal(err)
	}
	if a.opened() == nil || b.opened() != nil {
		t.Fatalf("the status of a: a opened %v, b opened %v; want a only", a.opened() != nil, b.opened() != nil)
	}
	if got := a.opened().Config().MaxLength; got != 2 {
		t.Errorf("a opened with max-length %d, want the policy's 2", got)
	}
	if st.Ready+st.Unacked != 3 && st.Ready != 2 {
		t.Errorf("a: %d ready %d unacked, want its 3 messages (2 once the limit applies)", st.Ready, st.Unacked)
	}
	testutil.WaitFor(t, 10*time.Second, "the policy's max-length to apply", func() bool {
		ready, _, _ := a.Counts()
		return ready == 2
	})
	if _, err := r.QueueStatuses("/"); err != nil {
		t.Fatal(err)
	}
	if b.opened() == nil || prio.opened() == nil {
		t.Fatal("a listing left queues unopened")
	}
	closeR()

	// /metrics reads every queue's counts through QueueRefs.
	r, closeR = openRouter(t, dir, false)
	for _, ref := range r.QueueRefs() {
		if l, ok := ref.Handle.(*lazyQueue); ok && l.opened() == nil {
			t.Errorf("QueueRefs left %s unopened", ref.Name)
		}
	}
	closeR()

	// The warm-up opens every queue without any use.
	r, closeR = openRouter(t, dir, true)
	defer closeR()
	qs := []*lazyQueue{r.lazyOf(t, "a"), r.lazyOf(t, "b"), r.lazyOf(t, "prio")}
	testutil.WaitFor(t, 10*time.Second, "the warm-up to open every queue", func() bool {
		for _, l := range qs {
			if l.opened() == nil {
				return false
			}
		}
		return true
	})
}

// TestUnopenedQueueDeleteAndClose: a queue deleted before it opened
// loses its files without opening; a closed one never opens.
func TestUnopenedQueueDeleteAndClose(t *testing.T) {
	dir := t.TempDir()
	r, closeR := openRouter(t, dir, false)
	for _, name := range []string{"gone", "closed"} {
		if _, err := r.DeclareQueue("/", QueueDecl{Name: name, Durable: true}); err != nil {
			t.Fatal(err)
		}
	}
	closeR()
	r, closeR = openRouter(t, dir, false)
	defer closeR()
	gone, closed := r.lazyOf(t, "gone"), r.lazyOf(t, "closed")
	if err := gone.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gone.dir); !os.IsNotExist(err) {
		t.Errorf("the deleted queue's directory: %v, want it gone", err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := closed.Get(true); ok || closed.opened() != nil {
		t.Error("a closed queue opened")
	}
	if _, err := closed.Publish(&message.Message{RoutingKey: "closed"}); err == nil {
		t.Error("a publish to a closed queue succeeded")
	}
}
