package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Debian's Burrow (1.2) and the ZooKeeper it insists on for its own
// coordination (it keeps nothing about Kafka there: Kafka-committed
// offsets it reads from __consumer_offsets).
const (
	burrowPath    = "/usr/bin/Burrow"
	zookeeperJar  = "/usr/share/java/zookeeper.jar"
	burrowCluster = "local"
)

// startProcess starts a helper process with its output in a file under
// dir, and kills it when the test ends.
func startProcess(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		out.Close()
	})
}

func logTail(dir, name string) string {
	data, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	return clip(string(data))
}

// startZooKeeper runs a standalone ZooKeeper on a free loopback port and
// returns its address.
func startZooKeeper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, dir, "java", "-cp", zookeeperJar, "org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg"))
	// Serving, not just listening: its "srvr" command answers the mode.
	waitFor(t, 30*time.Second, "zookeeper serving", func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("srvr")); err != nil {
			return false
		}
		out, _ := io.ReadAll(c)
		return strings.Contains(string(out), "Mode: standalone")
	})
	return addr
}

// burrowLag is the part of Burrow's /v3/kafka/<cluster>/consumer/<group>/lag
// answer the test reads.
type burrowLag struct {
	Error  bool `json:"error"`
	Status struct {
		Status     string `json:"status"`
		TotalLag   int64  `json:"totallag"`
		Partitions []struct {
			Topic      string `json:"topic"`
			Partition  int32  `json:"partition"`
			CurrentLag int64  `json:"current_lag"`
			End        struct {
				Offset int64 `json:"offset"`
			} `json:"end"`
		} `json:"partitions"`
	} `json:"status"`
}

// Burrow, a consumer lag checker that reads Kafka-committed offsets from
// __consumer_offsets, reports a Sluice group and its lag per partition,
// and follows the group's next commit.
func TestBurrowReportsGroupLag(t *testing.T) {
	needTool(t, burrowPath)
	needTool(t, zookeeperJar)
	needTool(t, "/usr/bin/java")
	zk := startZooKeeper(t)
	b := startBroker(t)
	b.createTopic(t, "burrow-in", 2, nil)
	c := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 60*time.Second)
	for p, n := range []int{10, 5} {
		for range n {
			if r := c.ProduceSync(ctx, &kgo.Record{Topic: "burrow-in", Partition: int32(p), Value: []byte("x")}); r.FirstErr() != nil {
				t.Fatal(r.FirstErr())
			}
		}
	}
	commit := func(p int32, off int64) {
		if code, err := commitOffset(ctx, c, "burrow-group", "burrow-in", p, off); err != nil || code != 0 {
			t.Fatalf("commit: %v %v", err, kerr.ErrorForCode(code))
		}
	}
	commit(0, 4)
	commit(1, 5)

	dir := t.TempDir()
	httpAddr := freePort(t)
	cfg := fmt.Sprintf(`[general]
pidfile=%[1]q
[logging]
level="info"
[zookeeper]
servers=[%[2]q]
timeout=6
root-path="/burrow"
[client-profile.sluice]
client-id="burrow-test"
kafka-version="2.0.0"
[cluster.%[5]s]
class-name="kafka"
servers=[%[3]q]
client-profile="sluice"
topic-refresh=2
offset-refresh=1
[consumer.%[5]s]
class-name="kafka"
cluster=%[5]q
servers=[%[3]q]
client-profile="sluice"
start-latest=false
[httpserver.default]
address=%[4]q
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
`, filepath.Join(dir, "burrow.pid"), zk, b.Kafka, httpAddr, burrowCluster)
	if err := os.WriteFile(filepath.Join(dir, "burrow.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, dir, burrowPath, "-config-dir", dir)

	lagURL := fmt.Sprintf("http://%s/v3/kafka/%s/consumer/burrow-group/lag", httpAddr, burrowCluster)
	var last string
	waitLag := func(want map[int32]int64, total int64) {
		t.Helper()
		ok := func() bool {
			resp, err := http.Get(lagURL)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var lag burrowLag
			var raw strings.Builder
			if err := json.NewDecoder(io.TeeReader(resp.Body, &raw)).Decode(&lag); err != nil {
				return false
			}
			last = raw.String()
			if lag.Error || lag.Status.TotalLag != total || len(lag.Status.Partitions) != len(want) {
				return false
			}
			for _, p := range lag.Status.Partitions {
				if p.Topic != "burrow-in" || p.CurrentLag != want[p.Partition] {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(60 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("Burrow never reported lag %v (total %d); last answer:\n%s\n--- burrow log:\n%s", want, total, last, logTail(dir, "Burrow"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitLag(map[int32]int64{0: 6, 1: 0}, 6)
	commit(0, 10)
	waitLag(map[int32]int64{0: 0, 1: 0}, 0)
}
