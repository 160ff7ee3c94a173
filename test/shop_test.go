package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestShopReferenceSystem runs the reference system (examples/shop, pika
// and kafka-python) against a real broker: `shop.py run` starts the order,
// inventory, payment, shipping, notification, points and analytics
// services; `shop.py load` places 50 orders over HTTP and pays most of
// them; mid-load the order, inventory and analytics services are killed
// with SIGKILL and the runner restarts them; `shop.py check` must then find
// every order paid or cancelled (the unpaid ones by the 2 s payment
// timeout, a delayed message), stock consistent with what was sold,
// nothing processed twice, and analytics (a Kafka
// consumer group on the topic the events exchange feeds) counting every
// order. Two malformed messages are retried up to the queues' delivery
// limit and dead-lettered. A replay of the topic from its beginning counts them all again.
func TestShopReferenceSystem(t *testing.T) {
	needPythonModule(t, "pika")
	needPythonModule(t, "kafka")
	b := startBroker(t)
	state := t.TempDir()
	orderHTTP := freePort(t)
	script, err := filepath.Abs("../examples/shop/shop.py")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"SHOP_AMQP_URL=amqp://guest:guest@"+b.AMQP+"/",
		"SHOP_KAFKA="+b.Kafka,
		"SHOP_MGMT=http://guest:guest@"+b.HTTP,
		"SHOP_HTTP="+orderHTTP,
		"SHOP_STATE="+state,
		"SHOP_PAYMENT_TIMEOUT=2",
		"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1",
	)
	shop := func(timeout time.Duration, args ...string) toolRun {
		cmd := exec.Command(python3Path, append([]string{script}, args...)...)
		cmd.Env = env
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(timeout):
			cmd.Process.Kill()
			err = fmt.Errorf("shop.py %s: killed after %v: %v", args[0], timeout, <-done)
		}
		return toolRun{Stdout: out.String(), Stderr: errOut.String(), Err: err}
	}

	// The services, in their own process group so that cleanup ends
	// exactly what this test started.
	runLog := filepath.Join(state, "run.log")
	logFile, err := os.Create(runLog)
	if err != nil {
		t.Fatal(err)
	}
	run := exec.Command(python3Path, script, "run")
	run.Env = env
	run.Stdout, run.Stderr = logFile, logFile
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	runExited := make(chan struct{})
	go func() { run.Wait(); close(runExited) }()
	t.Cleanup(func() {
		run.Process.Signal(syscall.SIGTERM)
		select {
		case <-runExited:
		case <-time.After(10 * time.Second):
		}
		syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
		<-runExited
		logFile.Close()
	})
	runOutput := func() string { data, _ := os.ReadFile(runLog); return string(data) }
	failf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n--- shop.py run:\n%s\n--- server log:\n%s", append(args, clip(runOutput()), clip(b.Logs()))...)
	}

	// orderCount is how many orders the order service has stored.
	orderCount := func() int {
		resp, err := http.Get("http://" + orderHTTP + "/orders")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var byStatus map[string]int
		if json.NewDecoder(resp.Body).Decode(&byStatus) != nil {
			return -1
		}
		n := 0
		for _, c := range byStatus {
			n += c
		}
		return n
	}
	waitFor(t, 30*time.Second, "the order service answering", func() bool {
		select {
		case <-runExited:
			failf("shop.py run exited")
		default:
		}
		return orderCount() >= 0
	})

	// Bad requests are answered 400 and store nothing.
	for _, body := range []string{"{not json", `{"sku":"piano","qty":1}`, `{"sku":"mug","qty":0}`, `["a"]`, `{"qty":"x"}`} {
		resp, err := http.Post("http://"+orderHTTP+"/orders", "application/json", strings.NewReader(body))
		if err != nil {
			failf("POST /orders %s: %v", body, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			failf("POST /orders %s: status %d, want 400", body, resp.StatusCode)
		}
	}
	if n := orderCount(); n != 0 {
		failf("%d orders stored after bad requests", n)
	}

	const orders = 50
	var wg sync.WaitGroup
	var loadRun toolRun
	wg.Add(1)
	go func() {
		defer wg.Done()
		loadRun = shop(60*time.Second, "load", "--orders", strconv.Itoa(orders), "--unpaid", "0.3", "--poison", "2")
	}()

	// Mid-load: kill the order service (load retries its idempotent
	// POSTs meanwhile) and a consumer on each protocol.
	waitFor(t, 30*time.Second, "a first part of the orders placed", func() bool { return orderCount() >= orders/4 })
	pid := func(service string) int {
		data, _ := os.ReadFile(filepath.Join(state, "pids", service))
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	for _, service := range []string{"order", "inventory", "analytics"} {
		old := pid(service)
		if old <= 0 {
			failf("no pid file for %s", service)
		}
		stored := orderCount()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			failf("kill %s: %v", service, err)
		}
		t.Logf("killed %s (pid %d) with %d orders stored", service, old, stored)
		waitFor(t, 20*time.Second, service+" restarted", func() bool { p := pid(service); return p > 0 && p != old })
	}
	wg.Wait()
	if loadRun.Err != nil {
		failf("load: %v\n%s%s", loadRun.Err, loadRun.Stdout, loadRun.Stderr)
	}
	t.Logf("load: %s", strings.TrimSpace(loadRun.Stdout))

	check := shop(60*time.Second, "check", "--wait", "45")
	if check.Err != nil {
		failf("check: %v\n%s%s", check.Err, check.Stdout, check.Stderr)
	}
	t.Logf("check: %s", strings.TrimSpace(check.Stdout))
	// Two poison messages, each reaching the inventory and notification
	// queues, retried to the delivery limit and dead-lettered by each.
	if !strings.Contains(check.Stdout, fmt.Sprintf("%d orders:", orders)) || !strings.Contains(check.Stdout, "4 dead letters") ||
		!strings.Contains(check.Stdout, "ok:") {
		failf("check output: %s", check.Stdout)
	}
	for _, service := range []string{"order", "inventory", "analytics"} {
		if !strings.Contains(runOutput(), service+" exited (-9); restarting") {
			failf("the runner did not report restarting the killed %s service", service)
		}
	}

	replay := shop(60*time.Second, "analytics", "--replay")
	if replay.Err != nil {
		failf("analytics --replay: %v\n%s%s", replay.Err, replay.Stdout, replay.Stderr)
	}
	var counts struct {
		Events map[string]int `json:"events"`
	}
	if err := json.Unmarshal([]byte(replay.Stdout), &counts); err != nil {
		failf("analytics --replay output %q: %v", replay.Stdout, err)
	}
	t.Logf("replay: %s", strings.TrimSpace(replay.Stdout))
	if counts.Events["ORDER_CREATED"] != orders {
		failf("replay counted %d ORDER_CREATED, want %d", counts.Events["ORDER_CREATED"], orders)
	}
	if paid, cancelled := counts.Events["ORDER_PAID"], counts.Events["ORDER_CANCELLED"]; paid+cancelled != orders || cancelled == 0 || paid == 0 {
		failf("replay counted %d ORDER_PAID and %d ORDER_CANCELLED, want both and %d in all", paid, cancelled, orders)
	}
}
