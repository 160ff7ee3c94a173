package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterQuorumQueueOfOneMember: a quorum queue declared with one
// member (x-quorum-initial-group-size 1, as on a cluster being built up)
// is a quorum queue all the same: it grows onto the other nodes (queue
// grow, add-member), survives the loss of the node it was declared on
// once grown, shrinks back to one member, which a restart elects again,
// and its last member cannot be removed (RabbitMQ's last_member); deleted,
// it leaves nothing behind. Through it all, exactly the messages
// not acked are delivered, in order.
func TestClusterQuorumQueueOfOneMember(t *testing.T) {
	nodes := startQuorumCluster(t)
	names := nodeNumbers(t, nodes[0])
	view := func(b *broker) (quorumView, bool) { return viewQuorumQueue(t, b, "single") }
	waitMembers := func(b *broker, want []int) {
		t.Helper()
		var last quorumView
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("last seen: %+v", last)
			}
		})
		waitFor(t, 60*time.Second, fmt.Sprintf("the queue's members %v, all online, with a leader among them", want), func() bool {
			q, ok := view(b)
			last = q
			return ok && slices.Equal(q.memberIDs(names), want) && len(q.Online) == len(want) && slices.Contains(want, names[q.Leader])
		})
		t.Logf("members %v, online %v, leader %s", last.Members, last.Online, last.Leader)
	}

	c1 := nodes[0].dial(t)
	ch1, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	args := amqp.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(1)}
	if _, err := ch1.QueueDeclare("single", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	waitMembers(nodes[0], []int{1})
	if q, _ := view(nodes[0]); q.Type != "quorum" {
		t.Fatalf("a queue declared with one member is of type %q, want quorum", q.Type)
	}

	// 300 messages confirmed, published through node 2 (forwarded to the
	// queue's only member); the first 100 consumed and acked through node 1.
	c2 := nodes[1].dial(t)
	ch2, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	waitForQueue(t, c2, "single")
	if err := ch2.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n, acked = 300, 100
	body := func(i int) string { return fmt.Sprintf("m-%04d", i) }
	var dcs []*amqp.DeferredConfirmation
	for i := range n {
		dc, err := ch2.PublishWithDeferredConfirm("", "single", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body(i))})
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for i, dc := range dcs {
		if !dc.Wait() {
			t.Fatalf("message %d nacked by a queue whose one member is up", i)
		}
	}
	cch, err := c1.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(acked, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("single", "first", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range acked {
		select {
		case d := <-ds:
			if string(d.Body) != body(i) {
				t.Fatalf("delivery %d is %q, want %q", i, d.Body, body(i))
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d messages delivered", i, acked)
		}
	}
	if err := cch.Cancel("first", false); err != nil {
		t.Fatal(err)
	}
	cch.Close()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d messages ready", n-acked), func() bool {
		q, ok := view(nodes[0])
		return ok && q.Ready == n-acked
	})

	// Grown onto nodes 2 and 3, as rabbitmq-queues grow and add_member do.
	step := func(what string, args ...string) {
		t.Helper()
		changeMembers(t, nodes[1], what, args...)
	}
	step("grow onto node 2", "queue", "grow", "2", "--queue-pattern", "^single$")
	waitMembers(nodes[1], []int{1, 2})
	step("add-member 3", "queue", "add-member", "single", "3")
	waitMembers(nodes[2], []int{1, 2, 3})
	// The move is listed before it is done: done when adding node 3
	// again is refused as a member already, no longer as under way.
	waitFor(t, 60*time.Second, "node 3 a member of the queue's group", func() bool {
		_, errOut, err := adminCLI(t, nodes[1], nil, "queue", "add-member", "single", "3")
		return err != nil && strings.Contains(errOut, "already a member")
	})

	// The node it was declared on lost: the grown members carry on.
	nodes[0].Kill()
	step("delete-member 1 (dead)", "queue", "delete-member", "single", "1")
	step("shrink off node 2", "queue", "shrink", "2")
	waitMembers(nodes[2], []int{3})
	if _, errOut, err := adminCLI(t, nodes[2], nil, "queue", "delete-member", "single", "3"); err == nil || !strings.Contains(errOut, "last member") {
		t.Fatalf("removing the last member: %v %s", err, errOut)
	}

	// The one member left restarted: its group of one elects it again,
	// and node 2, no longer a member, lists the leader its member reports.
	nodes[2].Stop()
	nodes[2].Restart()
	waitMembers(nodes[1], []int{3})
	code, listed := nodes[1].httpDo(t, "guest", "guest", "GET", "/api/queues/%2F", nil)
	var qs []struct {
		Name   string `json:"name"`
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal(listed, &qs); code != 200 || err != nil {
		t.Fatalf("listing the queues through node 2: %d %v %s", code, err, listed)
	}
	i := slices.IndexFunc(qs, func(q struct {
		Name   string `json:"name"`
		Leader string `json:"leader"`
	}) bool {
		return q.Name == "single"
	})
	if i < 0 || names[qs[i].Leader] != 3 {
		t.Fatalf("node 2 lists the queues %+v: want 'single' with node 3 as its leader", qs)
	}

	// Through node 2, which is no longer a member: exactly the messages
	// not acked, in order, then one more published to the one member left.
	ch2b, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch2b.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publishUntilConfirmed(t, ch2b, "single", body(n))
	want := []string{}
	for i := acked; i <= n; i++ {
		want = append(want, body(i))
	}
	ds2, err := ch2b.Consume("single", "after", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := consumeAcking(t, ds2, len(want), "after the moves")
	if !slices.Equal(got, want) {
		t.Fatalf("after the moves, delivered %v\nwant %v", got, want)
	}
	waitFor(t, 20*time.Second, "nothing left in the queue", func() bool {
		q, ok := view(nodes[2])
		return ok && q.Ready == 0
	})
	select {
	case d := <-ds2:
		t.Fatalf("an extra message after the moves: %s", d.Body)
	case <-time.After(200 * time.Millisecond):
	}

	// Deleted through node 2: gone from its one member, files and all.
	if err := ch2b.Cancel("after", false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch2b.QueueDelete("single", false, false, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the queue and its log gone from node 3", func() bool {
		code, _ := nodes[2].httpDo(t, "guest", "guest", "GET", "/api/queues/%2F/single", nil)
		dirs, _ := filepath.Glob(filepath.Join(nodes[2].DataDir, "topics", "__sluice_quorum_*"))
		return code == 404 && len(dirs) == 0
	})
}
