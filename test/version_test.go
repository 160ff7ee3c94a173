package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The version comes from one place (internal/version), set at link time
// with -ldflags -X, and every surface reports the same one: sluice
// --version and sluice version, the management API's product_version, the
// AMQP server properties, sluice status, rabbitmqadmin's overview and the
// sluice_build_info metric.

const versionPkg = "github.com/sluice-mq/sluice/internal/version"

// buildVersioned builds the server with version and commit set at link
// time, as a release build does.
func buildVersioned(t *testing.T, version, commit string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ldflags := "-X " + versionPkg + ".Version=" + version + " -X " + versionPkg + ".Commit=" + commit
	build := exec.CommandContext(ctx, "go", "build", "-ldflags", ldflags, "-o", bin, "../cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	return bin
}

// runBin runs bin with args and returns its standard output, failing the
// test on a non-zero exit.
func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// overviewVersions reads the version fields of /api/overview.
type overviewVersions struct {
	ProductName       string `json:"product_name"`
	ProductVersion    string `json:"product_version"`
	RabbitMQVersion   string `json:"rabbitmq_version"`
	ManagementVersion string `json:"management_version"`
}

func TestVersionSetAtBuildTimeReportedEverywhere(t *testing.T) {
	const version, commit = "9.8.7-rc.1", "0123456789abcdef0123456789abcdef01234567"
	bin := buildVersioned(t, version, commit)

	wantLine := "sluice " + version + " (commit 0123456789ab, "
	if out := runBin(t, bin, "--version"); !strings.HasPrefix(out, wantLine) {
		t.Errorf("sluice --version = %q, want it to start with %q", out, wantLine)
	}
	if out := runBin(t, bin, "version"); !strings.HasPrefix(out, wantLine) {
		t.Errorf("sluice version = %q, want it to start with %q", out, wantLine)
	}
	var info struct{ Version, Commit, Go, Platform string }
	if err := json.Unmarshal([]byte(runBin(t, bin, "version", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != version || info.Commit != commit || !strings.HasPrefix(info.Go, "go") || !strings.Contains(info.Platform, "/") {
		t.Errorf("sluice version -o json = %+v", info)
	}

	b := &broker{t: t, DataDir: t.TempDir(), bin: bin, extra: []string{"--log-level", "info"}, ownPorts: true}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.start()
	t.Cleanup(b.Stop)

	ov := decodeJSON[overviewVersions](t, b.api(t, "GET", "/api/overview", nil, 200))
	want := overviewVersions{ProductName: "Sluice", ProductVersion: version, RabbitMQVersion: "3.10.8", ManagementVersion: "3.10.8"}
	if ov != want {
		t.Errorf("/api/overview versions = %+v, want %+v", ov, want)
	}

	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	props := conn.Properties
	conn.Close()
	if props["product"] != "Sluice" || props["version"] != version {
		t.Errorf("AMQP server properties product=%v version=%v, want Sluice %s", props["product"], props["version"], version)
	}
	if p, _ := props["platform"].(string); !strings.HasPrefix(p, "go") {
		t.Errorf("AMQP server property platform = %q, want the Go version", p)
	}

	status := runBin(t, bin, "status", "--http", "http://"+b.HTTP)
	if !strings.Contains(status, "(Sluice "+version+")") {
		t.Errorf("sluice status does not show the version:\n%s", status)
	}

	metrics := string(b.api(t, "GET", "/metrics", nil, 200))
	re := regexp.MustCompile(`(?m)^sluice_build_info\{commit="` + commit + `",goversion="go[^"]+",version="` + regexp.QuoteMeta(version) + `"\} 1$`)
	if !re.MatchString(metrics) {
		t.Errorf("/metrics has no sluice_build_info for this build:\n%s", grepLines(metrics, "sluice_build_info"))
	}

	if !strings.Contains(b.Logs(), `"version":"`+version+` (commit 0123456789ab`) {
		t.Errorf("the startup log does not name the version:\n%s", b.Logs())
	}
}

// TestVersionWithoutLinkFlags checks a build without -ldflags (the
// harness's) reports one non-empty version everywhere, whatever the
// toolchain stamped.
func TestVersionWithoutLinkFlags(t *testing.T) {
	out := runBin(t, sluiceBin, "--version")
	m := regexp.MustCompile(`^sluice (\S+) \(`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sluice --version = %q, want \"sluice VERSION (...)\"", out)
	}
	b := startBroker(t)
	ov := decodeJSON[overviewVersions](t, b.api(t, "GET", "/api/overview", nil, 200))
	if ov.ProductVersion != m[1] {
		t.Errorf("product_version %q, sluice --version says %q", ov.ProductVersion, m[1])
	}
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if v := conn.Properties["version"]; v != m[1] {
		t.Errorf("AMQP server property version %v, sluice --version says %q", v, m[1])
	}
	status := runBin(t, sluiceBin, "status", "--http", "http://"+b.HTTP)
	if !strings.Contains(status, "(Sluice "+m[1]+")") {
		t.Errorf("sluice status does not show the version %q:\n%s", m[1], status)
	}
}

// TestVersionRabbitmqadmin: rabbitmqadmin reads the versions from the
// overview as it does from RabbitMQ.
func TestVersionRabbitmqadmin(t *testing.T) {
	requireRabbitmqadmin(t)
	b := startBroker(t)
	out := rabbitmqadmin(t, b, "-f", "raw_json", "show", "overview")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("rabbitmqadmin show overview: %v\n%s", err, out)
	}
	if rows[0]["rabbitmq_version"] != "3.10.8" || rows[0]["product_name"] != "Sluice" {
		t.Errorf("rabbitmqadmin show overview = %v", rows[0])
	}
	if v, _ := rows[0]["product_version"].(string); v == "" {
		t.Errorf("rabbitmqadmin show overview: empty product_version")
	}
}
