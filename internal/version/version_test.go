package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/sluice-mq/sluice", Version: "v0.0.0-20261204171940-7ac882f1e2a3+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "7ac882f1e2a3c4d5e6f708192a3b4c5d6e7f8091"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		want            Info
		str             string
	}{
		{"link-time values win", "v1.2.0", "0123456789abcdef", stamped,
			Info{Version: "1.2.0", Commit: "0123456789abcdef", Go: "go1.26.0", Platform: platform},
			"1.2.0 (commit 0123456789ab, go1.26.0 " + platform + ")"},
		{"link-time version, stamped commit", "1.2.0", "", stamped,
			Info{Version: "1.2.0", Commit: "7ac882f1e2a3c4d5e6f708192a3b4c5d6e7f8091", Modified: true, Go: "go1.26.0", Platform: platform},
			"1.2.0 (commit 7ac882f1e2a3, modified, go1.26.0 " + platform + ")"},
		{"stamped pseudo-version", "", "", stamped,
			Info{Version: "0.0.0-20261204171940-7ac882f1e2a3+dirty", Commit: "7ac882f1e2a3c4d5e6f708192a3b4c5d6e7f8091", Modified: true, Go: "go1.26.0", Platform: platform},
			"0.0.0-20261204171940-7ac882f1e2a3+dirty (commit 7ac882f1e2a3, modified, go1.26.0 " + platform + ")"},
		{"go run: (devel), no vcs", "", "", devel,
			Info{Version: Dev, Go: "go1.26.0", Platform: platform},
			Dev + " (go1.26.0 " + platform + ")"},
		{"no build info", "", "", nil,
			Info{Version: Dev, Go: runtime.Version(), Platform: platform},
			Dev + " (" + runtime.Version() + " " + platform + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.version, tc.commit, tc.bi)
			if got != tc.want {
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Errorf("String = %q, want %q", s, tc.str)
			}
		})
	}
}

// TestGet checks the binary's own answer is complete: a test binary has
// build info, so a version and the toolchain are always there.
func TestGet(t *testing.T) {
	info := Get()
	if info.Version == "" || info.Go == "" || info.Platform == "" {
		t.Fatalf("Get() = %+v: a field is empty", info)
	}
}
