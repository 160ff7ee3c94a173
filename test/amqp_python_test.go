package test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Non-Go AMQP 0-9-1 clients from Debian against a real server: pika
// (python3-pika, driven by test/python/pika_scenarios.py) and the
// rabbitmq-c command-line tools (amqp-tools). .ci/run installs both; like
// the Kafka clients they skip locally when missing and fail in CI.

// pikaScenarios are the scenario names of pika_scenarios.py, one subtest
// each against a fresh broker; a name with phases runs each phase in turn
// with a server restart (SIGTERM, same data directory) between. The
// script's --list must agree, so a scenario added there is not silently
// left out here.
var pikaScenarios = []string{
	"direct",
	"fanout",
	"topic",
	"headers",
	"exchange_to_exchange",
	"alternate_exchange",
	"predeclared_exchanges",
	"confirms",
	"dlx_reject",
	"ttl_queue",
	"ttl_message",
	"maxlen_drop_oldest",
	"maxlen_reject_publish",
	"maxlen_drop_head_dlx",
	"get_nack_recover",
	"purge_delete",
	"passive_missing",
	"qos_ack_reject",
	"tx",
	"exclusive_autodelete_expires",
	"durable_restart",
	// Features the broker may not implement yet; their own subtests so a
	// failure is visible and isolated.
	"priority",
	"delayed",
	"stream",
	"memory_alarm",
}

// pikaFlags are extra server flags for a scenario.
var pikaFlags = map[string][]string{
	// A watermark below any process's resident memory: the memory alarm
	// is raised from the first sample.
	"memory_alarm": {"--memory-high-watermark=1MiB", "--resource-check-interval=50ms"},
}

var pikaPhases = map[string][]string{
	"durable_restart": {"restart_setup", "restart_verify"},
}

// pikaScriptScenarios is what pika_scenarios.py --list should print.
func pikaScriptScenarios() []string {
	var out []string
	for _, sc := range pikaScenarios {
		if ph, ok := pikaPhases[sc]; ok {
			out = append(out, ph...)
		} else {
			out = append(out, sc)
		}
	}
	return out
}

func TestPika(t *testing.T) {
	needPythonModule(t, "pika")
	script, err := filepath.Abs(filepath.Join("python", "pika_scenarios.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 20*time.Second, "", python3Path, script, "--list")
	if r.Err != nil {
		t.Fatalf("pika_scenarios.py --list: %v\n%s", r.Err, r.Stderr)
	}
	if got, want := splitLines(r.Stdout), pikaScriptScenarios(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pika_scenarios.py lists %v, TestPika runs %v", got, want)
	}
	for _, sc := range pikaScenarios {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, pikaFlags[sc]...)
			phases, ok := pikaPhases[sc]
			if !ok {
				phases = []string{sc}
			}
			for i, ph := range phases {
				if i > 0 {
					b.Stop()
					b.Restart()
				}
				start := time.Now()
				r := runTool(t, 60*time.Second, "", python3Path, script, ph, b.AMQP).must(t, b, "pika scenario "+ph)
				t.Logf("pika %s passed in %v:\n%s", ph, time.Since(start).Round(time.Millisecond), r.Stdout)
			}
		})
	}
}

// amqpTool runs one of the amqp-tools binaries against b. The URL has no
// path: rabbitmq-c reads "/" after the port as the start of the vhost,
// so ".../" would ask for the empty vhost rather than "/".
func (b *broker) amqpTool(t testing.TB, stdin, tool string, args ...string) toolRun {
	t.Helper()
	return runTool(t, 30*time.Second, stdin, "/usr/bin/"+tool, append([]string{"--url=amqp://guest:guest@" + b.AMQP}, args...)...)
}

// exitCode is the exit status of a finished tool run, -1 when it did not
// exit on its own.
func (r toolRun) exitCode() int {
	if r.Err == nil {
		return 0
	}
	if ee, ok := r.Err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func wantStdout(t testing.TB, what string, r toolRun, want string) {
	t.Helper()
	if r.Stdout != want {
		t.Fatalf("%s: stdout %q, want %q (stderr %q)", what, r.Stdout, want, r.Stderr)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAMQPTools(t *testing.T) {
	tools := []string{"amqp-declare-queue", "amqp-publish", "amqp-get", "amqp-consume", "amqp-delete-queue"}
	for _, tool := range tools {
		needTool(t, "/usr/bin/"+tool)
	}
	needTool(t, "/usr/bin/cat")

	t.Run("declare_publish_get", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t)
		wantStdout(t, "declare", b.amqpTool(t, "", "amqp-declare-queue", "-q", "tools-q").must(t, b, "amqp-declare-queue"), "tools-q\n")
		// Redeclaring an existing queue with the same flags is fine.
		wantStdout(t, "redeclare", b.amqpTool(t, "", "amqp-declare-queue", "-q", "tools-q").must(t, b, "amqp-declare-queue again"), "tools-q\n")
		r := b.amqpTool(t, "", "amqp-declare-queue", "-q", "").must(t, b, "amqp-declare-queue server-named")
		if !regexp.MustCompile(`^amq\.gen-\S+\n$`).MatchString(r.Stdout) {
			t.Fatalf("server-named queue: stdout %q, want amq.gen-...", r.Stdout)
		}
		wantStdout(t, "durable", b.amqpTool(t, "", "amqp-declare-queue", "-d", "-q", "tools-durable").must(t, b, "amqp-declare-queue -d"), "tools-durable\n")
		// Redeclaring the durable queue as transient is PRECONDITION_FAILED.
		r = b.amqpTool(t, "", "amqp-declare-queue", "-q", "tools-durable")
		if r.exitCode() <= 0 || !strings.Contains(r.Stderr, "406") {
			t.Fatalf("redeclare durable queue as transient: exit %d stdout %q stderr %q, want a failure naming 406", r.exitCode(), r.Stdout, r.Stderr)
		}

		b.amqpTool(t, "", "amqp-publish", "-r", "tools-q", "-b", "hello world").must(t, b, "amqp-publish")
		b.amqpTool(t, "", "amqp-publish", "-r", "tools-q", "-b", "second").must(t, b, "amqp-publish")
		wantStdout(t, "amqp-get 1", b.amqpTool(t, "", "amqp-get", "-q", "tools-q").must(t, b, "amqp-get"), "hello world")
		wantStdout(t, "amqp-get 2", b.amqpTool(t, "", "amqp-get", "-q", "tools-q").must(t, b, "amqp-get"), "second")
		// An empty queue: basic.get-empty, exit status 2, nothing printed.
		r = b.amqpTool(t, "", "amqp-get", "-q", "tools-q")
		if r.exitCode() != 2 || r.Stdout != "" {
			t.Fatalf("amqp-get on an empty queue: exit %d stdout %q stderr %q, want exit 2 and no output", r.exitCode(), r.Stdout, r.Stderr)
		}
		// A missing queue: NOT_FOUND.
		r = b.amqpTool(t, "", "amqp-get", "-q", "no-such-queue")
		if r.exitCode() <= 0 || r.exitCode() == 2 || !strings.Contains(r.Stderr, "404") {
			t.Fatalf("amqp-get on a missing queue: exit %d stdout %q stderr %q, want a failure naming 404", r.exitCode(), r.Stdout, r.Stderr)
		}
	})

	t.Run("publish_properties", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t)
		b.amqpTool(t, "", "amqp-declare-queue", "-q", "tools-props").must(t, b, "amqp-declare-queue")
		b.amqpTool(t, "", "amqp-publish", "-r", "tools-props", "-p", "-C", "text/plain", "-E", "gzip",
			"-t", "reply-here", "-H", "k1: v1", "-H", "k2: two words", "-b", "with props").must(t, b, "amqp-publish")
		// The whole of stdin is one message when neither -b nor -l is given.
		b.amqpTool(t, "line 1\nline 2\n", "amqp-publish", "-r", "tools-props").must(t, b, "amqp-publish from stdin")
		// -l: one message per line, each keeping its newline.
		b.amqpTool(t, "a\nbb\nccc\n", "amqp-publish", "-l", "-r", "tools-props").must(t, b, "amqp-publish -l")
		// To an exchange with a routing key. (A declared exchange: binding
		// to amq.topic is consume_exchange's and predeclared_exchanges'.)
		ch := b.channel(t)
		if err := ch.ExchangeDeclare("tools-topic", "topic", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind("tools-props", "props.#", "tools-topic", false, nil); err != nil {
			t.Fatal(err)
		}
		b.amqpTool(t, "", "amqp-publish", "-e", "tools-topic", "-r", "props.x", "-b", "via topic").must(t, b, "amqp-publish -e")

		get := func() amqp.Delivery {
			t.Helper()
			var m amqp.Delivery
			waitFor(t, 5*time.Second, "a message on tools-props", func() bool {
				d, ok, err := ch.Get("tools-props", true)
				if err != nil {
					t.Fatal(err)
				}
				m = d
				return ok
			})
			return m
		}
		m := get()
		if string(m.Body) != "with props" || m.DeliveryMode != amqp.Persistent || m.ContentType != "text/plain" ||
			m.ContentEncoding != "gzip" || m.ReplyTo != "reply-here" || m.Exchange != "" || m.RoutingKey != "tools-props" {
			t.Fatalf("published with properties, got body %q delivery mode %d content type %q encoding %q reply-to %q exchange %q key %q",
				m.Body, m.DeliveryMode, m.ContentType, m.ContentEncoding, m.ReplyTo, m.Exchange, m.RoutingKey)
		}
		if len(m.Headers) != 2 || m.Headers["k1"] != "v1" || m.Headers["k2"] != "two words" {
			t.Fatalf("headers %#v, want k1=v1 k2=\"two words\"", m.Headers)
		}
		m = get()
		if string(m.Body) != "line 1\nline 2\n" || m.DeliveryMode != amqp.Transient || m.Headers != nil {
			t.Fatalf("stdin message: body %q delivery mode %d headers %v", m.Body, m.DeliveryMode, m.Headers)
		}
		for _, want := range []string{"a\n", "bb\n", "ccc\n"} {
			if m = get(); string(m.Body) != want {
				t.Fatalf("-l message: body %q, want %q", m.Body, want)
			}
		}
		if m = get(); string(m.Body) != "via topic" || m.Exchange != "tools-topic" || m.RoutingKey != "props.x" {
			t.Fatalf("via tools-topic: body %q exchange %q key %q", m.Body, m.Exchange, m.RoutingKey)
		}
		if _, ok, err := ch.Get("tools-props", true); err != nil || ok {
			t.Fatalf("tools-props not empty at the end: ok=%v err=%v", ok, err)
		}
	})

	t.Run("consume_count", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t)
		b.amqpTool(t, "", "amqp-declare-queue", "-q", "tools-c").must(t, b, "amqp-declare-queue")
		for _, body := range []string{"m1\n", "m2\n", "m3\n", "m4\n", "m5\n"} {
			b.amqpTool(t, "", "amqp-publish", "-r", "tools-c", "-b", body).must(t, b, "amqp-publish "+body)
		}
		// -c 3: prefetch 3, three deliveries piped to cat and acked, then exit.
		wantStdout(t, "amqp-consume -c 3", b.amqpTool(t, "", "amqp-consume", "-q", "tools-c", "-c", "3", "cat").must(t, b, "amqp-consume -c 3"), "m1\nm2\nm3\n")
		ch := b.channel(t)
		waitFor(t, 5*time.Second, "2 messages left, the 3 consumed acked", func() bool {
			q, err := ch.QueueDeclarePassive("tools-c", false, false, false, false, nil)
			return err == nil && q.Messages == 2 && q.Consumers == 0
		})
		// -A: no-ack consumer.
		wantStdout(t, "amqp-consume -A -c 2", b.amqpTool(t, "", "amqp-consume", "-q", "tools-c", "-A", "-c", "2", "cat").must(t, b, "amqp-consume -A -c 2"), "m4\nm5\n")
		if r := b.amqpTool(t, "", "amqp-get", "-q", "tools-c"); r.exitCode() != 2 {
			t.Fatalf("amqp-get after consuming all: exit %d stdout %q stderr %q, want 2 (empty)", r.exitCode(), r.Stdout, r.Stderr)
		}
		// A consuming command that fails leaves the message unacked: it goes
		// back to the queue when amqp-consume's connection closes.
		b.amqpTool(t, "", "amqp-publish", "-r", "tools-c", "-b", "m6").must(t, b, "amqp-publish m6")
		// (The command reads the body first: one exiting at once would
		// make amqp-consume die of SIGPIPE writing it.)
		b.amqpTool(t, "", "amqp-consume", "-q", "tools-c", "-c", "1", "--", "/bin/sh", "-c", "cat >/dev/null; exit 1").must(t, b, "amqp-consume with a failing command")
		waitFor(t, 5*time.Second, "m6 requeued after the unacked consumer left", func() bool {
			q, err := ch.QueueDeclarePassive("tools-c", false, false, false, false, nil)
			return err == nil && q.Messages == 1 && q.Consumers == 0
		})
		wantStdout(t, "amqp-get m6", b.amqpTool(t, "", "amqp-get", "-q", "tools-c").must(t, b, "amqp-get m6"), "m6")
	})

	t.Run("consume_exchange", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t)
		// Without -q, amqp-consume declares a server-named auto-delete queue,
		// binds it to the exchange with each comma-separated key, and tells
		// the name on stderr.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/amqp-consume", "--url=amqp://guest:guest@"+b.AMQP,
			"-e", "amq.topic", "-r", "tools.#,other.key", "-c", "2", "cat")
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 2 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		nameRE := regexp.MustCompile(`Server provided queue name: (amq\.gen-\S+)`)
		var qname string
		ch := b.channel(t)
		waitFor(t, 10*time.Second, "amqp-consume to declare its queue and consume", func() bool {
			select {
			case err := <-done:
				t.Fatalf("amqp-consume exited early: %v\nstdout %q\nstderr %q\n%s", err, stdout.String(), stderr.String(), clip(b.Logs()))
			default:
			}
			if qname == "" {
				m := nameRE.FindStringSubmatch(stderr.String())
				if m == nil {
					return false
				}
				qname = m[1]
			}
			q, err := ch.QueueDeclarePassive(qname, false, false, false, false, nil)
			if err != nil {
				t.Fatalf("passive declare %s: %v", qname, err)
			}
			return q.Consumers == 1
		})
		ctxP := ctxT(t, 10*time.Second)
		for _, p := range []struct{ key, body string }{
			{"nomatch", "not for us\n"}, {"tools.a.b", "first\n"}, {"other.key", "second\n"}, {"tools", "third\n"},
		} {
			if err := ch.PublishWithContext(ctxP, "amq.topic", p.key, false, false, amqp.Publishing{Body: []byte(p.body)}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("amqp-consume: %v\nstdout %q\nstderr %q\n%s", err, stdout.String(), stderr.String(), clip(b.Logs()))
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("amqp-consume -c 2 did not finish; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		if got := stdout.String(); got != "first\nsecond\n" {
			t.Fatalf("amqp-consume stdout %q, want %q", got, "first\nsecond\n")
		}
		// Its queue was auto-delete: gone once its only consumer left.
		ch2 := b.channel(t)
		waitFor(t, 5*time.Second, "the auto-delete queue to go", func() bool {
			_, err := ch2.QueueDeclarePassive(qname, false, false, false, false, nil)
			if err == nil {
				return false
			}
			if amqpErrCode(err) != amqp.NotFound {
				t.Fatalf("passive declare of the auto-delete queue: %v, want 404", err)
			}
			return true
		})
	})

	t.Run("delete_queue", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t)
		b.amqpTool(t, "", "amqp-declare-queue", "-q", "tools-del").must(t, b, "amqp-declare-queue")
		b.amqpTool(t, "", "amqp-publish", "-r", "tools-del", "-b", "x").must(t, b, "amqp-publish")
		r := b.amqpTool(t, "", "amqp-delete-queue", "-q", "tools-del", "--if-empty")
		if r.exitCode() <= 0 || !strings.Contains(r.Stderr, "406") {
			t.Fatalf("amqp-delete-queue --if-empty on a non-empty queue: exit %d stdout %q stderr %q, want a failure naming 406", r.exitCode(), r.Stdout, r.Stderr)
		}
		wantStdout(t, "amqp-delete-queue", b.amqpTool(t, "", "amqp-delete-queue", "-q", "tools-del").must(t, b, "amqp-delete-queue"), "1\n")
		if r := b.amqpTool(t, "", "amqp-get", "-q", "tools-del"); r.exitCode() <= 0 || r.exitCode() == 2 || !strings.Contains(r.Stderr, "404") {
			t.Fatalf("amqp-get on the deleted queue: exit %d stdout %q stderr %q, want a failure naming 404", r.exitCode(), r.Stdout, r.Stderr)
		}
	})
}
