package testutil

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a failure instead of stopping the test.
type fakeT struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatal(args ...any) {
	f.failed.Store(true)
	if len(args) > 0 {
		if err, ok := args[0].(error); ok {
			f.msg = err.Error()
		}
	}
}

func TestWaitForSeesAConditionBecomeTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	WaitFor(t, 5*time.Second, "three ticks", func() bool { return n.Load() >= 3 })
}

func TestWaitForFailsAfterTheTimeout(t *testing.T) {
	ft := &fakeT{}
	WaitFor(ft, 10*time.Millisecond, "the impossible", func() bool { return false })
	if !ft.failed.Load() || ft.msg != "timed out after 10ms waiting for the impossible" {
		t.Fatalf("failed %v with %q", ft.failed.Load(), ft.msg)
	}
}

func TestCheckForReportsTheLastError(t *testing.T) {
	ft := &fakeT{}
	CheckFor(ft, 5*time.Millisecond, func() error { return errors.New("still 3 of 4") })
	if !ft.failed.Load() || ft.msg != "still 3 of 4" {
		t.Fatalf("failed %v with %q", ft.failed.Load(), ft.msg)
	}
}
