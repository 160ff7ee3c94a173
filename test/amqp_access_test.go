package test

import (
	"os/exec"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAMQPUsersAndPermissions: users, vhosts and permissions managed with
// the CLI (broker stopped) govern what AMQP clients may do.
func TestAMQPUsersAndPermissions(t *testing.T) {
	b := startBroker(t)
	b.Stop()
	sluiceOffline(t, "vhost", "add", "team", "--data-dir", b.DataDir)
	sluiceOffline(t, "user", "add", "alice", "--password", "s3cret", "--data-dir", b.DataDir)
	sluiceOffline(t, "permissions", "set", "alice", "--vhost", "team", "--configure", "^alice-", "--write", ".*", "--read", ".*", "--data-dir", b.DataDir)
	out := sluiceOffline(t, "permissions", "list", "--data-dir", b.DataDir)
	if !strings.Contains(out, "alice") || !strings.Contains(out, "^alice-") {
		t.Fatalf("permissions list:\n%s", out)
	}
	b.Restart()

	url := "amqp://alice:s3cret@" + b.AMQP + "/team"
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("alice login: %v", err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("alice-jobs", true, false, false, false, nil); err != nil {
		t.Fatalf("declare within the configure pattern: %v", err)
	}
	_, err = ch.QueueDeclare("bob-jobs", true, false, false, false, nil)
	if amqpErrCode(err) != 403 {
		t.Fatalf("declare outside the configure pattern: %v, want 403", err)
	}
	if _, err := amqp.Dial("amqp://alice:wrong@" + b.AMQP + "/team"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := amqp.Dial("amqp://alice:s3cret@" + b.AMQP + "/"); err == nil {
		t.Fatal("alice has no permissions on / but got in")
	}
	// AMQPLAIN as well as PLAIN
	c2, err := amqp.DialConfig(url, amqp.Config{SASL: []amqp.Authentication{&amqp.AMQPlainAuth{Username: "alice", Password: "s3cret"}}})
	if err != nil {
		t.Fatalf("AMQPLAIN login: %v", err)
	}
	c2.Close()
}

// sluiceOffline runs a sluice command that works on a data directory.
func sluiceOffline(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(sluiceBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
