package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterDelayedExchangeSurvivesLeaderLoss: on a four-node cluster a
// delayed exchange's waiting messages are a replicated log on three of
// the nodes. Messages published with x-delay, half through the fourth node
// (not a member: forwarded), half through the node that leads the store,
// are confirmed, then that node is killed with SIGKILL before any comes
// due: every message still comes, through the exchange into a quorum
// queue, and none before its due time.
func TestClusterDelayedExchangeSurvivesLeaderLoss(t *testing.T) {
	nodes := startCluster(t, 4)
	t.Cleanup(func() {
		if t.Failed() {
			for i, b := range nodes {
				t.Logf("node %d's log:\n%s", i+1, quorumLogLines(b.Logs()))
			}
		}
	})
	waitFor(t, 30*time.Second, "four registered nodes", func() bool { return len(clusterView(t, nodes[0])) == 4 })

	ch1, err := nodes[0].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch1.ExchangeDeclare("later", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}); err != nil {
		t.Fatal(err)
	}
	// The queue on nodes 2, 3 and 4: it keeps a majority whichever of the
	// store's members is killed.
	ch2, err := nodes[1].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.QueueDeclare("due", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch2.QueueBind("due", "k", "later", false, nil); err != nil {
		t.Fatal(err)
	}

	// The store's leader: the node that says it leads it.
	leader := -1
	waitFor(t, 20*time.Second, "a node leading the delayed exchange's store", func() bool {
		for i, b := range nodes {
			if strings.Contains(b.Logs(), "delayed exchange: this node leads its store") {
				leader = i
				return true
			}
		}
		return false
	})
	if leader == 3 {
		t.Fatalf("node 4 leads the store: it was to be placed on nodes 1 to 3")
	}

	// Half through node 4, half through the leader (the node killed).
	c4 := nodes[3].dial(t)
	waitForQueue(t, c4, "due")
	ch4, err := c4.Channel()
	if err != nil {
		t.Fatal(err)
	}
	chL, err := nodes[leader].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*amqp.Channel{ch4, chL} {
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	due := map[string]time.Time{}
	for i := range n {
		delay := 4000 + 50*i // ms
		body := fmt.Sprintf("d-%02d", i)
		ch := ch4
		if i%2 == 1 {
			ch = chL
		}
		for attempt := 0; ; attempt++ {
			sent := time.Now()
			dc, err := ch.PublishWithDeferredConfirm("later", "k", false, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent, Body: []byte(body), Headers: amqp.Table{"x-delay": int32(delay)}})
			if err != nil {
				t.Fatal(err)
			}
			if dc.Wait() {
				due[body] = sent.Add(time.Duration(delay) * time.Millisecond)
				break
			}
			if attempt == 20 {
				t.Fatalf("%s nacked 20 times", body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	nodes[leader].Kill()
	killed := time.Now()
	t.Logf("killed node %d, the store's leader", leader+1)

	ds, err := ch4.Consume("due", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for len(got) < n {
		select {
		case d := <-ds:
			at := time.Now()
			b := string(d.Body)
			want, ok := due[b]
			if !ok {
				t.Fatalf("unexpected message %q", b)
			}
			// The due time was taken before the publish: arriving up
			// to a few ms before it is the clock's reading, not early.
			if at.Before(want.Add(-50 * time.Millisecond)) {
				t.Fatalf("%s delivered %v before its due time", b, want.Sub(at))
			}
			got[b] = true
		case <-deadline:
			t.Fatalf("%d of %d delayed messages delivered after the leader's loss (killed %v ago)", len(got), n, time.Since(killed).Round(time.Millisecond))
		}
	}
	t.Logf("all %d delayed messages delivered after the store's leader was killed", n)
}
