package kafka

import (
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func quotaOf(rate float64, parts ...broker.QuotaEntityPart) broker.ClientQuota {
	return broker.ClientQuota{Entity: parts, Values: map[string]float64{quotaProduce: rate}}
}

var (
	userPart   = func(n string) broker.QuotaEntityPart { return broker.QuotaEntityPart{Type: broker.QuotaUser, Name: n} }
	clientPart = func(n string) broker.QuotaEntityPart {
		return broker.QuotaEntityPart{Type: broker.QuotaClientID, Name: n}
	}
	userDefault = broker.QuotaEntityPart{Type: broker.QuotaUser, Default: true}
	clientDef   = broker.QuotaEntityPart{Type: broker.QuotaClientID, Default: true}
)

// The quota that applies is found in Kafka's precedence, and bytes are
// measured per the matched entity's (user, client id).
func TestQuotaPrecedence(t *testing.T) {
	all := []broker.ClientQuota{
		quotaOf(1, clientPart("app"), userPart("alice")),
		quotaOf(2, clientDef, userPart("alice")),
		quotaOf(3, userPart("alice")),
		quotaOf(4, clientPart("app"), userDefault),
		quotaOf(5, clientDef, userDefault),
		quotaOf(6, userDefault),
		quotaOf(7, clientPart("app")),
		quotaOf(8, clientDef),
	}
	for i, tc := range []struct {
		user, client string
		drop         int // the first entries left out
		rate         float64
		key          bucketKey
	}{
		{"alice", "app", 0, 1, bucketKey{quotaProduce, "alice", "app"}},
		{"alice", "other", 0, 2, bucketKey{quotaProduce, "alice", "other"}},
		{"alice", "app", 2, 3, bucketKey{quotaProduce, "alice", ""}},
		{"bob", "app", 0, 4, bucketKey{quotaProduce, "bob", "app"}},
		{"bob", "x", 0, 5, bucketKey{quotaProduce, "bob", "x"}},
		{"bob", "x", 5, 6, bucketKey{quotaProduce, "bob", ""}},
		{"bob", "app", 6, 7, bucketKey{quotaProduce, "", "app"}},
		{"bob", "x", 6, 8, bucketKey{quotaProduce, "", "x"}},
	} {
		qs := all[tc.drop:]
		m := newQuotaManager(func() []broker.ClientQuota { return qs })
		m.reloadLocked(time.Now())
		rate, key, ok := m.resolveLocked(quotaProduce, tc.user, tc.client)
		if !ok || rate != tc.rate || key != tc.key {
			t.Errorf("case %d: %s/%s: rate %v key %+v ok %v, want %v %+v", i, tc.user, tc.client, rate, key, ok, tc.rate, tc.key)
		}
	}
}

// Within the budget (one second of the rate) nothing is throttled; past
// it, the throttle is the time the budget takes to refill to zero, and
// time passing pays the debt back.
func TestQuotaThrottle(t *testing.T) {
	m := newQuotaManager(func() []broker.ClientQuota { return []broker.ClientQuota{quotaOf(1000, clientPart("p"))} })
	now := time.Unix(1000, 0)
	if d := m.record(quotaProduce, "", "p", 1000, now); d != 0 {
		t.Fatalf("a second's worth throttled %v", d)
	}
	if d := m.record(quotaProduce, "", "p", 500, now); d != 500*time.Millisecond {
		t.Fatalf("500 bytes over a 1000 B/s rate: throttle %v, want 500ms", d)
	}
	if d := m.record(quotaProduce, "", "p", 0, now.Add(500*time.Millisecond)); d != 0 {
		t.Fatalf("after the throttle: %v", d)
	}
	if d := m.record(quotaProduce, "", "other", 1e9, now); d != 0 {
		t.Fatalf("a client id without a quota throttled %v", d)
	}
	if d := m.record(quotaProduce, "", "p", 1e9, now); d != maxThrottle {
		t.Fatalf("a huge excess: %v, want the cap %v", d, maxThrottle)
	}
}

// FuzzAlterClientQuotas feeds AlterClientQuotas requests from the wire to
// the handler's parsing: it never panics, and what it accepts the
// metadata state machine accepts too (no entry answered as stored that
// the store would refuse).
func FuzzAlterClientQuotas(f *testing.F) {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	name := "app"
	e.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: &name}, {Type: "user"}}
	e.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: "producer_byte_rate", Value: 1024}, {Key: "request_percentage", Remove: true}}
	req.Entries = append(req.Entries, e)
	for _, v := range []int16{0, 1} {
		req.SetVersion(v)
		f.Add(v, req.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, version int16, body []byte) {
		r := kmsg.NewPtrAlterClientQuotasRequest()
		r.SetVersion(version & 1)
		if r.ReadFrom(body) != nil {
			return
		}
		for _, entry := range r.Entries {
			entity, set, remove, err := parseQuotaEntry(entry)
			if err != nil {
				continue
			}
			st := meta.NewState()
			if _, err := st.Apply(meta.NewCommand(&meta.AlterClientQuotasCmd{Entity: entity, Set: set, Remove: remove})); err != nil {
				t.Fatalf("accepted %+v, the store refuses it: %v", entry, err)
			}
		}
	})
}
