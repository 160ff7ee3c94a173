package storage

import (
	"fmt"
	"testing"
	"time"
)

// With ReadBeforeSync, an append is readable while its fsync is under
// way, and only the high watermark and Wait wait for the disk; without
// it, nothing is readable before the fsync.
func TestReadBeforeSync(t *testing.T) {
	for _, early := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[early], func(t *testing.T) {
			ffs := NewFaultFS(NewMemFS())
			ffs.SetFilter(onlyData)
			l := mustOpen(t, ffs, "/d/q", Options{ReadBeforeSync: early})
			defer l.Close()
			ffs.HoldSyncs()
			defer ffs.ReleaseSyncs() // a no-op once released
			changed := l.Changed()
			writes := ffs.Writes()
			app, err := l.Append(batchOf(1, 3, 100, 1))
			if err != nil {
				t.Fatal(err)
			}
			// Once the data file is written, the writer goes on to the
			// fsync, where HoldSyncs holds it.
			checkFor(t, 10*time.Second, func() error {
				if ffs.Writes() == writes {
					return fmt.Errorf("the batch is not written yet")
				}
				return nil
			})
			if early {
				checkFor(t, 10*time.Second, func() error {
					if end := l.ReadableEnd(); end != 3 {
						return fmt.Errorf("readable end %d before the fsync, want 3", end)
					}
					return nil
				})
				if b, err := l.Read(0, 1<<20); err != nil || len(b) == 0 {
					t.Fatalf("read before the fsync: %d bytes, %v; want the batch", len(b), err)
				}
				select {
				case <-changed:
				default:
					t.Fatal("Changed did not fire when the batch became readable")
				}
			} else {
				deadline := time.Now().Add(50 * time.Millisecond)
				for time.Now().Before(deadline) {
					if b, err := l.Read(0, 1<<20); err != nil || len(b) != 0 || l.ReadableEnd() != 0 {
						t.Fatalf("read before the fsync: %d bytes, %v, readable end %d; want nothing", len(b), err, l.ReadableEnd())
					}
					time.Sleep(time.Millisecond)
				}
			}
			if hw := l.HighWatermark(); hw != 0 {
				t.Fatalf("high watermark %d before the fsync, want 0", hw)
			}
			select {
			case <-app.Done():
				t.Fatal("the append completed before its fsync")
			default:
			}
			ffs.ReleaseSyncs()
			if err := app.Wait(); err != nil {
				t.Fatal(err)
			}
			if hw, end := l.HighWatermark(), l.ReadableEnd(); hw != 3 || end != 3 {
				t.Fatalf("after the fsync: high watermark %d, readable end %d; want 3 and 3", hw, end)
			}
			if got := readLog(t, l); len(got) != 1 {
				t.Fatalf("read %d batches after the fsync, want 1", len(got))
			}
		})
	}
}
