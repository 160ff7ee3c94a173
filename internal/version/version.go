// Package version is the one place Sluice's version comes from. Everything
// that reports a version (sluice --version, the management API's
// product_version, the AMQP server properties, sluice status, the startup
// log and the sluice_build_info metric) reads Get.
//
// A release build sets the version, and optionally the commit, at link
// time:
//
//	go build -ldflags "-X github.com/sluice-mq/sluice/internal/version.Version=1.2.0 \
//	    -X github.com/sluice-mq/sluice/internal/version.Commit=$(git rev-parse HEAD)" ./cmd/sluice
//
// Without them, Get falls back to what the Go toolchain stamped into the
// binary (runtime/debug.ReadBuildInfo): the module version (a tagged
// version for "go install ...@v1.2.0", a pseudo-version for "go build" in
// a git checkout) and the vcs.revision and vcs.modified build settings.
// A build with neither (go run, or a tree without git) reports Dev.
//
// This package imports nothing of Sluice's, so any package may use it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at build time with -ldflags -X; empty means "take it from the build
// info".
var (
	// Version is the release version, without a leading "v" (1.2.0).
	Version string
	// Commit is the source revision the binary was built from.
	Commit string
)

// Dev is the version of a build that carries no version at all.
const Dev = "0.0.0-dev"

// Info is what a binary knows of its own build.
type Info struct {
	Version  string `json:"version"`  // 1.2.0, a pseudo-version, or Dev
	Commit   string `json:"commit"`   // full revision, "" when unknown
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes
	Go       string `json:"go"`       // the Go toolchain, go1.26.0
	Platform string `json:"platform"` // GOOS/GOARCH
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Version, Commit, bi)
}

// resolve combines the link-time values with the build info (nil when the
// binary has none).
func resolve(version, commit string, bi *debug.BuildInfo) Info {
	info := Info{
		Version:  strings.TrimPrefix(strings.TrimSpace(version), "v"),
		Commit:   strings.TrimSpace(commit),
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		if info.Version == "" {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				info.Version = strings.TrimPrefix(v, "v")
			}
		}
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		var revision string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if info.Commit == "" {
			info.Commit = revision
		} else if revision != "" && revision != info.Commit {
			// -X Commit named another tree than the one built: the
			// stamped modified flag is not about it.
			info.Modified = false
		}
	}
	if info.Version == "" {
		info.Version = Dev
	}
	return info
}

// ShortCommit is the commit's first 12 characters, as git and Go's
// pseudo-versions abbreviate it.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String is the one-line form sluice --version prints:
// "1.2.0 (commit 0123456789ab, go1.26.0 linux/amd64)".
func (i Info) String() string {
	var details []string
	if c := i.ShortCommit(); c != "" {
		if i.Modified {
			c += ", modified"
		}
		details = append(details, "commit "+c)
	}
	details = append(details, i.Go+" "+i.Platform)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(details, ", "))
}
