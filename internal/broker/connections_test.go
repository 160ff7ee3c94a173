package broker

import (
	"fmt"
	"sync"
	"testing"
)

// fakeConn is a registry entry that records how it was closed.
type fakeConn struct {
	info ConnInfo

	mu     sync.Mutex
	closed []string // reasons, in order
}

func (c *fakeConn) Info() ConnInfo { return c.info }

func (c *fakeConn) Close(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = append(c.closed, reason)
}

func (c *fakeConn) reasons() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.closed...)
}

func newFake(name, protocol string) *fakeConn {
	return &fakeConn{info: ConnInfo{Name: name, Protocol: protocol, User: "guest", Vhost: "/"}}
}

func names(infos []ConnInfo) []string {
	out := []string{}
	for _, ci := range infos {
		out = append(out, ci.Name)
	}
	return out
}

func TestConnectionsListsByName(t *testing.T) {
	var cs Connections // the zero value is ready
	if got := cs.List(); len(got) != 0 {
		t.Fatalf("empty registry lists %v", names(got))
	}
	for _, n := range []string{"c -> s", "a -> s", "b -> s"} {
		cs.Add(n, newFake(n, "AMQP 0-9-1"))
	}
	kafka := newFake("k -> s", "Kafka")
	cs.Add(kafka.info.Name, kafka)
	got := cs.List()
	if want := []string{"a -> s", "b -> s", "c -> s", "k -> s"}; fmt.Sprint(names(got)) != fmt.Sprint(want) {
		t.Fatalf("List = %v, want %v", names(got), want)
	}
	if got[3].Protocol != "Kafka" || got[0].Protocol != "AMQP 0-9-1" {
		t.Errorf("protocols %q, %q: the registry must pass each connection's Info through", got[0].Protocol, got[3].Protocol)
	}
	if cs.Len() != 4 {
		t.Errorf("Len = %d, want 4", cs.Len())
	}
}

func TestConnectionsRemove(t *testing.T) {
	var cs Connections
	old := newFake("x -> s", "AMQP 0-9-1")
	cs.Add("x -> s", old)
	cs.Remove("x -> s", old)
	if cs.Len() != 0 {
		t.Fatalf("after Remove, Len = %d", cs.Len())
	}
	cs.Remove("x -> s", old) // a second Remove, or one never added, is harmless
	cs.Remove("never -> s", old)

	// A connection that took over a name (the old one's socket closed and
	// the same address pair came back) is not removed by the old one
	// finishing late.
	cs.Add("x -> s", old)
	repl := newFake("x -> s", "AMQP 0-9-1")
	cs.Add("x -> s", repl)
	cs.Remove("x -> s", old)
	if !cs.Close("x -> s", "bye") {
		t.Fatal("the replacing connection is gone")
	}
	if len(old.reasons()) != 0 || fmt.Sprint(repl.reasons()) != "[bye]" {
		t.Errorf("closed old %v, replacement %v; want only the replacement", old.reasons(), repl.reasons())
	}
}

func TestConnectionsClose(t *testing.T) {
	var cs Connections
	a, b := newFake("a -> s", "AMQP 0-9-1"), newFake("b -> s", "AMQP 0-9-1")
	cs.Add("a -> s", a)
	cs.Add("b -> s", b)
	if cs.Close("nobody -> s", "why") {
		t.Error("Close of an unknown name reported success")
	}
	if !cs.Close("b -> s", "Closed via management plugin") {
		t.Fatal("Close of a registered connection reported failure")
	}
	if len(a.reasons()) != 0 || fmt.Sprint(b.reasons()) != "[Closed via management plugin]" {
		t.Errorf("closed a %v, b %v; want b only, with the reason", a.reasons(), b.reasons())
	}
	// Closing asks the connection to go; it leaves the registry when its
	// front end removes it.
	if cs.Len() != 2 {
		t.Errorf("Len = %d after Close, want 2 until the connection removes itself", cs.Len())
	}
}

// selfRemoving removes itself from the registry when closed, as a front
// end's connection does when it ends: Close is called with no registry
// lock held, or this would deadlock.
type selfRemoving struct {
	fakeConn
	cs *Connections
}

func (c *selfRemoving) Close(reason string) {
	c.fakeConn.Close(reason)
	c.cs.Remove(c.info.Name, c)
}

func TestConnectionsCloseMayRemove(t *testing.T) {
	var cs Connections
	c := &selfRemoving{fakeConn: *newFake("a -> s", "AMQP 0-9-1"), cs: &cs}
	cs.Add("a -> s", c)
	if !cs.Close("a -> s", "bye") || cs.Len() != 0 {
		t.Fatalf("Len = %d after a self-removing Close", cs.Len())
	}
}

// TestConnectionsConcurrent runs adds, removes, listings and closes at
// once; run it with -race.
func TestConnectionsConcurrent(t *testing.T) {
	var cs Connections
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				n := fmt.Sprintf("%d.%d -> s", g, i)
				c := &selfRemoving{fakeConn: *newFake(n, "AMQP 0-9-1"), cs: &cs}
				cs.Add(n, c)
				cs.List()
				if i%2 == 0 {
					cs.Close(n, "bye")
				} else {
					cs.Remove(n, c)
				}
			}
		}()
	}
	wg.Wait()
	if cs.Len() != 0 {
		t.Errorf("Len = %d after every connection left", cs.Len())
	}
}
