package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { benchCommands = append(benchCommands, newBenchFetchCmd) }

type benchFetchOptions struct {
	topic     string
	serverPID int
	partMax   int32
	timeout   time.Duration
	json      bool
}

// benchFetchResult is the summary; JSON field names are part of the CLI.
type benchFetchResult struct {
	Topic         string  `json:"topic"`
	Partitions    int     `json:"partitions"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	MBPerSec      float64 `json:"mb_per_sec"`
	ServerCPUSecs float64 `json:"server_cpu_seconds,omitempty"`
	CPUSecsPerGB  float64 `json:"server_cpu_seconds_per_gb,omitempty"`
}

func newBenchFetchCmd() *cobra.Command {
	var (
		cf clientFlags
		o  benchFetchOptions
	)
	cmd := &cobra.Command{
		Use:   "kafka-fetch",
		Short: "Kafka consume-only throughput over an existing topic",
		Long: `Read an existing topic from the start of every partition to the end offsets
taken before the read starts, with one client and no group, and measure the
record bytes (key and value) per second, MB = 10^6 bytes. Fill the topic
first, e.g. with "sluice bench kafka --consumers 0 --records 1000000".

With --server-pid (Linux, the broker on this machine), also report the
broker's CPU time (user + system, from /proc/<pid>/stat) spent during the
read, per GB (10^9 bytes) fetched: the cost of serving fetches when nothing
else runs.`,
		Example: `  sluice bench kafka-fetch --topic sluice-bench
  sluice bench kafka-fetch --topic sluice-bench --server-pid $(pidof sluice) --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchFetch(&cf, o, cmd.OutOrStdout())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "sluice-bench", "topic to read")
	f.IntVar(&o.serverPID, "server-pid", 0, "process id of the broker, to report its CPU time (0: do not)")
	f.Int32Var(&o.partMax, "partition-max-bytes", 4<<20, "max.partition.fetch.bytes: the most one fetch asks of a partition (the first batch comes whole)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON")
	return cmd
}

func runBenchFetch(cf *clientFlags, o benchFetchOptions, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	adm, err := cf.newClient()
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, o.topic)
	if err != nil {
		return err
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("topic %s: %w", o.topic, err)
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(l kadm.ListedOffset) {
		if l.Offset > 0 {
			want[l.Partition] = l.Offset
			from[l.Partition] = kgo.NewOffset().AtStart()
		}
	})
	res := benchFetchResult{Topic: o.topic, Partitions: len(ends[o.topic])}
	if len(want) == 0 {
		return fmt.Errorf("topic %s is empty", o.topic)
	}
	cl, err := cf.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: from}),
		kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(o.partMax))
	if err != nil {
		return err
	}
	defer cl.Close()

	cpu0, err := processCPU(o.serverPID)
	if err != nil {
		return err
	}
	start := time.Now()
	for left := len(want); left > 0; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read %d records in %v, not all: %w", res.Records, o.timeout, ctx.Err())
		}
		fs.EachError(func(t string, p int32, err error) { fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			res.Records++
			res.Bytes += int64(len(r.Key) + len(r.Value))
			if r.Offset == end-1 {
				left--
			}
		})
	}
	res.Seconds = time.Since(start).Seconds()
	cpu1, err := processCPU(o.serverPID)
	if err != nil {
		return err
	}
	res.MBPerSec = float64(res.Bytes) / 1e6 / res.Seconds
	if o.serverPID > 0 {
		res.ServerCPUSecs = cpu1 - cpu0
		res.CPUSecsPerGB = res.ServerCPUSecs / (float64(res.Bytes) / 1e9)
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(out, "topic %s (%d partitions): %d records, %d bytes in %.2fs: %.1f MB/s\n",
		res.Topic, res.Partitions, res.Records, res.Bytes, res.Seconds, res.MBPerSec)
	if o.serverPID > 0 {
		fmt.Fprintf(out, "server CPU: %.2fs, %.2f CPU-s per GB fetched\n", res.ServerCPUSecs, res.CPUSecsPerGB)
	}
	return nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU is the user + system CPU seconds process pid has used, from
// /proc/<pid>/stat; 0 for pid 0.
func processCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, nil
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("--server-pid: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing one. utime and stime are fields 14
	// and 15.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("--server-pid: unreadable /proc stat")
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, errors.New("--server-pid: short /proc stat")
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("--server-pid: unreadable /proc stat times")
	}
	return (utime + stime) / clockTicks, nil
}
