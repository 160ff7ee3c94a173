package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newClusterCmd) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Look at a Sluice cluster, or run one on this machine for development",
		Long: `Commands about a cluster of Sluice nodes (docs/clustering.md).

The metadata is replicated with Raft across the nodes; partition data is not
replicated yet. "cluster status" works against any server (a single node lists
itself); "cluster dev" starts a cluster on this machine.`,
	}
	cmd.AddCommand(newClusterStatusCmd(), newClusterDevCmd(), newClusterAddNodeCmd(), newClusterRemoveNodeCmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the nodes of the cluster and its unhealthy partitions",
		Long: `List the nodes of the cluster as the management API of the node at --http
(default ` + defaultHTTP + `) knows them (/api/nodes): id, name, state (running or
unreachable), role in the metadata group (leader, follower, learner; "single"
for a server that is not part of a cluster), whether it is the controller (the
metadata leader, as Kafka clients are told), the partitions it leads and those
it holds a replica of, its rack and addresses. Then the partitions that are
under-replicated (fewer replicas in sync than placed) and offline (no leader),
with topic, partition, leader, replicas, ISR and offline replicas
(/api/cluster/partitions). A partition's ISR is exact when asked of the node
that leads it; another node counts the replicas it reaches.

-o json prints {"nodes": <api/nodes>, "partitions": <api/cluster/partitions>}.`,
		Example: `  sluice cluster status
  sluice cluster status --http http://10.0.0.2:15672 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterStatus(cmd.OutOrStdout(), &f)
		},
	}
	f.register(cmd, false)
	return cmd
}

// clusterPartitionsView is /api/cluster/partitions.
type clusterPartitionsView struct {
	Node            string           `json:"node"`
	Partitions      int              `json:"partitions"`
	UnderReplicated []map[string]any `json:"under_replicated"`
	Offline         []map[string]any `json:"offline"`
}

// clusterStatus prints the nodes, then the partitions that need an
// operator's attention.
func clusterStatus(out io.Writer, f *mgmtFlags) error {
	asJSON, err := f.json()
	if err != nil {
		return err
	}
	var nodes []map[string]any
	rawNodes, err := f.getInto("/api/nodes", &nodes)
	if err != nil {
		return err
	}
	var parts clusterPartitionsView
	rawParts, err := f.getInto("/api/cluster/partitions", &parts)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, map[string]json.RawMessage{"nodes": rawNodes, "partitions": rawParts})
	}
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		addrs, _ := n["addresses"].(map[string]any)
		both := func(plain, tls string) string {
			return strings.Trim(str(addrs[plain])+" "+str(addrs[tls]), " ")
		}
		controller := "no"
		if n["controller"] == true {
			controller = "yes"
		}
		rows = append(rows, []string{str(n["node_id"]), str(n["name"]), str(n["state"]), str(n["role"]), controller,
			str(n["leaders"]), str(n["replicas"]), str(n["rack"]),
			str(addrs["cluster"]), both("kafka", "kafka_tls"), both("amqp", "amqps"), both("http", "https")})
	}
	header := []string{"ID", "NAME", "STATE", "ROLE", "CONTROLLER", "LEADERS", "REPLICAS", "RACK", "CLUSTER", "KAFKA", "AMQP", "HTTP"}
	if err := table(out, header, rows); err != nil {
		return err
	}
	fmt.Fprintf(out, "\npartitions: %d, under-replicated: %d, offline: %d (as %s sees them)\n",
		parts.Partitions, len(parts.UnderReplicated), len(parts.Offline), parts.Node)
	for _, sec := range []struct {
		title string
		list  []map[string]any
	}{{"under-replicated partitions", parts.UnderReplicated}, {"offline partitions", parts.Offline}} {
		if len(sec.list) == 0 {
			continue
		}
		fmt.Fprintf(out, "\n%s:\n", sec.title)
		rows := make([][]string, 0, len(sec.list))
		for _, p := range sec.list {
			rows = append(rows, []string{str(p["topic"]), str(p["partition"]), str(p["leader"]),
				str(p["replicas"]), str(p["isr"]), str(p["offline_replicas"])})
		}
		if err := table(out, []string{"TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"}, rows); err != nil {
			return err
		}
	}
	return nil
}

// devNode is one node of a development cluster: its id, data directory
// and loopback addresses.
type devNode struct {
	ID                                         int
	DataDir                                    string
	Rack                                       string
	ClusterAddr, KafkaAddr, AMQPAddr, HTTPAddr string
}

// devCluster is a development cluster's plan: where it lives, what every
// node shares, and each node.
type devCluster struct {
	Dir, ClusterID, SecretFile string
	Nodes                      []devNode
}

// planDevCluster lays out n nodes under dir, each with four loopback
// ports from port (cluster, Kafka, AMQP, HTTP) and the rack racks[i %
// len(racks)] if racks are given.
func planDevCluster(n int, dir, clusterID string, racks []string, port func() (int, error)) (devCluster, error) {
	if n < 1 || n > 99 {
		return devCluster{}, fmt.Errorf("--nodes %d: want 1 to 99", n)
	}
	p := devCluster{Dir: dir, ClusterID: clusterID, SecretFile: filepath.Join(dir, "cluster.secret")}
	seen := map[int]bool{}
	addr := func() (string, error) {
		for range 100 {
			n, err := port()
			if err != nil {
				return "", err
			}
			if !seen[n] {
				seen[n] = true
				return net.JoinHostPort("127.0.0.1", strconv.Itoa(n)), nil
			}
		}
		return "", errors.New("no free port found")
	}
	for i := range n {
		node := devNode{ID: i + 1, DataDir: filepath.Join(dir, fmt.Sprintf("node-%d", i+1))}
		if len(racks) > 0 {
			node.Rack = racks[i%len(racks)]
		}
		for _, a := range []*string{&node.ClusterAddr, &node.KafkaAddr, &node.AMQPAddr, &node.HTTPAddr} {
			var err error
			if *a, err = addr(); err != nil {
				return devCluster{}, err
			}
		}
		p.Nodes = append(p.Nodes, node)
	}
	return p, nil
}

// peers is the --cluster-peers value every node is given.
func (p devCluster) peers() string {
	m := make(map[cluster.NodeID]string, len(p.Nodes))
	for _, n := range p.Nodes {
		m[cluster.NodeID(n.ID)] = n.ClusterAddr
	}
	return cluster.FormatPeers(m)
}

// args are the arguments of node i's `sluice server`, extra appended.
func (p devCluster) args(i int, extra []string) []string {
	n := p.Nodes[i]
	a := []string{"server",
		"--node-id", strconv.Itoa(n.ID),
		"--cluster-addr", n.ClusterAddr,
		"--cluster-peers", p.peers(),
		"--cluster-id", p.ClusterID,
		"--cluster-secret-file", p.SecretFile,
		"--data-dir", n.DataDir,
		"--kafka-addr", n.KafkaAddr,
		"--amqp-addr", n.AMQPAddr,
		"--http-addr", n.HTTPAddr,
	}
	if n.Rack != "" {
		a = append(a, "--rack", n.Rack)
	}
	return append(a, extra...)
}

// freePort asks the system for a free loopback TCP port. Another process
// may take it before the node binds it; the node then fails to start and
// says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func newClusterDevCmd() *cobra.Command {
	var (
		nodes     int
		dir       string
		clusterID string
		racks     []string
	)
	cmd := &cobra.Command{
		Use:   "dev [-- SERVER FLAGS...]",
		Short: "Run a cluster of N local nodes for development",
		Long: `Start --nodes "sluice server" processes of this binary on free loopback
ports, each with its own data directory under --dir (default: a new temporary
directory, removed at the end), one cluster id and a generated cluster secret,
and print their addresses. Flags after -- go to every server. Each node's
output goes to server.log in its data directory. Ctrl-C (SIGINT) or SIGTERM
stops every node gracefully; if one node exits, the others are stopped too.`,
		Example: `  sluice cluster dev --nodes 3
  sluice cluster dev --nodes 3 --dir ./dev-cluster --racks a,b,c -- --fsync never`,
		RunE: func(cmd *cobra.Command, extra []string) error {
			return runDevCluster(cmd.OutOrStdout(), nodes, dir, clusterID, racks, extra)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "how many nodes")
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the nodes' data directories, kept (default: a temporary one, removed)")
	cmd.Flags().StringVar(&clusterID, "cluster-id", "", "the cluster id (default: a random one)")
	cmd.Flags().StringSliceVar(&racks, "racks", nil, "racks given to the nodes in turn (a,b,c)")
	return cmd
}

func runDevCluster(out io.Writer, n int, dir, clusterID string, racks, extra []string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if clusterID == "" {
		clusterID = "dev-" + randomHex(4)
	}
	plan, err := planDevCluster(n, dir, clusterID, racks, freePort)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(plan.SecretFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(plan.SecretFile, []byte(randomHex(32)+"\n"), 0o600); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Catch the signals before the first node starts, so that Ctrl-C
	// during the start stops the nodes already running.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	type running struct {
		node devNode
		cmd  *exec.Cmd
		log  *os.File
	}
	exited := make(chan int, len(plan.Nodes))
	var procs []running
	stop := func() {
		for _, p := range procs {
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				p.cmd.Process.Kill() // no SIGTERM on this platform, or gone
			}
		}
		for range procs {
			select {
			case <-exited:
			case <-time.After(40 * time.Second): // past the server's 30s shutdown
				for _, p := range procs {
					p.cmd.Process.Kill()
				}
			}
		}
		for _, p := range procs {
			p.log.Close()
		}
	}
	fmt.Fprintf(out, "cluster %s in %s\n", clusterID, dir)
	for i, node := range plan.Nodes {
		if err := os.MkdirAll(node.DataDir, 0o755); err != nil {
			stop()
			return err
		}
		logf, err := os.OpenFile(filepath.Join(node.DataDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			stop()
			return err
		}
		c := exec.Command(self, plan.args(i, extra)...)
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			logf.Close()
			stop()
			return fmt.Errorf("node %d: %w", node.ID, err)
		}
		procs = append(procs, running{node, c, logf})
		go func(i int) { c.Wait(); exited <- i }(i)
		fmt.Fprintf(out, "node %d: kafka %s  amqp %s  http %s  cluster %s  log %s\n",
			node.ID, node.KafkaAddr, node.AMQPAddr, node.HTTPAddr, node.ClusterAddr, logf.Name())
	}
	fmt.Fprintf(out, "Kafka bootstrap servers: %s\nCtrl-C stops every node.\n", plan.bootstrap())
	select {
	case s := <-sig:
		fmt.Fprintf(out, "%s: stopping the nodes\n", s)
		stop()
		return nil
	case i := <-exited:
		// Put it back for stop, which waits for every node.
		exited <- i
		p := procs[i]
		stop()
		return fmt.Errorf("node %d exited (%s); the others were stopped. Its log, %s, ends with:\n%s",
			p.node.ID, p.cmd.ProcessState, p.log.Name(), tail(p.log.Name(), 2048))
	}
}

// bootstrap is the nodes' Kafka addresses, comma separated, by node id.
func (p devCluster) bootstrap() string {
	addrs := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		addrs[i] = n.KafkaAddr
	}
	return strings.Join(addrs, ",")
}

// tail is the last n bytes of a file, for an error message.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimRight(string(b), "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
