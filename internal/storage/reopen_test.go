package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
	"time"
)

const testTimeout = 10 * time.Second

func sameBatches(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestRecoverAfterFault drives a log into each write fault, checks that
// nothing it refused is readable or comes back after a restart, and that
// Recover reopens it in place: offsets continue after the last durable
// record and the same Log value takes appends again.
func TestRecoverAfterFault(t *testing.T) {
	eio := &fs.PathError{Op: "fsync", Path: "x", Err: syscall.EIO}
	faults := []struct {
		name  string
		arm   func(*FaultFS)
		clear func(*FaultFS)
	}{
		{"fsync EIO", func(f *FaultFS) { f.FailSync(eio) }, func(f *FaultFS) { f.FailSync(nil) }},
		{"disk full mid-write", func(f *FaultFS) { f.SetDiskBudget(100) }, func(f *FaultFS) { f.SetDiskBudget(-1) }},
		{"disk full at once", func(f *FaultFS) { f.SetDiskBudget(0) }, func(f *FaultFS) { f.SetDiskBudget(-1) }},
	}
	// Faults hit the data files only, or every file: then index writes
	// and the fsyncs of a roll (data, both indexes, the directory) fail too.
	filters := map[string]func(string) bool{"data": onlyData, "all": nil}
	for _, fault := range faults {
		for _, pipelined := range []bool{false, true} {
			for _, roll := range []bool{false, true} {
				for files, filter := range filters {
					name := fmt.Sprintf("%s/pipelined=%v/roll=%v/files=%s", fault.name, pipelined, roll, files)
					t.Run(name, func(t *testing.T) {
						mem := NewMemFS()
						ffs := NewFaultFS(mem)
						ffs.SetFilter(filter)
						dir := "/d/log"
						o := Options{ReadBeforeSync: pipelined}
						if roll {
							o.SegmentBytes = 1 // every batch rolls a segment
						}
						l := mustOpen(t, ffs, dir, o)
						var acked [][]byte
						for i := range 3 {
							b := batchOf(i, 2, 50, 1)
							mustAppend(t, l, b)
							acked = append(acked, withOffset(b, int64(2*i)))
						}
						durable := l.HighWatermark()

						fault.arm(ffs)
						var failed int
						for i := range 3 {
							a, err := l.Append(batchOf(10+i, 2, 200, 1))
							if err == nil {
								err = a.Wait()
							}
							if err == nil {
								t.Fatalf("append %d under %s succeeded", i, fault.name)
							}
							failed++
						}
						if l.Failed() == nil {
							t.Fatal("log not failed after a failed write")
						}
						if hw := l.HighWatermark(); hw != durable {
							t.Fatalf("high watermark %d past the durable %d", hw, durable)
						}
						// Still failed: the fault is there, Recover may fail or
						// succeed, but a write must not.
						l.Recover()
						if a, err := l.Append(batchOf(20, 1, 200, 1)); err == nil {
							if err := a.Wait(); err == nil {
								t.Fatal("append succeeded with the fault still armed")
							}
						}

						fault.clear(ffs)
						checkFor(t, testTimeout, func() error { return l.Recover() })
						if err := l.Failed(); err != nil {
							t.Fatalf("failed after Recover: %v", err)
						}
						if hw, end := l.HighWatermark(), l.ReadableEnd(); hw != durable || end != durable {
							t.Fatalf("after Recover hw %d, readable end %d, want %d", hw, end, durable)
						}
						if got := readLog(t, l); !sameBatches(got, acked) {
							t.Fatalf("after Recover the log holds %s, want %s", describe(got), describe(acked))
						}
						b := batchOf(30, 2, 50, 1)
						a := mustAppend(t, l, b)
						if a.BaseOffset != durable {
							t.Fatalf("first append after Recover at %d, want %d", a.BaseOffset, durable)
						}
						acked = append(acked, withOffset(b, durable))
						if err := l.Close(); err != nil {
							t.Fatal(err)
						}

						// What a restart finds: the acknowledged batches, nothing
						// of the refused ones, even from the page cache.
						l = mustOpen(t, mem, dir, o)
						defer l.Close()
						if got := readLog(t, l); !sameBatches(got, acked) {
							t.Fatalf("after restart the log holds %s, want %s", describe(got), describe(acked))
						}
					})
				}
			}
		}
	}
}

// TestFailedTailCutBeforeRestart: a log that failed and was never
// recovered (the broker killed first) must not bring back, from the page
// cache, the batches whose appends failed.
func TestFailedTailCutBeforeRestart(t *testing.T) {
	for _, pipelined := range []bool{false, true} {
		t.Run(fmt.Sprint("pipelined=", pipelined), func(t *testing.T) {
			mem := NewMemFS()
			ffs := NewFaultFS(mem)
			ffs.SetFilter(onlyData)
			dir := "/d/log"
			o := Options{ReadBeforeSync: pipelined}
			l := mustOpen(t, ffs, dir, o)
			b := batchOf(1, 1, 50, 1)
			mustAppend(t, l, b)
			ffs.FailSync(errors.New("EIO"))
			a, err := l.Append(batchOf(2, 1, 50, 1))
			if err != nil {
				t.Fatal(err)
			}
			if a.Wait() == nil {
				t.Fatal("append acknowledged through a failed fsync")
			}
			// The writer cuts the tail on its own, without Recover; the
			// cut itself is fsync'd, so let that through.
			ffs.FailSync(nil)
			checkFor(t, testTimeout, func() error {
				if n := fileSize(t, mem, segPath(dir, 0, logSuffix)); n != int64(len(b)) {
					return fmt.Errorf("data file %d bytes, want %d", n, len(b))
				}
				return nil
			})
			l2 := mustOpen(t, mem, dir, o) // a restart without closing l
			defer l2.Close()
			if got := readLog(t, l2); !sameBatches(got, [][]byte{withOffset(b, 0)}) {
				t.Fatalf("restart found %s", describe(got))
			}
		})
	}
}
