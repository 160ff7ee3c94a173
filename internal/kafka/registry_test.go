package kafka

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRegistryWithinCodecs checks every advertised version is one the
// kmsg codecs can decode.
func TestRegistryWithinCodecs(t *testing.T) {
	for _, a := range apis {
		req := kmsg.RequestForKey(a.key)
		if req == nil {
			t.Fatalf("api key %d has no codec", a.key)
		}
		if a.min < 0 || a.min > a.max || a.max > req.MaxVersion() {
			t.Errorf("%s: versions %d-%d outside codec range 0-%d", kmsg.NameForKey(a.key), a.min, a.max, req.MaxVersion())
		}
		if (a.handle == nil) == (a.prepare == nil) {
			t.Errorf("%s: exactly one of handle and prepare must be set", kmsg.NameForKey(a.key))
		}
	}
}

// TestCompatibilityDocMatchesRegistry keeps docs/kafka-compatibility.md's
// version table in step with the dispatch table: one list, checked.
func TestCompatibilityDocMatchesRegistry(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kafka-compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| (\w+) \| (\d+)[–-](\d+) \|`)
	documented := map[int16]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		key, _ := strconv.Atoi(m[1])
		documented[int16(key)] = fmt.Sprintf("%s %s-%s", m[2], m[3], m[4])
	}
	for _, a := range apis {
		want := fmt.Sprintf("%s %d-%d", kmsg.NameForKey(a.key), a.min, a.max)
		if got := documented[a.key]; got != want {
			t.Errorf("docs say %q for key %d, registry has %q", got, a.key, want)
		}
		delete(documented, a.key)
	}
	for key, d := range documented {
		t.Errorf("docs list key %d (%s) that the broker does not serve", key, d)
	}
}
