package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFileAtomic replaces the file whole and leaves no temporary file;
// a failed write leaves the old file as it was.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFileAtomic(dir, "f", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dir, "f", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "two" {
		t.Fatalf("read %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f"+TmpExt)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	// The temporary file's name taken by a directory: the write fails.
	if err := os.Mkdir(filepath.Join(dir, "g"+TmpExt), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "g"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dir, "g", []byte("new")); err == nil {
		t.Fatal("a write through an unusable temporary file succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "g")); string(b) != "old" {
		t.Fatalf("the old file became %q", b)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}
