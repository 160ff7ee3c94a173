package meta

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/sluice-mq/sluice/internal/auth"
)

func init() { sinceV1["create_acls"], sinceV1["delete_acls"] = true, true } // tested here

func testACL(name string, op auth.Operation, perm auth.PermissionType) auth.ACL {
	return auth.ACL{ResourceType: auth.ResourceTopic, ResourceName: name, PatternType: auth.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: op, Permission: perm}
}

// ACLs survive a restart (log replay) and a snapshot; duplicates are kept
// once; deleting by filter removes what the filter selects.
func TestACLsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := testACL("orders", auth.OpRead, auth.PermAllow)
	b := testACL("orders", auth.OpWrite, auth.PermDeny)
	c := testACL("payments", auth.OpAll, auth.PermAllow)
	if err := s.CreateACLs([]auth.ACL{c, a}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateACLs([]auth.ACL{a, b}); err != nil {
		t.Fatal(err)
	}
	want := []auth.ACL{a, b, c}
	if got := s.ACLs(); !slices.Equal(got, want) {
		t.Fatalf("ACLs %v, want %v", got, want)
	}
	bad := a
	bad.Operation = auth.OpAny
	if err := s.CreateACLs([]auth.ACL{c, bad}); !errors.Is(err, auth.ErrInvalidACL) {
		t.Fatalf("invalid ACL: %v", err)
	}
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ACLs(); !slices.Equal(got, want) {
		t.Fatalf("after replay: ACLs %v, want %v", got, want)
	}
	name := "orders"
	deleted, err := s.DeleteACLs([]auth.ACLFilter{
		{ResourceType: auth.ResourceTopic, ResourceName: &name, PatternType: auth.PatternLiteral, Operation: auth.OpAny, Permission: auth.PermDeny},
		{ResourceType: auth.ResourceGroup, PatternType: auth.PatternAny, Operation: auth.OpAny, Permission: auth.PermAny},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 2 || !slices.Equal(deleted[0], []auth.ACL{b}) || len(deleted[1]) != 0 {
		t.Fatalf("deleted %v", deleted)
	}
	want = []auth.ACL{a, c}
	if got := s.ACLs(); !slices.Equal(got, want) {
		t.Fatalf("after delete: ACLs %v, want %v", got, want)
	}
	s.mu.RLock()
	enc, err := json.Marshal(s.state)
	s.mu.RUnlock()
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := NewState()
	if err := json.Unmarshal(enc, st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.ACLs(), want) {
		t.Fatalf("after snapshot: ACLs %v, want %v", st.ACLs(), want)
	}
	// A snapshot with the ACLs out of order or repeated is refused.
	var j map[string]json.RawMessage
	if err := json.Unmarshal(enc, &j); err != nil {
		t.Fatal(err)
	}
	j["acls"], _ = json.Marshal([]auth.ACL{c, a})
	swapped, _ := json.Marshal(j)
	if err := json.Unmarshal(swapped, NewState()); err == nil {
		t.Fatal("a snapshot with unsorted ACLs loaded")
	}
	j["acls"], _ = json.Marshal([]auth.ACL{a, a})
	dup, _ := json.Marshal(j)
	if err := json.Unmarshal(dup, NewState()); err == nil {
		t.Fatal("a snapshot with duplicate ACLs loaded")
	}
}
