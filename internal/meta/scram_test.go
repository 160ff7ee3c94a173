package meta

import (
	"bytes"
	"errors"
	"testing"
)

func scramCred(mech string) ScramCredential {
	return ScramCredential{Mechanism: mech, Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte("stored"), ServerKey: []byte("server")}
}

// A user's SCRAM credentials survive the command log and a snapshot, and
// malformed ones are refused.
func TestUserScramCredentials(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(2)) // snapshots as it goes
	u := User{Name: "alice", PasswordHash: "h", Scram: []ScramCredential{scramCred("SCRAM-SHA-256"), scramCred("SCRAM-SHA-512")}}
	must(t, s.PutUser(u))
	for _, bad := range [][]ScramCredential{
		{scramCred("SCRAM-SHA-1")},
		{scramCred("SCRAM-SHA-256"), scramCred("SCRAM-SHA-256")},
		{{Mechanism: "SCRAM-SHA-512", Salt: []byte("s"), Iterations: 0, StoredKey: []byte("a"), ServerKey: []byte("b")}},
		{{Mechanism: "SCRAM-SHA-512", Iterations: 4096, StoredKey: []byte("a"), ServerKey: []byte("b")}},
	} {
		if err := s.PutUser(User{Name: "bob", Scram: bad}); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("PutUser with %+v: %v, want ErrInvalidCommand", bad, err)
		}
	}
	must(t, s.PutUser(User{Name: "carol"}))
	must(t, s.DeleteUser("carol"))
	got, _ := s.User("alice")
	got.Scram[0].Salt[0] = 'X' // a copy: the state must not change
	check := func(s *Store) {
		t.Helper()
		got, ok := s.User("alice")
		if !ok || len(got.Scram) != 2 || got.Scram[1].Mechanism != "SCRAM-SHA-512" ||
			!bytes.Equal(got.Scram[0].Salt, []byte("salt")) || got.Scram[0].Iterations != 4096 ||
			!bytes.Equal(got.Scram[1].StoredKey, []byte("stored")) || !bytes.Equal(got.Scram[1].ServerKey, []byte("server")) {
			t.Errorf("alice = %+v", got)
		}
		if _, ok := s.User("bob"); ok {
			t.Error("bob exists")
		}
	}
	check(s)
	must(t, s.Close())
	s = openStore(t, dir, Options{})
	check(s)
	must(t, s.Close())
}
