package test

// Black-box tests of what the broker answers when a write or an fsync
// fails, and of how it recovers by itself: a real server process built
// with the faultinject tag runs its storage on a fault-injecting file
// system driven over HTTP (internal/server/faults_inject.go), real
// clients (franz-go, amqp091-go) talk to it, and kill -9 and a restart
// check what is on disk.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	faultBinOnce sync.Once
	faultBin     string
	faultBinErr  error
)

// startFaultBroker starts a server built with the faultinject tag.
func startFaultBroker(t *testing.T, extra ...string) *broker {
	t.Helper()
	b := &broker{t: t, DataDir: t.TempDir(), extra: extra, bin: faultServerBin(t), ownPorts: true}
	b.Kafka, b.HTTP, b.AMQP = freePort(t), freePort(t), freePort(t)
	b.start()
	t.Cleanup(func() { b.Stop() })
	return b
}

// faultServerBin builds (once) and returns the server binary with the
// faultinject tag.
func faultServerBin(t *testing.T) string {
	t.Helper()
	faultBinOnce.Do(func() {
		faultBin = filepath.Join(filepath.Dir(sluiceBin), "sluice-faultinject")
		args := []string{"build", "-tags", "faultinject", "-o", faultBin}
		if os.Getenv("SLUICE_TEST_RACE") != "" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "../cmd/sluice")...).CombinedOutput()
		if err != nil {
			faultBinErr = fmt.Errorf("building the faultinject server: %v\n%s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBin
}

// fault arms or clears a fault in a faultinject server (op and path as
// in faults_inject.go) and returns the answer.
func (b *broker) fault(t testing.TB, op, path string) string {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://%s/debug/faults?op=%s&path=%s", b.HTTP, op, path), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fault %s: %s %s", op, resp.Status, body)
	}
	return string(body)
}

// storageAlarms returns the "storage" alarms of the alarms health check
// (logs refusing writes), or nil while it passes.
func (b *broker) storageAlarms(t testing.TB) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+b.HTTP+"/api/health/checks/alarms", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string           `json:"status"`
		Alarms []map[string]any `json:"alarms"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, a := range body.Alarms {
		if a["resource"] == "storage" {
			out = append(out, a)
		}
	}
	return out
}

// waitStorageAlarm waits until the alarms health check reports the log
// (kind and name) as failed.
func (b *broker) waitStorageAlarm(t *testing.T, kind, log string) {
	t.Helper()
	waitFor(t, 10*time.Second, "a storage alarm for "+kind+" "+log, func() bool {
		for _, a := range b.storageAlarms(t) {
			if a["kind"] == kind && a["log"] == log {
				return true
			}
		}
		return false
	})
}

// initProducer gets a producer id and epoch.
func initProducer(t *testing.T, c *kgo.Client) (int64, int16) {
	t.Helper()
	ipr, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxT(t, 10*time.Second), c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, kerr.ErrorForCode(ipr.ErrorCode))
	}
	return ipr.ProducerID, ipr.ProducerEpoch
}

// produceAsync sends one produce request on its own client (its own
// connection) and delivers the answer, or the error, on the channel.
type produceAnswer struct {
	what string
	resp kmsg.ProduceResponseTopicPartition
	err  error
}

func produceAsync(t *testing.T, b *broker, topic, what string, batch []byte, out chan<- produceAnswer) {
	c := b.client(t)
	go func() {
		req := produceRequest(topic, batch)
		req.TimeoutMillis = 30000
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, c)
		a := produceAnswer{what: what, err: err}
		if err == nil {
			a.resp = resp.Topics[0].Partitions[0]
		}
		out <- a
	}()
}

// readValues reads partition 0 of topic from the start to its end and
// returns the value at each offset.
func readValues(t *testing.T, b *broker, topic string) map[int64]string {
	t.Helper()
	ends, err := b.admin(t).ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	got := map[int64]string{}
	if end.Offset == 0 {
		return got
	}
	c := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ctx := ctxT(t, 30*time.Second)
	for int64(len(got)) < end.Offset {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(got), end.Offset, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := got[r.Offset]; dup {
				t.Errorf("offset %d read twice", r.Offset)
			}
			got[r.Offset] = string(r.Value)
		})
	}
	return got
}

// TestIdempotentRetryWaitsForItsOriginal is issue 18's second
// reproduction: a retried idempotent batch arrives on a new connection
// while its original waits for an fsync (here held on purpose). It must not
// be answered before the original is durable; a kill -9 then loses
// nothing that was acknowledged, and after the restart the producer's
// retries land without gaps or duplicates.
func TestIdempotentRetryWaitsForItsOriginal(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	const topic = "held"
	b.createTopic(t, topic, 1, nil)
	c := b.client(t)
	pid, epoch := initProducer(t, c)
	if r := produceRaw(t, c, topic, idempotentBatch(pid, epoch, 0, "zero")); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("seq 0: %v at %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}

	b.fault(t, "hold", "/topics/")
	answers := make(chan produceAnswer, 3)
	produceAsync(t, b, topic, "seq 1", idempotentBatch(pid, epoch, 1, "one"), answers)
	waitFor(t, 10*time.Second, "the fsync of seq 1 held", func() bool {
		return strings.Contains(b.fault(t, "status", ""), `"holding":1`)
	})
	// seq 2 waits in memory behind that fsync; its retry comes on another
	// connection, as a client whose request timed out sends it.
	produceAsync(t, b, topic, "seq 2", idempotentBatch(pid, epoch, 2, "two"), answers)
	produceAsync(t, b, topic, "retry of seq 2", idempotentBatch(pid, epoch, 2, "two"), answers)

	acked := map[int64]string{0: "zero"}
	values := map[string]string{"seq 1": "one", "seq 2": "two", "retry of seq 2": "two"}
	pending := 3
	select {
	case a := <-answers:
		pending--
		if a.err == nil && a.resp.ErrorCode == 0 {
			acked[a.resp.BaseOffset] = values[a.what]
		}
		t.Errorf("%s answered (%v, %v at offset %d) while the fsync is held", a.what, a.err, kerr.ErrorForCode(a.resp.ErrorCode), a.resp.BaseOffset)
	case <-time.After(2 * time.Second):
	}
	b.Kill()
	for ; pending > 0; pending-- {
		if a := <-answers; a.err == nil && a.resp.ErrorCode == 0 {
			acked[a.resp.BaseOffset] = values[a.what]
		}
	}

	b.Restart()
	got := readValues(t, b, topic)
	for off, v := range acked {
		if got[off] != v {
			t.Errorf("acknowledged %q at offset %d; after kill -9 the offset holds %q", v, off, got[off])
		}
	}
	// The producer retries what it was not told about; each lands once.
	c = b.client(t)
	for seq, v := range []string{"zero", "one", "two"} {
		r := produceRaw(t, c, topic, idempotentBatch(pid, epoch, int32(seq), v))
		if r.ErrorCode != 0 || r.BaseOffset != int64(seq) {
			t.Fatalf("retry of seq %d after restart: %v at offset %d", seq, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
		}
	}
	got = readValues(t, b, topic)
	if len(got) != 3 || got[0] != "zero" || got[1] != "one" || got[2] != "two" {
		t.Fatalf("log after retries: %v", got)
	}
}

// TestIdempotentRetryAfterFullDisk is issue 18's first reproduction: a
// batch refused with KAFKA_STORAGE_ERROR on a full disk, sent again, must
// not be answered as a duplicate of a batch that was never stored; once
// the disk has room the broker recovers by itself and the retry is
// written at the offset it was refused.
func TestIdempotentRetryAfterFullDisk(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	const topic = "full"
	b.createTopic(t, topic, 1, nil)
	c := b.client(t)
	pid, epoch := initProducer(t, c)
	if r := produceRaw(t, c, topic, idempotentBatch(pid, epoch, 0, "zero")); r.ErrorCode != 0 {
		t.Fatalf("seq 0: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	big := strings.Repeat("x", 256<<10)

	b.fault(t, "full", "/topics/")
	for _, what := range []string{"seq 1", "retry of seq 1", "second retry of seq 1"} {
		r := produceRaw(t, c, topic, idempotentBatch(pid, epoch, 1, big))
		if r.ErrorCode != kerr.KafkaStorageError.Code {
			t.Fatalf("%s on a full disk: %v at offset %d, want KAFKA_STORAGE_ERROR", what, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
		}
	}
	b.waitStorageAlarm(t, "partition", "full-0")

	b.fault(t, "clear", "")
	waitFor(t, 20*time.Second, "the partition to recover by itself", func() bool { return len(b.storageAlarms(t)) == 0 })
	for _, what := range []string{"retry of seq 1 after recovery", "its duplicate"} {
		r := produceRaw(t, c, topic, idempotentBatch(pid, epoch, 1, big))
		if r.ErrorCode != 0 || r.BaseOffset != 1 {
			t.Fatalf("%s: %v at offset %d, want offset 1", what, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
		}
	}
	if n := strings.Count(b.Logs(), `"msg":"log failed: refusing writes until it is recovered","kind":"partition","log":"full-0"`); n != 1 {
		t.Errorf("the partition's failure logged %d times, want once:\n%s", n, b.Logs())
	}

	b.Kill()
	b.Restart()
	got := readValues(t, b, topic)
	if len(got) != 2 || got[0] != "zero" || got[1] != big {
		t.Fatalf("after kill -9: %d records, offset 1 holds %d bytes", len(got), len(got[1]))
	}
}

// TestAMQPFailedFsyncNacksAndRecovers: publishes whose fsync fails are
// nacked (or their channel closed), and must not come back after a
// restart; confirmed ones must; the queue recovers by itself, its count
// leaves out what failed, and takes and confirms publishes again.
func TestAMQPFailedFsyncNacksAndRecovers(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	ch := b.channel(t)
	fatal := fatalIf(t)
	_, err := ch.QueueDeclare("work", true, false, false, false, nil)
	fatal(err)
	fatal(ch.Confirm(false))

	confirmed := map[string]bool{}
	failed := map[string]bool{}
	publish := func(ch *amqp.Channel, body string) (ok bool, err error) {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "", "work", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			return false, err
		}
		return dc.WaitContext(ctxT(t, 10*time.Second))
	}
	for i := range 10 {
		body := fmt.Sprint("before-", i)
		if ok, err := publish(ch, body); !ok || err != nil {
			t.Fatalf("publish %s: %v %v", body, ok, err)
		}
		confirmed[body] = true
	}

	b.fault(t, "fail-sync", "/queues/")
	for i := range 10 {
		body := fmt.Sprint("during-", i)
		ok, err := publish(ch, body)
		if ok {
			t.Fatalf("%s confirmed through a failed fsync", body)
		}
		failed[body] = true
		if err != nil { // the channel or connection closed (541)
			if code := amqpErrCode(err); code != 541 && !ch.IsClosed() {
				t.Fatalf("publish %s: %v", body, err)
			}
			break
		}
	}
	b.waitStorageAlarm(t, "queue", "work")

	// The failed fsync keeps failing, so the queue stays failed: every
	// place an operator looks says so.
	if out := mustAdmin(t, b, "status"); !strings.Contains(out, "Failed logs:   1, refusing writes") || !strings.Contains(out, "queue work in vhost /") {
		t.Errorf("sluice status does not show the failed queue:\n%s", out)
	}
	if _, body := b.httpDo(t, "guest", "guest", "GET", "/metrics", nil); !strings.Contains(string(body), `sluice_storage_failed_logs{kind="queue"} 1`) {
		t.Errorf("/metrics does not count the failed queue")
	}
	if n := strings.Count(b.Logs(), `"msg":"log failed: refusing writes until it is recovered","kind":"queue","log":"work"`); n != 1 {
		t.Errorf("the queue's failure logged %d times, want once", n)
	}

	b.fault(t, "clear", "")
	waitFor(t, 20*time.Second, "the queue to recover by itself", func() bool { return len(b.storageAlarms(t)) == 0 })
	ch = b.channel(t)
	fatal(ch.Confirm(false))
	for i := range 5 {
		body := fmt.Sprint("after-", i)
		if ok, err := publish(ch, body); !ok || err != nil {
			t.Fatalf("publish %s after recovery: %v %v", body, ok, err)
		}
		confirmed[body] = true
	}
	q, err := ch.QueueDeclarePassive("work", true, false, false, false, nil)
	fatal(err)
	if q.Messages != len(confirmed) {
		t.Errorf("queue counts %d messages after recovery, %d were confirmed", q.Messages, len(confirmed))
	}

	b.Kill()
	b.Restart()
	ch = b.channel(t)
	got := map[string]bool{}
	for {
		d, ok, err := ch.Get("work", true)
		fatal(err)
		if !ok {
			break
		}
		if got[string(d.Body)] {
			t.Errorf("%s delivered twice", d.Body)
		}
		got[string(d.Body)] = true
	}
	for body := range confirmed {
		if !got[body] {
			t.Errorf("confirmed %s missing after kill -9", body)
		}
	}
	for body := range failed {
		if got[body] {
			t.Errorf("%s was refused to its publisher, yet came back after the restart", body)
		}
	}
	if len(got) != len(confirmed) {
		var extra []string
		for body := range got {
			if !confirmed[body] {
				extra = append(extra, body)
			}
		}
		t.Errorf("after the restart %d messages, %d confirmed; unexpected: %v", len(got), len(confirmed), extra)
	}
}

// TestMetadataLogFailure: with the metadata log's fsync failing, every
// change answers the error Apache Kafka (or RabbitMQ) clients expect in
// that state and takes no effect, before or after a kill -9; the log
// recovers by itself once fsyncs succeed again.
func TestMetadataLogFailure(t *testing.T) {
	b := startFaultBroker(t, "--disk-free-limit", "0")
	b.createTopic(t, "before", 1, nil)
	ch := b.channel(t)
	fatal := fatalIf(t)
	_, err := ch.QueueDeclare("q-before", true, false, false, false, nil)
	fatal(err)
	// Clients that do not retry: the answers themselves are checked.
	c := b.client(t, kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
	adm := kadm.NewClient(c)
	commit := func(group string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "before"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), c)
		fatal(err)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	initPID := func() int16 {
		resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxT(t, 10*time.Second), c)
		fatal(err)
		return resp.ErrorCode
	}

	b.fault(t, "fail-sync", "/meta/")
	resp, err := adm.CreateTopic(ctxT(t, 10*time.Second), 1, 1, nil, "during")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Errorf("CreateTopics with the metadata log failing: %v, want KAFKA_STORAGE_ERROR", err)
	}
	// Offset commits go to their own log (test/offsets_test.go covers its
	// failure): the metadata log's failure does not stop them.
	if code := commit("g"); code != 0 {
		t.Errorf("OffsetCommit with the metadata log failing: %v, want success", kerr.ErrorForCode(code))
	}
	if code := initPID(); code != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("InitProducerID: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}
	_, err = b.channel(t).QueueDeclare("q-during", true, false, false, false, nil)
	if code := amqpErrCode(err); code != 541 {
		t.Errorf("queue.declare with the metadata log failing: %v, want 541", err)
	}
	b.waitStorageAlarm(t, "metadata", "meta")

	b.fault(t, "clear", "")
	waitFor(t, 20*time.Second, "the metadata log to recover by itself", func() bool { return len(b.storageAlarms(t)) == 0 })
	if n := strings.Count(b.Logs(), `"msg":"log failed: refusing writes until it is recovered","kind":"metadata"`); n != 1 {
		t.Errorf("the metadata log's failure logged %d times, want once", n)
	}
	b.createTopic(t, "after", 1, nil)
	if code := commit("g"); code != 0 {
		t.Errorf("OffsetCommit after recovery: %v", kerr.ErrorForCode(code))
	}
	if code := initPID(); code != 0 {
		t.Errorf("InitProducerID after recovery: %v", kerr.ErrorForCode(code))
	}

	b.Kill()
	b.Restart()
	topics, err := b.admin(t).ListTopics(ctxT(t, 10*time.Second))
	fatal(err)
	for name, want := range map[string]bool{"before": true, "during": false, "after": true} {
		if topics.Has(name) != want {
			t.Errorf("after kill -9, topic %q exists: %v, want %v", name, topics.Has(name), want)
		}
	}
	ch = b.channel(t)
	if _, err := ch.QueueDeclarePassive("q-during", true, false, false, false, nil); err == nil {
		t.Error("q-during, refused with 541, exists after the restart")
	}
	ch = b.channel(t)
	if _, err := ch.QueueDeclarePassive("q-before", true, false, false, false, nil); err != nil {
		t.Errorf("q-before lost: %v", err)
	}
}
