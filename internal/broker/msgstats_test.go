package broker

import (
	"testing"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/meta"
)

// A count at a channel's level is counted at its connection's and its
// vhost's; a closed channel's counts stay in its parents.
func TestMessageStatsChain(t *testing.T) {
	vh := NewMessageStats(nil)
	conn := NewMessageStats(vh)
	ch1, ch2 := NewMessageStats(conn), NewMessageStats(conn)
	ch1.Add(StatPublish, 3)
	ch2.Add(StatPublish, 2)
	ch2.Add(StatAck, 1)
	other := NewMessageStats(vh) // another connection
	other.Add(StatDeliver, 4)
	check := func(name string, s *MessageStats, publish, ack, deliver int64) {
		t.Helper()
		got := s.Totals()
		if got[StatPublish] != publish || got[StatAck] != ack || got[StatDeliver] != deliver {
			t.Errorf("%s: %v, want publish %d ack %d deliver %d", name, got, publish, ack, deliver)
		}
	}
	check("ch1", ch1, 3, 0, 0)
	check("ch2", ch2, 2, 1, 0)
	check("conn", conn, 5, 1, 0)
	check("vhost", vh, 5, 1, 4)
	var none *MessageStats
	none.Add(StatPublish, 1) // counts nothing, does not panic
	if none.Totals() != (MessageTotals{}) {
		t.Error("nil stats have totals")
	}
	if MessageStatNames[StatRedeliver] != "redeliver" || MessageStatNames[StatGetEmpty] != "get_empty" {
		t.Errorf("names out of step with the constants: %v", MessageStatNames)
	}
}

// Exchanges count what is published to them (publish_in) and what they
// route on (publish_out), through exchange-to-exchange bindings too.
func TestExchangeStats(t *testing.T) {
	_, r := newCore(t)
	if r.VhostStats("/") == nil || r.VhostStats("nosuch") != nil {
		t.Fatal("VhostStats: want the vhost's stats, nil for none")
	}
	if err := r.DeclareExchange("/", ExchangeDecl{Name: "front", Type: ExchangeFanout, Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.DeclareExchange("/", ExchangeDecl{Name: "back", Type: ExchangeDirect, Durable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeclareQueue("/", QueueDecl{Name: "q", Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.Bind(meta.Binding{Vhost: "/", Source: "front", Destination: "back", DestinationKind: meta.DestExchange}, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Bind(meta.Binding{Vhost: "/", Source: "back", Destination: "q", DestinationKind: meta.DestQueue, RoutingKey: "k"}, nil, ""); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"k", "k", "other"} {
		rt, err := r.Publish("/", &message.Message{Exchange: "front", RoutingKey: key, Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Publish("/", &message.Message{RoutingKey: "q", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	st, err := r.ExchangeStats("/")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]ExchangeTotals{
		"front":      {PublishIn: 3, PublishOut: 2},
		"back":       {PublishIn: 3, PublishOut: 2},
		"":           {PublishIn: 1, PublishOut: 1},
		"amq.direct": {},
	} {
		if st[name] != want {
			t.Errorf("exchange %q: %+v, want %+v", name, st[name], want)
		}
	}
	if _, err := r.ExchangeStats("nosuch"); err == nil {
		t.Error("ExchangeStats of a missing vhost: no error")
	}
}
