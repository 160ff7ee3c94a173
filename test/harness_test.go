// Package test holds black-box tests: real clients (franz-go, kcat,
// kafka-python, confluent-kafka) against a real `sluice server` process
// on free ports with a temporary data directory.
package test

import (
	"context"
	"fmt"
	"github.com/sluice-mq/sluice/internal/testutil"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sluiceBin is the server binary built once by TestMain.
var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-test-bin")
	if err != nil {
		panic(err)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	args := []string{"build", "-o", sluiceBin}
	if os.Getenv("SLUICE_TEST_RACE") != "" {
		// Run the server under the race detector; a race kills it, and
		// the harness reports the non-zero exit.
		args = append(args, "-race")
		os.Setenv("GORACE", "halt_on_error=1")
	}
	build := exec.Command("go", append(args, "../cmd/sluice")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// broker is one running sluice server process.
type broker struct {
	t        testing.TB
	DataDir  string
	Kafka    string // host:port
	HTTP     string
	AMQP     string
	extra    []string
	bin      string // the server binary; sluiceBin unless set
	cmd      *exec.Cmd
	exited   chan struct{}
	logMu    sync.Mutex
	logFile  *os.File
	prevLogs []string // log files of earlier lives (before Restart)
	stopOnce sync.Once
	// ownPorts: the ports were picked here (freePort), so a first start
	// that finds one taken meanwhile by another process may pick again.
	ownPorts bool
	started  bool // a start has succeeded
	retries  int  // first starts retried on new ports
	// startWait and stopWait, when set, replace the 20s a start may take
	// to accept and the 30s a stop may take (a broker with many queues).
	startWait, stopWait time.Duration
}

// Ports the tests hand out come from below the kernel's ephemeral range
// (ip_local_port_range), in turn from a random start: a port found free
// is then not taken by an outgoing connection (nodes dialling each other,
// clients) before the server binds it, nor handed twice to this process.
// A CI run lost a cluster start that way: a cluster port is in every
// node's peers, so it cannot be picked again like a client port.
const (
	testPortLow  = 12000
	testPortHigh = 32000
)

var (
	portMu   sync.Mutex
	nextPort = testPortLow + int(time.Now().UnixNano()%int64(testPortHigh-testPortLow))
	portsOK  = ephemeralRangeAbove(testPortHigh)
)

// ephemeralRangeAbove reports whether the kernel's ephemeral ports all lie
// at or above port (false if it cannot tell).
func ephemeralRangeAbove(port int) bool {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return false
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(data), &lo, &hi); err != nil {
		return false
	}
	return lo >= port
}

// freePort returns a loopback address with a port free at the time of the
// call: from the range above when the ephemeral range allows it, else from
// the kernel.
func freePort(t testing.TB) string {
	t.Helper()
	if portsOK {
		portMu.Lock()
		defer portMu.Unlock()
		for range testPortHigh - testPortLow {
			p := nextPort
			nextPort++
			if nextPort >= testPortHigh {
				nextPort = testPortLow
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				continue
			}
			ln.Close()
			return ln.Addr().String()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBroker starts a server with a fresh data directory; extra flags are
// passed through (e.g. "--segment-bytes=4096").
func startBroker(t testing.TB, extra ...string) *broker {
	t.Helper()
	b := &broker{t: t, DataDir: t.TempDir(), extra: extra, ownPorts: true}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.start()
	t.Cleanup(func() { b.Stop() })
	return b
}

func (b *broker) start() {
	b.t.Helper()
	b.launch()
	b.waitReady()
}

// launch starts the server process without waiting for it to be ready.
func (b *broker) launch() {
	b.t.Helper()
	args := append([]string{"server",
		"--data-dir", b.DataDir,
		"--kafka-addr", b.Kafka, "--http-addr", b.HTTP, "--amqp-addr", b.AMQP,
		"--log-level", "warn",
	}, b.extra...)
	bin := b.bin
	if bin == "" {
		bin = sluiceBin
	}
	b.cmd = exec.Command(bin, args...)
	f, err := os.OpenFile(filepath.Join(b.DataDir, "..", fmt.Sprintf("server-%d.log", time.Now().UnixNano())), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	if b.logFile != nil {
		b.prevLogs = append(b.prevLogs, b.logFile.Name())
	}
	b.logFile = f
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func() { b.cmd.Wait(); close(b.exited) }()
	b.stopOnce = sync.Once{}
}

// waitReady waits until a launched server serves, retrying a first start
// whose ports were taken meanwhile on new ones.
func (b *broker) waitReady() {
	b.t.Helper()
	exited := false
	startWait := 20 * time.Second
	if b.startWait > 0 {
		startWait = b.startWait
	}
	// Ready when the Kafka and AMQP ports accept and the HTTP listener
	// answers /readyz: a port that merely accepts may be another
	// process's (the server then fails to bind it and exits), and the
	// HTTP listener is bound last.
	ready := &http.Client{Timeout: 500 * time.Millisecond}
	waitFor(b.t, startWait, "kafka and amqp ports accepting, /readyz answering", func() bool {
		select {
		case <-b.exited:
			exited = true
			return true
		default:
		}
		for _, addr := range []string{b.Kafka, b.AMQP} {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err != nil {
				return false
			}
			c.Close()
		}
		resp, err := ready.Get("http://" + b.HTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !exited {
		b.started = true
		return
	}
	// A port freePort found free can be taken by another process before
	// the server binds it: pick new ones, on a first start only (a
	// restart keeps its ports).
	if logs := b.Logs(); b.ownPorts && !b.started && b.retries < 3 && strings.Contains(logs, "address already in use") {
		b.retries++
		b.Kafka, b.HTTP, b.AMQP = freePort(b.t), freePort(b.t), freePort(b.t)
		b.start()
		return
	}
	b.t.Fatalf("server exited at start:\n%s", b.Logs())
}

// PrevLogs returns what the server printed in its life before the last
// Restart, "" if none.
func (b *broker) PrevLogs() string {
	if len(b.prevLogs) == 0 {
		return ""
	}
	data, _ := os.ReadFile(b.prevLogs[len(b.prevLogs)-1])
	return string(data)
}

// Logs returns what the server printed.
func (b *broker) Logs() string {
	data, _ := os.ReadFile(b.logFile.Name())
	return string(data)
}

// Kill stops the server with SIGKILL: no flush, no goodbye.
func (b *broker) Kill() {
	b.stopOnce.Do(func() {
		b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.exited
	})
}

// Stop stops the server with SIGTERM and waits for a clean exit.
func (b *broker) Stop() {
	b.stopOnce.Do(func() {
		b.cmd.Process.Signal(syscall.SIGTERM)
		stopWait := 30 * time.Second
		if b.stopWait > 0 {
			stopWait = b.stopWait
		}
		select {
		case <-b.exited:
		case <-time.After(stopWait):
			// SIGQUIT: the Go runtime prints every goroutine to the
			// server's log before it exits, which shows what the stop
			// waits on; the log is kept (artifactDir).
			b.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-b.exited:
			case <-time.After(10 * time.Second):
				b.cmd.Process.Kill()
				<-b.exited
			}
			kept := filepath.Join(artifactDir(), fmt.Sprintf("sluice-stop-timeout-%d.log", time.Now().UnixNano()))
			if err := os.WriteFile(kept, []byte(b.Logs()), 0o644); err != nil {
				kept = err.Error()
			}
			b.t.Errorf("server did not stop within %v on SIGTERM (its goroutines are in its log, kept at %s)", stopWait, kept)
		}
		if code := b.cmd.ProcessState.ExitCode(); code != 0 && !b.t.Failed() {
			b.t.Errorf("server exit code %d:\n%s", code, b.Logs())
		}
	})
}

// artifactDir is where tests keep files for after the run:
// SLUICE_TEST_ARTIFACTS, else the system's temporary directory.
func artifactDir() string {
	if dir := os.Getenv("SLUICE_TEST_ARTIFACTS"); dir != "" {
		return dir
	}
	return os.TempDir()
}

// Restart starts the server again on the same data directory and ports.
func (b *broker) Restart() { b.start() }

// client returns a franz-go client for the broker, closed at cleanup.
func (b *broker) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// admin returns a kadm client.
func (b *broker) admin(t testing.TB) *kadm.Client {
	return kadm.NewClient(b.client(t))
}

// createTopic creates a topic and fails the test on error.
func (b *broker) createTopic(t testing.TB, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.admin(t).CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// ctxT is a context bounded for one test step.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// needTool skips a test when a non-Go client is not installed, unless CI
// is set: in CI every tool is installed by .ci/run and its absence fails.
func needTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI (.ci/run installs it): %v", path, err)
		}
		t.Skipf("%s not installed", path)
	}
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestHarnessPicksNewPortsWhenTaken: a port taken between freePort and the
// server's bind makes the harness start again on new ports, not fail.
func TestHarnessPicksNewPortsWhenTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b := &broker{t: t, DataDir: t.TempDir(), ownPorts: true}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), ln.Addr().String(), freePort(t)
	b.start()
	t.Cleanup(func() { b.Stop() })
	if b.HTTP == ln.Addr().String() || b.retries != 1 {
		t.Fatalf("HTTP on %s after %d retries, want a new port after one", b.HTTP, b.retries)
	}
}
