package meta

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func init() { sinceV1["set_topic_permission"], sinceV1["clear_topic_permission"] = true, true } // tested here

// Topic permissions survive a restart and a snapshot, need their user and
// vhost, and go with either.
func TestTopicPermissionsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutVhost(Vhost{Name: "/"}))
	must(s.PutVhost(Vhost{Name: "v2"}))
	must(s.PutUser(User{Name: "alice"}))
	must(s.PutUser(User{Name: "bob"}))
	a := TopicPermission{User: "alice", Vhost: "/", Exchange: "amq.topic", Write: "^a", Read: "^b"}
	b := TopicPermission{User: "alice", Vhost: "/", Exchange: "logs", Write: "^{username}\\.", Read: ".*"}
	c := TopicPermission{User: "bob", Vhost: "v2", Exchange: "amq.topic", Write: ".*", Read: ".*"}
	for _, p := range []TopicPermission{b, a, c} {
		must(s.SetTopicPermission(p))
	}
	if err := s.SetTopicPermission(TopicPermission{User: "nobody", Vhost: "/", Exchange: "x"}); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.SetTopicPermission(TopicPermission{User: "alice", Vhost: "nowhere", Exchange: "x"}); !errors.Is(err, ErrUnknownVhost) {
		t.Fatalf("unknown vhost: %v", err)
	}
	if got := s.TopicPermissions("alice", "/"); !slices.Equal(got, []TopicPermission{a, b}) {
		t.Fatalf("alice's: %v", got)
	}
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.TopicPermissions("", ""); !slices.Equal(got, []TopicPermission{a, b, c}) {
		t.Fatalf("after replay: %v", got)
	}
	must(s.ClearTopicPermission("alice", "/", "logs"))
	must(s.ClearTopicPermission("alice", "/", "logs")) // nothing: no write
	must(s.DeleteVhost("v2"))
	if got := s.TopicPermissions("", ""); !slices.Equal(got, []TopicPermission{a}) {
		t.Fatalf("after clear and vhost delete: %v", got)
	}
	s.mu.RLock()
	enc, err := json.Marshal(s.state)
	s.mu.RUnlock()
	must(err)
	st := NewState()
	must(json.Unmarshal(enc, st))
	if got := st.TopicPermissions("", ""); !slices.Equal(got, []TopicPermission{a}) {
		t.Fatalf("after snapshot: %v", got)
	}
	must(s.DeleteUser("alice"))
	if got := s.TopicPermissions("", ""); len(got) != 0 {
		t.Fatalf("after deleting the user: %v", got)
	}
}
