package broker

import (
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// die records one death of m as the broker does when queue qname
// dead-letters it, and says whether sending the copy on to next would be
// a cycle RabbitMQ stops.
func die(m *message.Message, qname string, why queue.Reason, next string) (cycle bool) {
	recordDeath(m, qname, string(why), time.Unix(0, 0))
	deaths, _ := m.Properties.Headers["x-death"].([]any)
	return why != queue.Rejected && isDeadLetterCycle(deaths, next)
}

func TestDeadLetterCycles(t *testing.T) {
	type hop struct {
		queue string
		why   queue.Reason
		next  string // where the dead-letter exchange routes the copy
		cycle bool
	}
	for _, tc := range []struct {
		name string
		hops []hop
	}{
		{"a queue dead-lettering to itself on expiry", []hop{
			{"q", queue.Expired, "q", true},
		}},
		{"to itself on a client's reject: allowed, every time", []hop{
			{"q", queue.Rejected, "q", false},
			{"q", queue.Rejected, "q", false},
		}},
		{"two queues, expiry both ways: stopped on the way back", []hop{
			{"a", queue.Expired, "b", false},
			{"b", queue.Expired, "a", true},
		}},
		{"a reject in the cycle lets it go round, once", []hop{
			{"a", queue.Rejected, "b", false},
			{"b", queue.Expired, "a", false}, // a -> b -> a began with a reject
			// b -> a -> b now: b expired, a expired, no reject.
			{"a", queue.Expired, "b", true},
		}},
		{"maxlen and delivery limit are automatic too", []hop{
			{"a", queue.MaxLen, "b", false},
			{"b", queue.DeliveryLimit, "a", true},
		}},
		{"a chain without a cycle", []hop{
			{"a", queue.Expired, "b", false},
			{"b", queue.Expired, "c", false},
			{"c", queue.Expired, "d", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte("m")}
			for i, h := range tc.hops {
				if got := die(m, h.queue, h.why, h.next); got != h.cycle {
					t.Fatalf("hop %d (%s %s -> %s): cycle %v, want %v", i, h.queue, h.why, h.next, got, h.cycle)
				}
			}
		})
	}
}

// TestXDeathCounts: one x-death entry per queue and reason, counted, the
// latest first; the first death is remembered, the last one updated.
func TestXDeathCounts(t *testing.T) {
	m := &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte("m")}
	for _, d := range []struct {
		q   string
		why queue.Reason
	}{{"a", queue.Rejected}, {"b", queue.Expired}, {"a", queue.Rejected}, {"b", queue.Expired}, {"a", queue.Expired}} {
		recordDeath(m, d.q, string(d.why), time.Unix(0, 0))
	}
	h := m.Properties.Headers
	deaths := h["x-death"].([]any)
	var got []string
	for _, d := range deaths {
		e := d.(fieldtable.Table)
		got = append(got, e["queue"].(string)+"/"+e["reason"].(string)+"/"+itoa(e["count"].(int64)))
	}
	want := []string{"a/expired/1", "b/expired/2", "a/rejected/2"}
	if len(got) != len(want) {
		t.Fatalf("x-death %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("x-death %v, want %v", got, want)
		}
	}
	if h["x-first-death-queue"] != "a" || h["x-first-death-reason"] != "rejected" ||
		h["x-last-death-queue"] != "a" || h["x-last-death-reason"] != "expired" {
		t.Fatalf("first/last death headers: %v", h)
	}
}

func itoa(n int64) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return "many"
}
