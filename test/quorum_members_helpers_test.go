package test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// quorumView is a quorum queue as /api/queues/{vhost}/{name} shows it.
type quorumView struct {
	Type    string   `json:"type"`
	Leader  string   `json:"leader"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
	Ready   int      `json:"messages_ready"`
}

// viewQuorumQueue is queue name of vhost "/" through b's management API;
// false when b does not answer it.
func viewQuorumQueue(t *testing.T, b *broker, name string) (quorumView, bool) {
	code, body := b.httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/"+url.PathEscape(name), nil)
	var q quorumView
	return q, code == 200 && json.Unmarshal(body, &q) == nil
}

// nodeNumbers maps the node names of b's /api/nodes to their ids.
func nodeNumbers(t *testing.T, b *broker) map[string]int {
	names := map[string]int{}
	for _, n := range clusterView(t, b) {
		names[n.Name] = int(n.NodeID)
	}
	return names
}

// memberIDs are q's members as node ids (names from nodeNumbers), sorted.
func (q quorumView) memberIDs(names map[string]int) []int {
	var ids []int
	for _, m := range q.Members {
		ids = append(ids, names[m])
	}
	slices.Sort(ids)
	return ids
}

// changeMembers runs a `sluice` member change through b until it is
// taken: again while another change of the queue is under way (grow and
// shrink list that refusal per queue and succeed).
func changeMembers(t *testing.T, b *broker, what string, args ...string) {
	t.Helper()
	var last string
	waitFor(t, 60*time.Second, what, func() bool {
		out, errOut, err := adminCLI(t, b, nil, args...)
		last = out + errOut
		if err == nil && strings.Contains(out, "under way") {
			return false
		}
		return err == nil
	})
	t.Logf("%s: %s", what, strings.TrimSpace(last))
}

// consumeAcking takes n deliveries from ds, acking each, and returns their
// bodies; it fails the test when one takes over 30 s (when, for the
// message).
func consumeAcking(t *testing.T, ds <-chan amqp.Delivery, n int, when string) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case d := <-ds:
			got = append(got, string(d.Body))
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d messages delivered %s", len(got), n, when)
		}
	}
	return got
}
