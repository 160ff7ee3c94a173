package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Members of quorum queues: what rabbitmq-queues add_member,
// delete_member, grow and shrink do, through the management API
// (internal/mgmt/quorum_members.go).

func newQueueAddMemberCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add-member QUEUE NODE",
		Short: "Add a member (replica) on NODE to a quorum queue",
		Long: `Add a member on NODE (its id, or its name as "sluice cluster status" and
/api/nodes show it) to quorum queue QUEUE of --vhost. The queue's leader adds
it as a non-voting member, sends it the queue's log and ack record, and makes
it a voter once it has caught up. The command returns once the change is
recorded; "sluice queue list --output json" shows the queue's members and
leader.`,
		Example: `  sluice queue add-member orders 3`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			path := "/api/queues/quorum/" + pathEsc(f.vhost) + "/" + pathEsc(a[0]) + "/replicas/add"
			if _, err := f.send(http.MethodPost, path, map[string]string{"node": a[1]}); err != nil {
				return fmt.Errorf("add member %s to queue %s: %w", a[1], a[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "adding member %s to queue %s\n", a[1], a[0])
			return nil
		},
	}
}

func newQueueDeleteMemberCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete-member QUEUE NODE",
		Short: "Remove the member (replica) on NODE from a quorum queue",
		Long: `Remove the member on NODE from quorum queue QUEUE of --vhost. If it leads, it
hands leadership to another member first. A queue's last member cannot be
removed.`,
		Example: `  sluice queue delete-member orders 1`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			path := "/api/queues/quorum/" + pathEsc(f.vhost) + "/" + pathEsc(a[0]) + "/replicas/delete"
			if _, err := f.send(http.MethodDelete, path, map[string]string{"node": a[1]}); err != nil {
				return fmt.Errorf("delete member %s of queue %s: %w", a[1], a[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removing member %s of queue %s\n", a[1], a[0])
			return nil
		},
	}
}

// memberResult is one queue's line of a grow or shrink.
type memberResult struct {
	Vhost  string `json:"vhost"`
	Name   string `json:"name"`
	Size   int    `json:"size"`
	Result string `json:"result"`
}

func printMemberResults(cmd *cobra.Command, f *mgmtFlags, raw json.RawMessage) error {
	asJSON, err := f.json()
	if err != nil {
		return err
	}
	if asJSON {
		_, err := cmd.OutOrStdout().Write(append(raw, '\n'))
		return err
	}
	var res []memberResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VHOST\tNAME\tSIZE\tRESULT")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Vhost, r.Name, r.Size, r.Result)
	}
	return tw.Flush()
}

func newQueueGrowCmd(f *mgmtFlags) *cobra.Command {
	var strategy, vhostPattern, queuePattern string
	cmd := &cobra.Command{
		Use:   "grow NODE",
		Short: "Add a member on NODE to every matching quorum queue",
		Long: `Add a member on NODE to quorum queues, as rabbitmq-queues grow does:
--strategy all adds it to every queue matching the patterns that does not have
it, even only to those with an even number of members. Patterns are regular
expressions on vhost and queue names (default: all).`,
		Example: `  sluice queue grow 4
  sluice queue grow 4 --strategy even --queue-pattern '^orders'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			body := map[string]string{"strategy": strategy, "vhost_pattern": vhostPattern, "queue_pattern": queuePattern}
			raw, err := call(func(ctx context.Context) (json.RawMessage, error) {
				_, data, err := f.do(ctx, http.MethodPost, "/api/queues/quorum/replicas/on/"+pathEsc(a[0])+"/grow", body)
				return data, err
			})
			if err != nil {
				return fmt.Errorf("grow onto node %s: %w", a[0], err)
			}
			return printMemberResults(cmd, f, raw)
		},
	}
	cmd.Flags().StringVar(&strategy, "strategy", "all", "all or even")
	cmd.Flags().StringVar(&vhostPattern, "vhost-pattern", "", "regular expression the vhost must match")
	cmd.Flags().StringVar(&queuePattern, "queue-pattern", "", "regular expression the queue name must match")
	return cmd
}

func newQueueShrinkCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "shrink NODE",
		Short: "Remove the member on NODE from every quorum queue",
		Long: `Remove NODE's member from every quorum queue it is a member of, as
rabbitmq-queues shrink does (before taking a node out of the cluster). A queue
whose last member it is keeps it and is listed with the reason.`,
		Example: `  sluice queue shrink 2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			raw, err := call(func(ctx context.Context) (json.RawMessage, error) {
				_, data, err := f.do(ctx, http.MethodDelete, "/api/queues/quorum/replicas/on/"+pathEsc(a[0])+"/shrink", nil)
				return data, err
			})
			if err != nil {
				return fmt.Errorf("shrink off node %s: %w", a[0], err)
			}
			return printMemberResults(cmd, f, raw)
		},
	}
}
