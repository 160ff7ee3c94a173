package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() { clientCommands = append(clientCommands, newGroupCmd) }

func newGroupCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe and delete Kafka consumer groups",
		Long: `Inspect and manage Kafka consumer groups: their members, their committed
offsets and how far behind the end of each partition they are (lag).`,
		Example: `  sluice group list
  sluice group describe billing
  sluice group delete billing`,
	}
	cf.register(cmd)
	cmd.AddCommand(newGroupListCmd(&cf), newGroupDescribeCmd(&cf), newGroupDeleteCmd(&cf))
	return cmd
}

func newGroupListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state",
		Example: `  sluice group list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				groups, err := adm.ListGroups(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
				for _, g := range groups.Sorted() {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, orDash(g.State), orDash(g.ProtocolType))
				}
				return tw.Flush()
			})
		},
	}
}

func newGroupDescribeCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, committed offsets and lag",
		Long: `Show a consumer group's state and members, and for every partition the group
consumes or has committed to: the committed offset, the log end offset, and
the lag between them (records not yet consumed). A partition without a commit
shows "-" and counts its whole log as lag.`,
		Example: `  sluice group describe billing`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				lags, err := adm.Lag(ctx, name)
				if err != nil {
					return err
				}
				g, ok := lags[name]
				if !ok {
					return fmt.Errorf("group %s: not in the answer", name)
				}
				if err := g.Error(); err != nil {
					if errors.Is(err, kerr.GroupIDNotFound) {
						return fmt.Errorf("group %s does not exist", name)
					}
					return fmt.Errorf("group %s: %w", name, err)
				}
				if g.State == "Dead" && len(g.Members) == 0 && len(g.Lag) == 0 {
					return fmt.Errorf("group %s does not exist", name)
				}
				printGroup(cmd, g)
				return nil
			})
		},
	}
}

func printGroup(cmd *cobra.Command, g kadm.DescribedGroupLag) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Group:        %s\n", g.Group)
	fmt.Fprintf(out, "State:        %s\n", g.State)
	proto := orDash(g.ProtocolType)
	if g.Protocol != "" {
		proto += " (" + g.Protocol + ")"
	}
	fmt.Fprintf(out, "Protocol:     %s\n", proto)
	fmt.Fprintf(out, "Coordinator:  %d (%s:%d)\n", g.Coordinator.NodeID, g.Coordinator.Host, g.Coordinator.Port)
	fmt.Fprintf(out, "Members:      %d\n", len(g.Members))

	if len(g.Members) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tCLIENT-ID\tHOST\tASSIGNED")
		for _, m := range g.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.MemberID, m.ClientID, m.ClientHost, assignment(m))
		}
		tw.Flush()
	}

	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, l := range g.Lag.Sorted() {
		committed := "-"
		if l.Commit.At >= 0 {
			committed = fmt.Sprint(l.Commit.At)
		}
		end := "-"
		if l.End.Err == nil {
			end = fmt.Sprint(l.End.Offset)
		}
		lag := fmt.Sprint(l.Lag)
		if l.Err != nil {
			lag = "error: " + l.Err.Error()
		}
		member := "-"
		if l.Member != nil {
			member = l.Member.MemberID
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", l.Topic, l.Partition, committed, end, lag, member)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nTotal lag:    %d\n", g.Lag.Total())
}

// assignment formats a member's assigned partitions as topic[0,1,2].
func assignment(m kadm.DescribedGroupMember) string {
	c, ok := m.Assigned.AsConsumer()
	if !ok || len(c.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range c.Topics {
		ps := append([]int32(nil), t.Partitions...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		parts = append(parts, fmt.Sprintf("%s[%s]", t.Topic, joinInt32(ps)))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func newGroupDeleteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Long: `Delete consumer groups and their committed offsets. A group that still has
members cannot be deleted: stop its consumers first.`,
		Example: `  sluice group delete billing
  sluice group delete old-1 old-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.DeleteGroups(ctx, args...)
				if err != nil {
					return err
				}
				return reportDeleted(cmd.OutOrStdout(), "group", args, resps, func(r kadm.DeleteGroupResponse) error {
					if errors.Is(r.Err, kerr.NonEmptyGroup) {
						return errors.New("it still has members; stop its consumers first")
					}
					return withMessage(r.Err, r.ErrMessage)
				})
			})
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
