package test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// startBrokerWithFileLimit starts a server whose RLIMIT_NOFILE (soft and
// hard) is limit from its first instruction on, and on every restart: it
// runs under prlimit.
//
// Starts and stops may take minutes: loading or closing 10,000 queues on
// two cores shared with the rest of the suite.
func startBrokerWithFileLimit(t *testing.T, limit int, extra ...string) *broker {
	t.Helper()
	needTool(t, "/usr/bin/prlimit")
	wrapper := filepath.Join(t.TempDir(), "sluice-limited")
	script := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/prlimit --nofile=%d %s \"$@\"\n", limit, sluiceBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, DataDir: t.TempDir(), extra: extra, ownPorts: true, bin: wrapper,
		startWait: 3 * time.Minute, stopWait: 3 * time.Minute}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.start()
	t.Cleanup(func() { b.Stop() })
	return b
}

// TestTenThousandDurableQueuesUnderLowFileLimit: a broker limited to 1,024
// open files takes 10,000 durable queues (each a log of three files and
// an ack record: 40,000 files), keeps the messages published to a sample
// of them, and after a restart under the same limit serves them again.
// Before the file handle budget, declarations failed with 541 at about
// 250 queues under this limit.
func TestTenThousandDurableQueuesUnderLowFileLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sets the limit with prlimit and counts descriptors in /proc")
	}
	const (
		limit   = 1024
		queues  = 10_000
		workers = 4
		every   = 250 // a message in every 250th queue
	)
	b := startBrokerWithFileLimit(t, limit)
	name := func(i int) string { return "many-" + strconv.Itoa(i) }

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn, err := amqp.Dial(b.amqpURL())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				errs <- err
				return
			}
			if err := ch.Confirm(false); err != nil {
				errs <- err
				return
			}
			for i := w; i < queues; i += workers {
				if _, err := ch.QueueDeclare(name(i), true, false, false, false, nil); err != nil {
					errs <- fmt.Errorf("declare %s: %w", name(i), err)
					return
				}
				if i%every != 0 {
					continue
				}
				dc, err := ch.PublishWithDeferredConfirm("", name(i), true, false, amqp.Publishing{
					DeliveryMode: amqp.Persistent, Body: []byte("body of " + name(i)),
				})
				if err != nil {
					errs <- err
					return
				}
				if ok, err := dc.WaitContext(ctxT(t, 30*time.Second)); err != nil || !ok {
					errs <- fmt.Errorf("publish to %s: confirmed %v, %v", name(i), ok, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := dirEntries(t, filepath.Join(b.DataDir, "queues")); got < queues {
		t.Fatalf("%d queue directories, want %d", got, queues)
	}
	if n := openFiles(t, b.cmd.Process.Pid); n >= limit {
		t.Fatalf("%d descriptors open with limit %d", n, limit)
	}
	sc := b.scrape(t)
	budget, _ := sc.value("sluice_file_handles_budget")
	open, _ := sc.value("sluice_file_handles_open")
	evictions, _ := sc.value("sluice_file_handle_evictions_total")
	if budget != limit/2 || open > budget || evictions == 0 {
		t.Fatalf("file handles: %v open, budget %v, %v evictions; want at most the budget of %d, with evictions", open, budget, evictions, limit/2)
	}

	// Get half the sample now (and ack), the rest after a restart.
	check := func(ch *amqp.Channel, i int) {
		t.Helper()
		m, ok, err := ch.Get(name(i), false)
		if err != nil || !ok {
			t.Fatalf("get from %s: ok %v, %v", name(i), ok, err)
		}
		if string(m.Body) != "body of "+name(i) {
			t.Fatalf("get from %s: %q", name(i), m.Body)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	ch := b.channel(t)
	for i := 0; i < queues; i += 2 * every {
		check(ch, i)
	}

	b.Stop()
	b.Restart()
	ch = b.channel(t)
	for i := 0; i < queues; i += every {
		if i%(2*every) == 0 { // got and acked before the restart
			if _, ok, err := ch.Get(name(i), false); err != nil || ok {
				t.Fatalf("%s after restart: a message (%v) or %v; it was acked", name(i), ok, err)
			}
			continue
		}
		check(ch, i)
	}
	// Every queue came back, and new ones still declare.
	for _, i := range []int{1, queues / 3, queues - 1} {
		if q, err := ch.QueueDeclarePassive(name(i), true, false, false, false, nil); err != nil || q.Messages != 0 {
			t.Fatalf("%s after restart: %+v, %v", name(i), q, err)
		}
	}
	if _, err := ch.QueueDeclare("after-restart", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if n := openFiles(t, b.cmd.Process.Pid); n >= limit {
		t.Fatalf("%d descriptors open after the restart with limit %d", n, limit)
	}
}
