package test

import (
	"bytes"
	"testing"
)

// TestDebugPprof: --debug-pprof, given alone as a boolean flag, serves
// Go's profiler on the HTTP listener (an index and a CPU profile in
// pprof's gzip format); without it the profiler is not there.
func TestDebugPprof(t *testing.T) {
	b := startBroker(t, "--debug-pprof")
	index := b.api(t, "GET", "/debug/pprof/", nil, 200)
	if !bytes.Contains(index, []byte("goroutine")) {
		t.Fatalf("/debug/pprof/ does not list the profiles:\n%s", clip(string(index)))
	}
	prof := b.api(t, "GET", "/debug/pprof/profile?seconds=1", nil, 200)
	if len(prof) < 2 || prof[0] != 0x1f || prof[1] != 0x8b {
		t.Fatalf("the CPU profile is not gzip (pprof): %d bytes starting %q", len(prof), clip(string(prof)))
	}

	off := startBroker(t)
	if code, body := off.httpDo(t, "guest", "guest", "GET", "/debug/pprof/", nil); code == 200 && bytes.Contains(body, []byte("goroutine")) {
		t.Fatalf("the profiler is served without --debug-pprof")
	}
}
