package broker

import (
	"errors"
	"testing"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

func compiled(t *testing.T, name string, prio int, applyTo, pattern, def string) *compiledPolicy {
	t.Helper()
	p, _, err := checkPolicy(Policy{Vhost: "/", Name: name, Priority: prio, ApplyTo: applyTo, Pattern: pattern, Definition: []byte(def)}, false)
	if err != nil {
		t.Fatal(err)
	}
	return compilePolicies([]Policy{p})[0]
}

func TestPolicyPrecedence(t *testing.T) {
	user := compiled(t, "u", 0, "queues", ".*", `{"message-ttl":500,"max-length":20,"dead-letter-exchange":"from-policy","overflow":"reject-publish","ha-mode":"all"}`)
	op := compiled(t, "o", 0, "queues", ".*", `{"max-length":10,"expires":60000}`)
	for _, tc := range []struct {
		name     string
		args     fieldtable.Table
		user, op *compiledPolicy
		want     fieldtable.Table
	}{
		{"policy fills what the arguments leave", nil, user, nil,
			fieldtable.Table{"x-message-ttl": int64(500), "x-max-length": int64(20), "x-dead-letter-exchange": "from-policy", "x-overflow": "reject-publish"}},
		{"lower numeric value wins, argument wins for the others",
			fieldtable.Table{"x-message-ttl": int32(1000), "x-max-length": int32(5), "x-dead-letter-exchange": "mine"}, user, nil,
			fieldtable.Table{"x-message-ttl": int64(500), "x-max-length": int32(5), "x-dead-letter-exchange": "mine", "x-overflow": "reject-publish"}},
		{"operator policy caps the argument", fieldtable.Table{"x-max-length": int32(100)}, nil, op,
			fieldtable.Table{"x-max-length": int64(10), "x-expires": int64(60000)}},
		{"operator policy caps the user policy", nil, user, op,
			fieldtable.Table{"x-message-ttl": int64(500), "x-max-length": int64(10), "x-expires": int64(60000), "x-dead-letter-exchange": "from-policy", "x-overflow": "reject-publish"}},
		{"operator policy leaves a lower argument", fieldtable.Table{"x-max-length": int32(3)}, nil, op,
			fieldtable.Table{"x-max-length": int32(3), "x-expires": int64(60000)}},
	} {
		got, ap := queueEffectiveArgs(tc.args, QueueTypeClassic, tc.user, tc.op)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if !fieldtable.Equal(got[k], v) {
				t.Errorf("%s: %s = %#v, want %#v", tc.name, k, got[k], v)
			}
		}
		if tc.user != nil && ap.policy != "u" || tc.op != nil && ap.operator != "o" {
			t.Errorf("%s: applied %+v", tc.name, ap)
		}
	}
	// delivery-limit -1 is no limit: it neither caps nor lifts a cap.
	unlimited := compiled(t, "u", 0, "queues", ".*", `{"delivery-limit":-1}`)
	limited := compiled(t, "o", 0, "queues", ".*", `{"delivery-limit":3}`)
	for _, pair := range [][2]*compiledPolicy{{unlimited, limited}, {limited, unlimited}} {
		got, _ := queueEffectiveArgs(fieldtable.Table{"x-delivery-limit": int32(7)}, QueueTypeClassic, pair[0], pair[1])
		if n, _ := IntArg(got["x-delivery-limit"]); n != 3 {
			t.Errorf("delivery-limit 7 with policies -1 and 3: %v", got["x-delivery-limit"])
		}
	}
	_, ap := queueEffectiveArgs(nil, QueueTypeClassic, user, op)
	if n, _ := policyInt(ap.effective["max-length"]); n != 10 || ap.effective["ha-mode"] != "all" {
		t.Errorf("effective definition %v", ap.effective)
	}
}

func TestPolicyMatching(t *testing.T) {
	ps := compilePolicies([]Policy{
		{Name: "low", Priority: 1, ApplyTo: "all", Pattern: "^orders", Definition: []byte(`{"max-length":1}`)},
		{Name: "high", Priority: 5, ApplyTo: "queues", Pattern: "^orders\\.", Definition: []byte(`{"max-length":2}`)},
		{Name: "b-tie", Priority: 1, ApplyTo: "all", Pattern: "^tie", Definition: []byte(`{"max-length":3}`)},
		{Name: "a-tie", Priority: 1, ApplyTo: "all", Pattern: "^tie", Definition: []byte(`{"max-length":4}`)},
		{Name: "streams", Priority: 9, ApplyTo: "streams", Pattern: ".*", Definition: []byte(`{"max-age":"1h"}`)},
		{Name: "classic", Priority: 8, ApplyTo: "classic_queues", Pattern: "^c", Definition: []byte(`{"max-length":5}`)},
	})
	for _, tc := range []struct{ name, typ, want string }{
		{"orders.new", QueueTypeClassic, "high"},
		{"orders.new", "", "low"}, // an exchange
		{"orders", QueueTypeQuorum, "low"},
		{"tie", QueueTypeClassic, "a-tie"},
		{"c1", QueueTypeStream, "streams"},
		{"c1", QueueTypeClassic, "classic"},
		{"c1", QueueTypeQuorum, ""},
		{"other", QueueTypeClassic, ""},
	} {
		got := ""
		if p := matchPolicy(ps, tc.name, tc.typ); p != nil {
			got = p.def.Name
		}
		if got != tc.want {
			t.Errorf("%s (%q): matched %q, want %q", tc.name, tc.typ, got, tc.want)
		}
	}
}

func TestCheckPolicy(t *testing.T) {
	for _, tc := range []struct {
		applyTo, pattern, def string
		operator              bool
		ok                    bool
	}{
		{"queues", ".*", `{"message-ttl":1000}`, false, true},
		{"", ".*", `{"alternate-exchange":"ae"}`, false, true},
		{"queues", ".*", `{"ha-mode":"exactly","ha-params":2,"ha-sync-mode":"automatic"}`, false, true},
		{"streams", ".*", `{"max-age":"7D","stream-max-segment-size-bytes":1000000}`, false, true},
		{"queues", ".*", `{"queue-mode":"lazy","queue-version":2,"queue-leader-locator":"balanced"}`, false, true},
		{"queues", ".*", `{"max-length":5}`, true, true},
		{"queues", ".*", `{"message-ttl":-1}`, false, false},
		{"queues", ".*", `{"message-ttl":"10"}`, false, false},
		{"queues", ".*", `{"expires":0}`, false, false},
		{"queues", ".*", `{"no-such-key":1}`, false, false},
		{"queues", ".*", `{}`, false, false},
		{"queues", "(", `{"max-length":1}`, false, false},
		{"everything", ".*", `{"max-length":1}`, false, false},
		{"queues", ".*", `{"overflow":"drop-tail"}`, false, false},
		{"queues", ".*", `{"max-age":"7 days"}`, false, false},
		{"queues", ".*", `{"ha-mode":"exactly"}`, false, false},
		{"queues", ".*", `{"dead-letter-exchange":"dlx"}`, true, false},
	} {
		_, _, err := checkPolicy(Policy{Name: "p", ApplyTo: tc.applyTo, Pattern: tc.pattern, Definition: []byte(tc.def)}, tc.operator)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidPolicy)) {
			t.Errorf("%s %s %s operator=%v: %v", tc.applyTo, tc.pattern, tc.def, tc.operator, err)
		}
	}
}

// FuzzCheckPolicy: whatever a PUT carries, checking it never panics; a
// policy accepted is stored in a canonical form that checks again to the
// same bytes, and applies to a queue of any type without error (so a
// policy accepted can never leave a queue unconfigurable).
func FuzzCheckPolicy(f *testing.F) {
	f.Add("queues", ".*", []byte(`{"message-ttl":1000,"dead-letter-exchange":"dlx"}`), false)
	f.Add("streams", "^s", []byte(`{"max-age":"7D","max-length-bytes":10}`), false)
	f.Add("all", "(", []byte(`{"max-length":1}`), true)
	f.Add("queues", ".*", []byte(`{"ha-mode":"nodes","ha-params":["a"]}`), false)
	f.Add("", "", []byte(`{"delivery-limit":-1,"expires":5}`), true)
	f.Fuzz(func(t *testing.T, applyTo, pattern string, def []byte, operator bool) {
		p, set, err := checkPolicy(Policy{Name: "p", ApplyTo: applyTo, Pattern: pattern, Definition: def}, operator)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("refused with %v, not ErrInvalidPolicy", err)
			}
			return
		}
		again, _, err := checkPolicy(p, operator)
		if err != nil || string(again.Definition) != string(p.Definition) {
			t.Fatalf("canonical %s checks as %s, %v", p.Definition, again.Definition, err)
		}
		cp := compilePolicies([]Policy{p})
		if len(cp) != 1 || len(cp[0].set) != len(set) {
			t.Fatalf("accepted policy does not compile: %s", p.Definition)
		}
		for _, typ := range []string{QueueTypeClassic, QueueTypeQuorum, QueueTypeStream} {
			var user, op *compiledPolicy
			if operator {
				op = cp[0]
			} else {
				user = cp[0]
			}
			args, _ := queueEffectiveArgs(fieldtable.Table{"x-queue-type": typ}, typ, user, op)
			if _, err := parseQueueArgs(args, true, false, false); err != nil {
				t.Fatalf("policy %s on a %s queue: %v", p.Definition, typ, err)
			}
		}
	})
}
