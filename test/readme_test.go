package test

// TestREADME runs the README's commands as a new user would type them.
//
// The convention: every fenced code block whose info string is exactly
// "sh" under the "## Quick start" and "## Using it" headings is a script of
// commands, one per line ("\" continues a line; blank lines and lines
// starting with "#" are skipped; a trailing "# comment" is the shell's).
// Each command runs with bash (pipefail) in a scratch directory that looks
// like a checkout (go.mod, go.sum, cmd and internal linked from the
// repository, so "go build ./cmd/sluice" builds as written), one after
// the other, sharing that directory: a file one command writes is there
// for the next. Any non-zero exit fails the test. Blocks in other
// languages (the output samples) and other sections are not run.
//
// Two commands are not run, by name:
//   - "go run ./cmd/sluice server ...": the broker itself; the harness's
//     server, freshly started on free ports, stands in for it;
//   - "go test ...": the suite cannot run itself.
//
// The commands find that server the way the README tells users to find
// another broker: through SLUICE_BROKERS, SLUICE_HTTP and SLUICE_AMQP_URL,
// which the sluice client commands read and the README's examples of
// other tools (kcat, amqp-publish) expand. The test sets only those (and
// clears the user's other SLUICE_* variables); it rewrites no command.

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeSections are the headings whose sh blocks must run as written.
var readmeSections = []string{"Quick start", "Using it"}

// readmeCommand is one command of the README, with the section and line
// it starts on.
type readmeCommand struct {
	section string
	line    int
	text    string
}

// readmeCommands extracts the commands of the sh blocks under sections.
// It reports which sections had at least one sh block.
func readmeCommands(t *testing.T, readme []byte, sections []string) ([]readmeCommand, map[string]int) {
	t.Helper()
	wanted := map[string]bool{}
	for _, s := range sections {
		wanted[s] = true
	}
	blocks := map[string]int{}
	var out []readmeCommand
	var section, fence string
	var pending *readmeCommand
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if fence == "" {
			if h, ok := strings.CutPrefix(line, "## "); ok {
				section = strings.TrimSpace(h)
				continue
			}
			if info, ok := strings.CutPrefix(line, "```"); ok {
				fence = strings.TrimSpace(info)
				if fence == "" {
					fence = "text"
				}
				if fence == "sh" && wanted[section] {
					blocks[section]++
				}
			}
			continue
		}
		if strings.TrimSpace(line) == "```" {
			if pending != nil {
				t.Fatalf("README.md:%d: a command ends in \\ at the end of its block", pending.line)
			}
			fence = ""
			continue
		}
		if fence != "sh" || !wanted[section] {
			continue
		}
		if pending != nil {
			pending.text += "\n" + line
		} else {
			trimmed := strings.TrimSpace(line)
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			pending = &readmeCommand{section: section, line: n, text: line}
		}
		if !strings.HasSuffix(line, "\\") {
			out = append(out, *pending)
			pending = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if fence != "" {
		t.Fatal("README.md: a code block is not closed")
	}
	return out, blocks
}

// readmeScratch makes a directory that looks like a checkout of the
// repository at root, for commands that build from source.
func readmeScratch(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "cmd", "internal"} {
		if err := os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readmeEnv is the environment without the user's SLUICE_* settings,
// plus the variables that point the README's commands at b.
func readmeEnv(b *broker) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"SLUICE_BROKERS="+b.Kafka,
		"SLUICE_HTTP=http://"+b.HTTP,
		"SLUICE_AMQP_URL=amqp://guest:guest@"+b.AMQP,
	)
}

func TestREADME(t *testing.T) {
	needTool(t, "/usr/bin/kcat")
	needTool(t, "/usr/bin/amqp-publish")
	needTool(t, "/usr/bin/amqp-get")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds, blocks := readmeCommands(t, readme, readmeSections)
	for _, s := range readmeSections {
		if blocks[s] == 0 {
			t.Fatalf("README.md has no sh block under \"## %s\": the test would check nothing there", s)
		}
	}

	b := startBroker(t)
	dir := readmeScratch(t, root)
	env := readmeEnv(b)
	var ran, servers int
	for _, c := range cmds {
		switch {
		case strings.HasPrefix(c.text, "go run ./cmd/sluice server"):
			servers++ // the harness's broker stands in
			continue
		case strings.HasPrefix(c.text, "go test "):
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", c.text)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README.md:%d (%s): %s\n%v\n%s", c.line, c.section, c.text, err, out)
		}
		t.Logf("README.md:%d: %s\n%s", c.line, c.text, bytes.TrimSpace(out))
		ran++
	}
	if servers == 0 {
		t.Error("README.md's quick start no longer starts the server with \"go run ./cmd/sluice server\"; update TestREADME's stand-in")
	}
	if ran == 0 {
		t.Fatal("no README command ran")
	}
}

// TestREADMECommandsExtraction pins the convention on a small README: only
// sh blocks of the named sections, continuation lines joined, comments
// and blank lines skipped, other languages and sections ignored.
func TestREADMECommandsExtraction(t *testing.T) {
	readme := "# T\n\n## Quick start\n\n```sh\ngo run ./cmd/sluice server\n```\n\n```\noutput, not run\n```\n\n" +
		"## Using it\n\n```sh\n# a comment\n./sluice status   # trailing\n\nkcat -b x \\\n  -L\n```\n\n```yaml\nnot: run\n```\n\n" +
		"## Configuration\n\n```sh\nrm -rf /\n```\n"
	cmds, blocks := readmeCommands(t, []byte(readme), readmeSections)
	want := []readmeCommand{
		{"Quick start", 6, "go run ./cmd/sluice server"},
		{"Using it", 17, "./sluice status   # trailing"},
		{"Using it", 19, "kcat -b x \\\n  -L"},
	}
	if len(cmds) != len(want) {
		t.Fatalf("commands %+v, want %+v", cmds, want)
	}
	for i := range want {
		if cmds[i] != want[i] {
			t.Errorf("command %d = %+v, want %+v", i, cmds[i], want[i])
		}
	}
	if blocks["Quick start"] != 1 || blocks["Using it"] != 1 || blocks["Configuration"] != 0 {
		t.Errorf("sh blocks per section = %v", blocks)
	}
}
