package meta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func init() {
	for _, k := range []string{"set_policy", "clear_policy", "set_operator_policy", "clear_operator_policy"} {
		sinceV1[k] = true
	}
}

// The log encoding of the policy commands, as written since they were
// added: it must never change.
func policyCommandBytes() []struct {
	cmd  Command
	want string
} {
	return []struct {
		cmd  Command
		want string
	}{
		{NewCommand(&SetPolicyCmd{Vhost: "/", Name: "ttl", Pattern: "^a", ApplyTo: "queues", Priority: 1, Definition: []byte(`{"message-ttl":10}`)}),
			`{"type":"set_policy","set_policy":{"vhost":"/","name":"ttl","pattern":"^a","apply_to":"queues","priority":1,"definition":{"message-ttl":10}}}`},
		{NewCommand(&ClearPolicyCmd{Vhost: "/", Name: "ttl"}),
			`{"type":"clear_policy","clear_policy":{"vhost":"/","name":"ttl"}}`},
		{NewCommand(&SetOperatorPolicyCmd{Vhost: "/", Name: "cap", Pattern: ".*", ApplyTo: "queues", Definition: []byte(`{"max-length":5}`)}),
			`{"type":"set_operator_policy","set_operator_policy":{"vhost":"/","name":"cap","pattern":".*","apply_to":"queues","priority":0,"definition":{"max-length":5}}}`},
		{NewCommand(&ClearOperatorPolicyCmd{Vhost: "/", Name: "cap"}),
			`{"type":"clear_operator_policy","clear_operator_policy":{"vhost":"/","name":"cap"}}`},
	}
}

func TestPolicyCommandEncoding(t *testing.T) {
	for _, tc := range policyCommandBytes() {
		b, err := encodeCommand(&tc.cmd)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s: got %s, %v\nwant %s", tc.cmd.Type, b, err, tc.want)
			continue
		}
		back, err := decodeCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := encodeCommand(&back)
		if !bytes.Equal(again, b) {
			t.Errorf("%s: decoded and re-encoded as %s", tc.cmd.Type, again)
		}
	}
}

func TestPoliciesApplyReplayAndSnapshot(t *testing.T) {
	// every 1000: the log replays them; every 2: snapshots carry them.
	for _, every := range []int{1000, 2} {
		t.Run(fmt.Sprint("snapshot every ", every), func(t *testing.T) { testPoliciesDurable(t, every) })
	}
}

func testPoliciesDurable(t *testing.T, every int) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions(every))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPolicy(Policy{Vhost: "nope", Name: "p", Definition: []byte(`{}`)}); !errors.Is(err, ErrUnknownVhost) {
		t.Errorf("policy in a missing vhost: %v", err)
	}
	if err := s.SetPolicy(Policy{Vhost: "/", Name: "p", Definition: []byte(`[1]`)}); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("definition not an object: %v", err)
	}
	must(s.PutVhost(Vhost{Name: "/"}))
	must(s.PutVhost(Vhost{Name: "other"}))
	must(s.SetPolicy(Policy{Vhost: "/", Name: "b", Pattern: ".*", ApplyTo: "all", Definition: []byte(`{"max-length":1}`)}))
	must(s.SetPolicy(Policy{Vhost: "/", Name: "a", Pattern: "^q", ApplyTo: "queues", Priority: 3, Definition: []byte(`{"message-ttl":5}`)}))
	must(s.SetPolicy(Policy{Vhost: "/", Name: "b", Pattern: "x", ApplyTo: "exchanges", Definition: []byte(`{"alternate-exchange":"ae"}`)}))
	must(s.SetPolicy(Policy{Vhost: "other", Name: "gone", Pattern: ".*", ApplyTo: "all", Definition: []byte(`{}`)}))
	must(s.SetOperatorPolicy(Policy{Vhost: "/", Name: "cap", Pattern: ".*", ApplyTo: "queues", Definition: []byte(`{"max-length":100}`)}))
	if err := s.ClearPolicy("/", "cap"); !errors.Is(err, ErrUnknownPolicy) {
		t.Errorf("clearing an operator policy as a policy: %v", err)
	}
	must(s.DeleteVhost("other"))

	check := func(s *Store) {
		t.Helper()
		ps := s.Policies("")
		if len(ps) != 2 || ps[0].Name != "a" || ps[1].Name != "b" || ps[1].Pattern != "x" || string(ps[1].Definition) != `{"alternate-exchange":"ae"}` {
			t.Errorf("policies: %+v", ps)
		}
		ops := s.OperatorPolicies("/")
		if len(ops) != 1 || ops[0].Name != "cap" || string(ops[0].Definition) != `{"max-length":100}` {
			t.Errorf("operator policies: %+v", ops)
		}
		if ps := s.Policies("other"); len(ps) != 0 {
			t.Errorf("a deleted vhost's policies: %+v", ps)
		}
	}
	check(s)
	must(s.Close())
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); (err == nil) != (every == 2) {
		t.Fatalf("snapshot file with every %d: %v", every, err)
	}

	s, err = Open(dir, testOptions(every)) // replay, from a snapshot with every 2
	must(err)
	check(s)
	s.mu.RLock()
	snap := mustJSON(t, s.state)
	s.mu.RUnlock()
	st := NewState()
	must(st.UnmarshalJSON(snap))
	if again := mustJSON(t, st); !bytes.Equal(again, snap) {
		t.Errorf("snapshot round trip:\n got %s\nwant %s", again, snap)
	}
	must(s.ClearPolicy("/", "a"))
	must(s.ClearOperatorPolicy("/", "cap"))
	if len(s.Policies("/")) != 1 || len(s.OperatorPolicies("")) != 0 {
		t.Errorf("after clear: %+v %+v", s.Policies("/"), s.OperatorPolicies(""))
	}
	must(s.Close())
}

// FuzzApplyPolicy applies arbitrary policy command payloads to a state
// with policies: no panic, a refusal changes nothing, and the state
// round-trips through its snapshot encoding.
func FuzzApplyPolicy(f *testing.F) {
	for _, tc := range policyCommandBytes() {
		f.Add([]byte(tc.want))
	}
	f.Add([]byte(`{"type":"set_policy","set_policy":{"vhost":"/","name":"x","definition":[1]}}`))
	f.Add([]byte(`{"type":"set_operator_policy","set_operator_policy":{"vhost":"/","name":"","definition":{}}}`))
	f.Add([]byte(`{"type":"set_policy","set_policy":{"vhost":"nope","name":"x","definition":{"a":{"b":[1,2]}}}}`))
	f.Add([]byte(`{"type":"clear_operator_policy","clear_operator_policy":{"vhost":"/","name":"ttl"}}`))
	seed := []Command{
		putVhostCmd("/"), putVhostCmd("v2"),
		NewCommand(&SetPolicyCmd{Vhost: "/", Name: "ttl", Pattern: ".*", ApplyTo: "all", Definition: []byte(`{"message-ttl":1}`)}),
		NewCommand(&SetOperatorPolicyCmd{Vhost: "v2", Name: "cap", Pattern: ".*", ApplyTo: "queues", Definition: []byte(`{"max-length":1}`)}),
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		st := NewState()
		for _, c := range seed {
			if _, err := st.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
		before := mustJSON(t, st)
		cmd, err := decodeCommand(payload)
		if err != nil {
			return
		}
		if _, err := st.Apply(cmd); err != nil && !bytes.Equal(before, mustJSON(t, st)) {
			t.Fatalf("refused command (%v) changed the state", err)
		}
		after := mustJSON(t, st)
		back := NewState()
		if err := back.UnmarshalJSON(after); err != nil {
			t.Fatalf("state does not decode: %v\n%s", err, after)
		}
		if !bytes.Equal(mustJSON(t, back), after) {
			t.Fatal("state does not round-trip")
		}
	})
}
