package broker

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestCleanerCheckpoint: the checkpoint reads back what was saved; a
// damaged, truncated or missing file reads as nothing (all dirty: safe).
func TestCleanerCheckpoint(t *testing.T) {
	dir := t.TempDir()
	if got := loadCleanerCheckpoint(dir); got != nil {
		t.Fatalf("missing file read as %v", got)
	}
	want := map[cleanerKey]int64{{"orders", 0}: 1200, {"orders", 3}: 0, {"state.v2", 1}: 99}
	if err := saveCleanerCheckpoint(dir, want); err != nil {
		t.Fatal(err)
	}
	if got := loadCleanerCheckpoint(dir); !maps.Equal(got, want) {
		t.Fatalf("read back %v, want %v", got, want)
	}
	path := filepath.Join(dir, cleanerCheckpointName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte(nil), data[:30]...), append([]byte{data[30] ^ 1}, data[31:]...)...),
		"truncated": data[:len(data)-12],
		"empty":     nil,
	} {
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := loadCleanerCheckpoint(dir); got != nil {
			t.Fatalf("%s file read as %v", name, got)
		}
	}
}
