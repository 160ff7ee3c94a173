package arch

import (
	"bufio"
	"bytes"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const mod = "github.com/sluice-mq/sluice/internal/"

// rules are the imports the layering forbids: a package matching from
// must not import a package matching to. Test files are not checked.
var rules = []struct {
	from, to *regexp.Regexp
	why      string
}{
	{regexp.MustCompile(`^(kafka|amqp)(/|$)`), regexp.MustCompile(`^(storage|meta)(/|$)`),
		"front ends talk only to the core (broker), never to storage or meta"},
	{regexp.MustCompile(`^mgmt(/|$)`), regexp.MustCompile(`^(kafka|amqp)(/|$)`),
		"management reads the core, not a front end"},
	{regexp.MustCompile(`^broker(/|$)`), regexp.MustCompile(`^(kafka|amqp)(/|$)`),
		"the core knows no wire format"},
	{regexp.MustCompile(`^storage(/|$)`), regexp.MustCompile(`^(broker|meta|kafka|amqp|mgmt)(/|$)`),
		"storage knows no protocol and no core"},
	{regexp.MustCompile(`^cli(/|$)`), regexp.MustCompile(`^(storage|meta)(/|$)`),
		"the CLI goes through the server and the core, even offline"},
}

// known are the violations that exist today, each to be removed by issue
// 10's reshaping. The test fails on any violation not listed, and on any
// listed one that is gone (take it off the list), so the list only
// shrinks.
var known = map[string]bool{}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/sluice-mq/sluice/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	found := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		from, ok := strings.CutPrefix(fields[0], mod)
		if !ok {
			continue
		}
		for _, imp := range fields[1:] {
			to, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			for _, r := range rules {
				if r.from.MatchString(from) && r.to.MatchString(to) {
					found[from+" -> "+to] = r.why
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			t.Errorf("new import against the layering: %s (%s)", k, found[k])
		}
	}
	for k := range known {
		if _, ok := found[k]; !ok {
			t.Errorf("%s no longer exists: take it off the known list", k)
		}
	}
}
