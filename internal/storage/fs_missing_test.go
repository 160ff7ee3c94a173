package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// With no descriptor free, open(2) fails with EMFILE before it looks at
// the path: missingOr tells a missing file from a real shortage.
func TestMissingOrTellsMissingFromShortage(t *testing.T) {
	dir := t.TempDir()
	emfile := &fs.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}
	if err := missingOr(filepath.Join(dir, "absent"), emfile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file under EMFILE: %v, want not-exist", err)
	}
	present := filepath.Join(dir, "present")
	if err := os.WriteFile(present, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := missingOr(present, emfile); !errors.Is(err, syscall.EMFILE) {
		t.Errorf("existing file under EMFILE: %v, want EMFILE kept", err)
	}
	other := &fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}
	if err := missingOr(filepath.Join(dir, "absent"), other); !errors.Is(err, syscall.EACCES) {
		t.Errorf("EACCES: %v, want it kept", err)
	}
}
