package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newStatusCmd) }

// statusReport is what `sluice status --output json` prints.
type statusReport struct {
	Node           string           `json:"node"`
	ProductVersion string           `json:"product_version"`
	UptimeMS       int64            `json:"uptime_ms"`
	Listeners      []statusListener `json:"listeners"`
	// Alarms are the resource alarms in effect, as the alarms health
	// check reports them; empty when it passes. Logs refusing writes
	// after a storage failure are alarms with resource "storage".
	Alarms        []any         `json:"alarms"`
	MemoryUsed    int64         `json:"memory_used_bytes"`
	DiskFree      *int64        `json:"disk_free_bytes"`  // null when the broker does not report it
	DiskTotal     *int64        `json:"disk_total_bytes"` // null when the broker does not report it
	Connections   int64         `json:"connections"`
	Channels      int64         `json:"channels"`
	Consumers     int64         `json:"consumers"`
	Queues        int64         `json:"queues"`
	MessagesReady int64         `json:"messages_ready"`
	MessagesUnack int64         `json:"messages_unacknowledged"`
	Topics        *int64        `json:"topics"` // null without the Kafka view
	TopQueues     []statusQueue `json:"top_queues"`
	TopGroups     []statusGroup `json:"top_groups"`
	// KafkaError says why top_groups is empty when the Kafka view could
	// not be read (no Kafka listener, or the user lacks the monitoring
	// tag).
	KafkaError string `json:"kafka_error,omitempty"`
}

type statusListener struct {
	Protocol string `json:"protocol"`
	Address  string `json:"ip_address"`
	Port     int64  `json:"port"`
}

type statusQueue struct {
	Vhost   string `json:"vhost"`
	Name    string `json:"name"`
	Ready   int64  `json:"messages_ready"`
	Unacked int64  `json:"messages_unacknowledged"`
	Backlog int64  `json:"backlog"`
}

type statusGroup struct {
	Group   string `json:"group_id"`
	State   string `json:"state"`
	Members int64  `json:"members"`
	Lag     int64  `json:"lag"`
}

func newStatusCmd() *cobra.Command {
	var f mgmtFlags
	var top int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running broker's health: listeners, alarms, memory, disk, backlogs, lag",
		Long: `Show a running broker's state through its management HTTP API (--http,
default ` + defaultHTTP + `): its listeners, resource alarms, memory and disk
space, connection counts, the --top queues with the largest backlog (ready plus
unacknowledged messages) and the --top Kafka consumer groups with the largest
total lag. Queues and groups with nothing waiting are left out, and so are
stream queues (a topic's partitions among them): a stream keeps its messages
for replay, and its consumers' lag is not a backlog. Needs a user
with the monitoring or administrator tag.

--output json prints one object: node, product_version, uptime_ms, listeners,
alarms, memory_used_bytes, disk_free_bytes, disk_total_bytes, connections,
channels, consumers, queues, messages_ready, messages_unacknowledged, topics,
top_queues (vhost, name, messages_ready, messages_unacknowledged, backlog),
top_groups (group_id, state, members, lag) and kafka_error when the Kafka view
could not be read.`,
		Example: `  sluice status
  sluice status --top 20 --output json
  sluice status --http http://10.0.0.5:15672 --user admin --password s3cret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			ctx, cancel := adminContext()
			defer cancel()
			st, err := collectStatus(ctx, &f, top)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&top, "top", 10, "how many queues and groups to show")
	return cmd
}

func (f *mgmtFlags) getCtx(ctx context.Context, path string, v any) error {
	_, data, err := f.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func collectStatus(ctx context.Context, f *mgmtFlags, top int) (*statusReport, error) {
	st := &statusReport{Alarms: []any{}, Listeners: []statusListener{}, TopQueues: []statusQueue{}, TopGroups: []statusGroup{}}

	var ov struct {
		Node           string `json:"node"`
		ProductVersion string `json:"product_version"`
		ObjectTotals   struct {
			Connections, Channels, Consumers, Queues int64
		} `json:"object_totals"`
		QueueTotals struct {
			Ready   int64 `json:"messages_ready"`
			Unacked int64 `json:"messages_unacknowledged"`
		} `json:"queue_totals"`
		Listeners   []statusListener `json:"listeners"`
		KafkaTotals *struct {
			Topics int64 `json:"topics"`
		} `json:"kafka_totals"`
	}
	if err := f.getCtx(ctx, "/api/overview", &ov); err != nil {
		return nil, err
	}
	st.Node, st.ProductVersion = ov.Node, ov.ProductVersion
	st.Connections, st.Channels = ov.ObjectTotals.Connections, ov.ObjectTotals.Channels
	st.Consumers, st.Queues = ov.ObjectTotals.Consumers, ov.ObjectTotals.Queues
	st.MessagesReady, st.MessagesUnack = ov.QueueTotals.Ready, ov.QueueTotals.Unacked
	st.Listeners = append(st.Listeners, ov.Listeners...)
	if ov.KafkaTotals != nil {
		st.Topics = &ov.KafkaTotals.Topics
	}

	var nodes []struct {
		MemUsed  int64  `json:"mem_used"`
		Uptime   int64  `json:"uptime"`
		DiskFree *int64 `json:"disk_free"`
	}
	if err := f.getCtx(ctx, "/api/nodes", &nodes); err != nil {
		return nil, err
	}
	if len(nodes) > 0 {
		st.MemoryUsed, st.UptimeMS, st.DiskFree = nodes[0].MemUsed, nodes[0].Uptime, nodes[0].DiskFree
	}
	// Disk space is best effort: a broker without /metrics shows "-".
	diskFromMetrics(ctx, f, st)

	// The alarms check answers 503 with the alarms while any is in effect.
	_, data, err := f.do(ctx, http.MethodGet, "/api/health/checks/alarms", nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		var body struct {
			Reason string `json:"reason"`
			Alarms []any  `json:"alarms"`
		}
		json.Unmarshal(data, &body)
		st.Alarms = body.Alarms
		if len(st.Alarms) == 0 {
			st.Alarms = []any{body.Reason}
		}
	} else if err != nil {
		return nil, err
	}

	var queues []struct {
		Vhost   string `json:"vhost"`
		Name    string `json:"name"`
		Ready   int64  `json:"messages_ready"`
		Unacked int64  `json:"messages_unacknowledged"`
		Type    string `json:"type"`
	}
	if err := f.getCtx(ctx, "/api/queues", &queues); err != nil {
		return nil, err
	}
	for _, q := range queues {
		if q.Type == "stream" {
			continue
		}
		if b := q.Ready + q.Unacked; b > 0 {
			st.TopQueues = append(st.TopQueues, statusQueue{q.Vhost, q.Name, q.Ready, q.Unacked, b})
		}
	}
	sort.SliceStable(st.TopQueues, func(i, j int) bool { return st.TopQueues[i].Backlog > st.TopQueues[j].Backlog })
	st.TopQueues = st.TopQueues[:min(top, len(st.TopQueues))]

	var groups []statusGroup
	if err := f.getCtx(ctx, "/api/kafka/groups", &groups); err != nil {
		if errors.As(err, &ae) {
			st.KafkaError = err.Error()
		} else {
			return nil, err
		}
	}
	for _, g := range groups {
		if g.Lag > 0 {
			st.TopGroups = append(st.TopGroups, g)
		}
	}
	sort.SliceStable(st.TopGroups, func(i, j int) bool { return st.TopGroups[i].Lag > st.TopGroups[j].Lag })
	st.TopGroups = st.TopGroups[:min(top, len(st.TopGroups))]
	return st, nil
}

// diskFromMetrics reads the data directory's file system space from the
// Prometheus gauges on /metrics, for brokers whose /api/nodes has no
// disk_free.
func diskFromMetrics(ctx context.Context, f *mgmtFlags, st *statusReport) error {
	_, data, err := f.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		v := int64(n)
		switch name {
		case "sluice_storage_disk_free_bytes":
			if st.DiskFree == nil {
				st.DiskFree = &v
			}
		case "sluice_storage_disk_total_bytes":
			st.DiskTotal = &v
		}
	}
	return sc.Err()
}

func printStatus(w io.Writer, st *statusReport) error {
	fmt.Fprintf(w, "Node:          %s (Sluice %s), up %s\n", st.Node, orDash(st.ProductVersion),
		(time.Duration(st.UptimeMS) * time.Millisecond).Truncate(time.Second))
	var resource, storage []string
	for _, a := range st.Alarms {
		if m, ok := a.(map[string]any); ok && m["resource"] == "storage" {
			name := str(m["log"])
			if v := str(m["vhost"]); v != "" {
				name += " in vhost " + v
			}
			storage = append(storage, fmt.Sprintf("%s %s since %s: %s", str(m["kind"]), name, str(m["since"]), str(m["error"])))
			continue
		}
		resource = append(resource, str(a))
	}
	alarms := "none"
	if len(resource) > 0 {
		alarms = "IN EFFECT: " + strings.Join(resource, ",")
	}
	fmt.Fprintf(w, "Alarms:        %s\n", alarms)
	if len(storage) > 0 {
		fmt.Fprintf(w, "Failed logs:   %d, refusing writes until they recover:\n", len(storage))
		for _, s := range storage {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	fmt.Fprintf(w, "Memory used:   %s\n", bytesIEC(st.MemoryUsed))
	disk := "-"
	if st.DiskFree != nil {
		disk = bytesIEC(*st.DiskFree)
		if st.DiskTotal != nil {
			disk += " of " + bytesIEC(*st.DiskTotal)
		}
	}
	fmt.Fprintf(w, "Disk free:     %s\n", disk)
	fmt.Fprintf(w, "Connections:   %d (%d channels, %d consumers)\n", st.Connections, st.Channels, st.Consumers)
	fmt.Fprintf(w, "Queues:        %d (%d ready, %d unacked messages)\n", st.Queues, st.MessagesReady, st.MessagesUnack)
	if st.Topics != nil {
		fmt.Fprintf(w, "Topics:        %d\n", *st.Topics)
	}

	fmt.Fprintln(w, "\nListeners:")
	rows := [][]string{}
	for _, l := range st.Listeners {
		rows = append(rows, []string{l.Protocol, l.Address, fmt.Sprint(l.Port)})
	}
	if err := table(w, []string{"PROTOCOL", "ADDRESS", "PORT"}, rows); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nTop queues by backlog:")
	if len(st.TopQueues) == 0 {
		fmt.Fprintln(w, "  no queue has messages waiting")
	} else {
		rows = rows[:0]
		for _, q := range st.TopQueues {
			rows = append(rows, []string{q.Vhost, q.Name, fmt.Sprint(q.Ready), fmt.Sprint(q.Unacked), fmt.Sprint(q.Backlog)})
		}
		if err := table(w, []string{"VHOST", "QUEUE", "READY", "UNACKED", "BACKLOG"}, rows); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nTop consumer groups by lag:")
	switch {
	case st.KafkaError != "":
		fmt.Fprintf(w, "  unavailable: %s\n", st.KafkaError)
	case len(st.TopGroups) == 0:
		fmt.Fprintln(w, "  no group has lag")
	default:
		rows = rows[:0]
		for _, g := range st.TopGroups {
			rows = append(rows, []string{g.Group, g.State, fmt.Sprint(g.Members), fmt.Sprint(g.Lag)})
		}
		if err := table(w, []string{"GROUP", "STATE", "MEMBERS", "LAG"}, rows); err != nil {
			return err
		}
	}
	return nil
}

// bytesIEC formats n bytes as 12.3 MiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
