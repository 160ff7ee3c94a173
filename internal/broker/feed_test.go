package broker

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/storage"
)

// TestFeedCheckpoint: a checkpoint reads back as written; a missing one
// is os.ErrNotExist (a partition never fed: from its start); a torn or
// altered one is refused, never misread (the feed then scans its queue
// from the start).
func TestFeedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	want := checkpoint{Next: 1234, QueueEnd: 99, Ends: map[string]int64{"a b": 7, "q": 0}}
	if err := writeCheckpoint(dir, 3, want, true); err != nil {
		t.Fatal(err)
	}
	got, err := readCheckpoint(dir, 3)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	if _, err := readCheckpoint(dir, 4); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing checkpoint: %v", err)
	}
	name := filepath.Join(dir, "3")
	whole, _ := os.ReadFile(name)
	for _, bad := range [][]byte{
		whole[:len(whole)/2],                        // torn
		append([]byte("{\"next\":9"), whole[9:]...), // altered
		{},
	} {
		os.WriteFile(name, bad, 0o644)
		if cp, err := readCheckpoint(dir, 3); !errors.Is(err, storage.ErrCorruptBatch) {
			t.Errorf("checkpoint %q read as %+v, %v", bad, cp, err)
		}
	}
}
