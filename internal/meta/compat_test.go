package meta

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// testdata/v1-meta.log is a metadata log with one command of every kind
// that existed before the command registry, written by that code (with
// v1-state.json, the state it replays to, and v1-snapshot.json, a snapshot
// of that state). They must keep loading, and the registry must encode
// every command to exactly the bytes that were logged.

func TestV1LogReplaysByteForByte(t *testing.T) {
	b, err := os.ReadFile("testdata/v1-meta.log")
	if err != nil {
		t.Fatal(err)
	}
	base, err := parseLogHeader(b[:logHeaderSize])
	if err != nil || base != 1 {
		t.Fatalf("header: base %d, %v", base, err)
	}
	body := b[logHeaderSize:]
	st := NewState()
	seen := map[string]bool{}
	valid, stop, err := scanRecords(bytes.NewReader(body), int64(len(body)), func(payload []byte) error {
		cmd, err := decodeCommand(payload)
		if err != nil {
			t.Fatalf("decode %s: %v", payload, err)
		}
		seen[cmd.Type] = true
		again, err := encodeCommand(&cmd)
		if err != nil {
			t.Fatalf("encode %s: %v", payload, err)
		}
		if !bytes.Equal(again, payload) {
			t.Errorf("re-encoded differently:\n got %s\nwant %s", again, payload)
		}
		if _, err := st.Apply(cmd); err != nil {
			t.Errorf("apply %s: %v", payload, err)
		}
		return nil
	})
	if err != nil || stop != nil || valid != int64(len(body)) {
		t.Fatalf("scan: valid %d of %d, stop %v, err %v", valid, len(body), stop, err)
	}
	for _, name := range CommandNames() {
		if !seen[name] && !sinceV1[name] {
			t.Errorf("the v1 log has no %s command: add one when a kind is added", name)
		}
	}
	want, err := os.ReadFile("testdata/v1-state.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, st); !bytes.Equal(got, want) {
		t.Errorf("state:\n got %s\nwant %s", got, want)
	}
}

// sinceV1 names the kinds registered after the v1 log was written; each
// has its own test of its log encoding (for policies: policy_test.go).
var sinceV1 = map[string]bool{"put_transaction": true, "end_transaction": true,
	"reassign_partitions": true, "complete_reassignment": true, "elect_preferred_leaders": true,
	"record_leaders": true}

func TestV1DirectoryOpens(t *testing.T) {
	want, err := os.ReadFile("testdata/v1-state.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []struct{ from, to string }{
		{"testdata/v1-meta.log", logName},
		{"testdata/v1-snapshot.json", snapshotName},
	} {
		t.Run(file.to, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(file.from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file.to), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.mu.RLock()
			got := mustJSON(t, s.state)
			s.mu.RUnlock()
			if !bytes.Equal(got, want) {
				t.Errorf("state:\n got %s\nwant %s", got, want)
			}
			if oc, ok := s.GroupOffset("billing", "orders", 0); !ok || oc.Offset != 42 || oc.Metadata != "méta" {
				t.Errorf("billing offset: %+v %v", oc, ok)
			}
		})
	}
}

func TestRegistryNamesAndPayloadsAreUnique(t *testing.T) {
	for _, k := range commandKinds {
		c := NewCommand(k.newPayload())
		if c.Type != k.name {
			t.Errorf("%T named %q, registered as %q", k.payload, c.Type, k.name)
		}
	}
	if _, err := encodeCommand(&Command{Type: "bind", Payload: &UnbindCmd{}}); err == nil {
		t.Error("a payload of another kind was encoded")
	}
}
