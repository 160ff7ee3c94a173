package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterQuorumQueueMembers: a quorum queue moved, member by member,
// from the two nodes it was declared on to two nodes that joined it later
// (sluice queue add-member and grow, then delete-member and shrink), after
// its log start moved past settled messages and with settled messages
// among the unsettled ones. The new members hold the queue whole: through
// them come exactly the messages that were not acked, in order, none that
// was. Refused: an existing member added again (a queue's last member
// removed: TestClusterQuorumQueueOfOneMember).
func TestClusterQuorumQueueMembers(t *testing.T) {
	// Small segments: the log start moves past settled messages when a
	// whole segment is settled.
	nodes := startCluster(t, 4, "--segment-bytes=16384")
	t.Cleanup(func() {
		if t.Failed() {
			for i, b := range nodes {
				t.Logf("node %d's log:\n%s", i+1, quorumLogLines(b.Logs()))
			}
		}
	})
	waitFor(t, 30*time.Second, "four registered nodes", func() bool { return len(clusterView(t, nodes[0])) == 4 })
	names := nodeNumbers(t, nodes[0])

	c1 := nodes[0].dial(t)
	ch, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	args := amqp.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(2)}
	if _, err := ch.QueueDeclare("moving", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	view := func(b *broker) (quorumView, bool) { return viewQuorumQueue(t, b, "moving") }
	memberIDs := func(q quorumView) []int { return q.memberIDs(names) }
	waitFor(t, 20*time.Second, "the queue on nodes 1 and 2 with a leader", func() bool {
		q, ok := view(nodes[0])
		return ok && slices.Equal(memberIDs(q), []int{1, 2}) && q.Leader != ""
	})

	// 1,200 messages; the first 600 acked, and every third after them.
	const n = 1200
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	body := func(i int) string { return fmt.Sprintf("m-%04d", i) }
	pending := map[int]*amqp.DeferredConfirmation{}
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirm("", "moving", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body(i))})
		if err != nil {
			t.Fatal(err)
		}
		pending[i] = dc
	}
	for i := range n {
		if !pending[i].Wait() {
			publishUntilConfirmed(t, ch, "moving", body(i)) // a nack is allowed; order does not matter below
		}
	}
	cch, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(n, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("moving", "first", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for got := 0; got < n; got++ {
		select {
		case d := <-ds:
			var i int
			if _, err := fmt.Sscanf(string(d.Body), "m-%d", &i); err != nil {
				t.Fatalf("unexpected message %q", d.Body)
			}
			if i < 600 || i%3 == 0 {
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
			} else {
				want = append(want, string(d.Body))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d messages delivered", got, n)
		}
	}
	slices.Sort(want)
	cch.Close() // the unacked go back to the queue
	waitFor(t, 20*time.Second, fmt.Sprintf("%d messages ready", len(want)), func() bool {
		q, ok := view(nodes[0])
		return ok && q.Ready == len(want)
	})
	// The members' Raft logs compacted after the log start moved (a
	// checkpoint every 2 s): a new member cannot be sent the entries from
	// the first and must be sent a snapshot, which must bring the log from
	// its start and the ack record.
	settled := time.Now()
	waitFor(t, 20*time.Second, "node 1's Raft log of the queue compacted", func() bool {
		snaps, _ := filepath.Glob(filepath.Join(nodes[0].DataDir, "topics", "__sluice_quorum_*-0.raft", "raft.snap"))
		for _, f := range snaps {
			if st, err := os.Stat(f); err == nil && st.ModTime().After(settled) {
				return true
			}
		}
		return false
	})

	// Refused: node 1 again.
	if _, errOut, err := adminCLI(t, nodes[0], nil, "queue", "add-member", "moving", "1"); err == nil || !strings.Contains(errOut, "already a member") {
		t.Fatalf("adding an existing member: %v %s", err, errOut)
	}

	step := func(what string, args ...string) {
		t.Helper()
		changeMembers(t, nodes[1], what, args...)
	}
	step("add-member 3", "queue", "add-member", "moving", "3")
	// Three members now (or moving to three): grow --strategy even passes
	// the queue over, as rabbitmq-queues does.
	if out := mustAdmin(t, nodes[1], "queue", "grow", "4", "--strategy", "even", "--output", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("grow --strategy even of a queue of three members: %s", out)
	}
	step("grow onto node 4", "queue", "grow", "4", "--queue-pattern", "^moving$")
	step("delete-member 1", "queue", "delete-member", "moving", "1")
	step("shrink off node 2", "queue", "shrink", "2")
	var final quorumView
	waitFor(t, 60*time.Second, "the queue on nodes 3 and 4 only, with a leader among them", func() bool {
		q, ok := view(nodes[2])
		final = q
		return ok && slices.Equal(memberIDs(q), []int{3, 4}) && (names[q.Leader] == 3 || names[q.Leader] == 4) && len(q.Online) == 2
	})
	t.Logf("members %v, leader %s", final.Members, final.Leader)

	// Through node 4: exactly the messages not acked, in order.
	c4 := nodes[3].dial(t)
	ch4, err := c4.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds4, err := ch4.Consume("moving", "after", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := consumeAcking(t, ds4, len(want), "after the move")
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("after the move, message %d is %s, want %s (of %d)", i, got[i], want[i], len(want))
			}
		}
	}
	waitFor(t, 20*time.Second, "nothing left in the queue", func() bool {
		q, ok := view(nodes[3])
		return ok && q.Ready == 0
	})
	select {
	case d := <-ds4:
		t.Fatalf("an extra message after the move: %s", d.Body)
	default:
	}
	for _, b := range nodes[2:] {
		if !strings.Contains(b.Logs(), "starting its log afresh where the leader's snapshot ends") {
			t.Errorf("a new member was not sent a snapshot: the test did not exercise it")
		}
	}
}
