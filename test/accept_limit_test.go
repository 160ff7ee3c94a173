package test

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// openFiles counts the descriptors process pid holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// lowestFreeFD is the lowest descriptor number process pid has free: the
// one its next open or accept would get. With the soft limit set to it,
// no descriptor is left, whatever holes the table has above it (a limit
// of the count of open descriptors left one free when the table had a
// hole, and then the test depended on what had been closed before).
func lowestFreeFD(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	used := make(map[int]bool, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			used[n] = true
		}
	}
	n := 0
	for used[n] {
		n++
	}
	return n
}

// setOpenFileLimit sets the soft RLIMIT_NOFILE of process pid, keeping the
// hard limit, so that it can be raised again.
func setOpenFileLimit(t *testing.T, pid, soft int) {
	t.Helper()
	out, err := exec.Command("/usr/bin/prlimit", "--pid", strconv.Itoa(pid), "--nofile="+strconv.Itoa(soft)+":").CombinedOutput()
	if err != nil {
		t.Fatalf("prlimit: %v\n%s", err, out)
	}
}

// dialAMQPQuick opens an AMQP connection whose handshake must finish in
// 2s: a server that does not accept makes it fail.
func dialAMQPQuick(b *broker) (*amqp.Connection, error) {
	return amqp.DialConfig(b.amqpURL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
}

// kafkaAnswers sends ApiVersions v0 on a new connection and reports
// whether an answer comes within 2s.
func kafkaAnswers(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	body := req.AppendTo(nil)
	frame := binary.BigEndian.AppendUint32(nil, uint32(8+2+len(body)))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, 0)              // version
	frame = binary.BigEndian.AppendUint32(frame, 7)              // correlation id
	frame = binary.BigEndian.AppendUint16(frame, uint16(0xffff)) // null client id
	frame = append(frame, body...)
	if _, err := nc.Write(frame); err != nil {
		return false
	}
	var size [4]byte
	_, err = io.ReadFull(nc, size[:])
	return err == nil
}

// The server's descriptors run out, as they do with thousands of queues
// at the default limit: a queue declaration that cannot open its files
// fails with AMQP 541 INTERNAL_ERROR and leaves nothing behind; a topic's
// creation opens no file and succeeds, and the first produce to it fails
// with KAFKA_STORAGE_ERROR until the partition is recovered, leaving no
// record behind;
// new clients wait in the listen backlog while none is free; and once
// descriptors are freed, the AMQP and Kafka listeners accept again (they
// used to stop for good at the first EMFILE, port still open), and so does
// the HTTP one.
func TestAcceptAfterDescriptorsRunOut(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc and sets limits with prlimit")
	}
	needTool(t, "/usr/bin/prlimit")
	b := startBroker(t)
	pid := b.cmd.Process.Pid

	// The clients that act while descriptors are short connect first.
	// kc creates a topic, which opens its connection to the controller:
	// the CreateTopics below must not need a new one (b.createTopic
	// would use a client of its own and leave kc unconnected, and then
	// whether kc could connect depended on holes in the descriptor table).
	kc := b.client(t)
	if resp, err := kadm.NewClient(kc).CreateTopic(ctxT(t, 10*time.Second), 1, 1, nil, "warm"); err != nil || resp.Err != nil {
		t.Fatalf("create topic warm: %v %v", err, resp.Err)
	}
	// and a produce opens its produce connection.
	if err := kc.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "warm", Value: []byte("w")}).FirstErr(); err != nil {
		t.Fatalf("produce to warm: %v", err)
	}
	ch := b.channel(t)
	if _, err := ch.QueueDeclare("kept", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	queuesBefore := dirEntries(t, filepath.Join(b.DataDir, "queues"))

	// No descriptor to spare.
	setOpenFileLimit(t, pid, lowestFreeFD(t, pid))

	_, err := ch.QueueDeclare("no-room", true, false, false, false, nil)
	if code := amqpErrCode(err); code != amqp.InternalError {
		t.Fatalf("queue.declare without descriptors: %v (code %d), want 541 INTERNAL_ERROR", err, code)
	}
	// A topic's creation opens no file (its partitions' files are made
	// by their first write), so it succeeds; the first produce to it
	// cannot make its files and fails with KAFKA_STORAGE_ERROR.
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "no-room", 3, 1
	create.Topics = append(create.Topics, ct)
	create.TimeoutMillis = 10000
	cresp, err := create.RequestWith(ctxT(t, 20*time.Second), kc)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(cresp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("CreateTopics without descriptors: %v, want success (it opens no file)\n%s", err, b.Logs())
	}
	if p := produceRaw(t, kc, "no-room", idempotentBatch(-1, -1, -1, "x")); kerr.ErrorForCode(p.ErrorCode) != kerr.KafkaStorageError {
		t.Fatalf("first produce to a new partition without descriptors: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(p.ErrorCode))
	}

	// A new client is not accepted (its handshake times out in the
	// backlog), on either port; one that a descriptor closed since the
	// limit was set makes room for is held.
	var held []*amqp.Connection
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for {
		c, err := dialAMQPQuick(b)
		if err != nil {
			break
		}
		held = append(held, c)
		if len(held) > 20 {
			t.Fatalf("%d connections accepted with the descriptors one short", len(held))
		}
	}
	if kafkaAnswers(b.Kafka) {
		t.Fatal("a new Kafka connection was answered with no descriptor free")
	}

	// Free descriptors without raising the limit: both listeners serve
	// new clients again.
	for _, c := range held {
		c.Close()
	}
	held = nil
	kc.Close()
	waitFor(t, 20*time.Second, "a new AMQP connection accepted", func() bool {
		c, err := dialAMQPQuick(b)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	waitFor(t, 20*time.Second, "a new Kafka connection answered", func() bool { return kafkaAnswers(b.Kafka) })
	waitFor(t, 20*time.Second, "the management API answering", func() bool {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + b.HTTP + "/api/overview")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode < 500
	})
	for _, want := range []string{"accepting connections failed", "too many open files", "accepting connections again"} {
		if !strings.Contains(b.Logs(), want) {
			t.Errorf("log lacks %q:\n%s", want, b.Logs())
		}
	}
	// The failures are counted, per listener.
	sc := b.scrape(t)
	for _, l := range []string{"amqp", "kafka"} {
		if v, ok := sc.value("sluice_accept_failures_total", "listener="+l); !ok || v < 1 {
			t.Errorf("sluice_accept_failures_total{listener=%q} = %v (present %v), want at least 1", l, v, ok)
		}
	}

	// With descriptors to spare again, nothing of the failed declarations
	// remains, and both names can be made now.
	// (With no descriptor at all the failed declaration could not even
	// list its directory; the broker retries the removal until it can.)
	setOpenFileLimit(t, pid, 4096)
	waitFor(t, 10*time.Second, "the failed declaration's directory removed", func() bool {
		return dirEntries(t, filepath.Join(b.DataDir, "queues")) == queuesBefore
	})
	for _, q := range mgmtQueueNames(t, b) {
		if q == "no-room" {
			t.Errorf("queue no-room listed after its declaration failed")
		}
	}
	if _, err := b.channel(t).QueueDeclare("no-room", true, false, false, false, nil); err != nil {
		t.Errorf("declaring no-room with descriptors free: %v", err)
	}
	// The partition whose first write failed refuses writes until the
	// recovery loop reopens it (within its backoff, seconds); the failed
	// write left no record behind, so the next one is offset 0.
	pc := b.client(t)
	var p kmsg.ProduceResponseTopicPartition
	waitFor(t, 60*time.Second, "the failed partition recovered", func() bool {
		p = produceRaw(t, pc, "no-room", idempotentBatch(-1, -1, -1, "y"))
		return kerr.ErrorForCode(p.ErrorCode) != kerr.KafkaStorageError
	})
	if p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Errorf("produce to no-room with descriptors free: %v at offset %d, want offset 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	prod := b.client(t, kgo.DefaultProduceTopic("no-room"))
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Errorf("produce to no-room: %v", err)
	}
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

func mgmtQueueNames(t *testing.T, b *broker) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+b.HTTP+"/api/queues", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var qs []struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&qs); err != nil {
		t.Fatalf("GET /api/queues: %s: %v", resp.Status, err)
	}
	var names []string
	for _, q := range qs {
		names = append(names, q.Name)
	}
	return names
}

// tree lists the files under dir, for failure messages.
func tree(dir string) string {
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	return strings.Join(out, "\n")
}
