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
offsets and how far behind the end of each partition they are (lag). Share
groups (KIP-932) are listed, described (start offsets and lag per
share-partition) and deleted too.`,
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
						// Not a classic group: perhaps a consumer group (KIP-848).
						if d, err := adm.DescribeConsumerGroups(ctx, name); err == nil && d[name].Err == nil {
							return printConsumerGroup(ctx, cmd, adm, d[name])
						}
						if ok, err := printShareGroup(ctx, cmd, adm, name); ok {
							return err
						}
						return fmt.Errorf("group %s does not exist", name)
					}
					return fmt.Errorf("group %s: %w", name, err)
				}
				if g.State == "Dead" && len(g.Members) == 0 && len(g.Lag) == 0 {
					if ok, err := printShareGroup(ctx, cmd, adm, name); ok {
						return err // a share group (KIP-932)
					}
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

// printConsumerGroup prints a consumer group of the KIP-848 protocol as
// printGroup prints a classic one, with the members' epochs.
func printConsumerGroup(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, g kadm.DescribedConsumerGroup) error {
	commits, err := adm.FetchOffsets(ctx, g.Group)
	if err != nil {
		return err
	}
	owner := map[string]map[int32]string{}
	topics := map[string]bool{}
	for _, m := range g.Members {
		for t, ps := range m.Assignment {
			topics[t] = true
			if owner[t] == nil {
				owner[t] = map[int32]string{}
			}
			for p := range ps {
				owner[t][p] = m.MemberID
			}
		}
	}
	commits.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Group:        %s\n", g.Group)
	fmt.Fprintf(out, "State:        %s\n", g.State)
	fmt.Fprintf(out, "Protocol:     consumer (KIP-848, assignor %s, epoch %d)\n", g.AssignorName, g.Epoch)
	fmt.Fprintf(out, "Coordinator:  %d (%s:%d)\n", g.Coordinator.NodeID, g.Coordinator.Host, g.Coordinator.Port)
	fmt.Fprintf(out, "Members:      %d\n", len(g.Members))
	if len(g.Members) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tEPOCH\tCLIENT-ID\tHOST\tASSIGNED")
		for _, m := range g.Members {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.MemberID, m.MemberEpoch, m.ClientID, m.ClientHost, assignedText(m.Assignment))
		}
		tw.Flush()
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	var total int64
	ends.Each(func(e kadm.ListedOffset) {
		_, assigned := owner[e.Topic][e.Partition]
		c, committed := commits.Lookup(e.Topic, e.Partition)
		if !assigned && !committed {
			return
		}
		committedS, lag := "-", e.Offset
		if committed && c.At >= 0 {
			committedS, lag = fmt.Sprint(c.At), max(e.Offset-c.At, 0)
		}
		total += lag
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", e.Topic, e.Partition, committedS, e.Offset, lag, orDash(owner[e.Topic][e.Partition]))
	})
	tw.Flush()
	fmt.Fprintf(out, "\nTotal lag:    %d\n", total)
	return nil
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

// assignedText is a member's assignment as "topic[0,1] other[2]", sorted,
// or a dash when it has none.
func assignedText[V any](a map[string]map[int32]V) string {
	var parts []string
	for t, ps := range a {
		var xs []int32
		for p := range ps {
			xs = append(xs, p)
		}
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
		parts = append(parts, fmt.Sprintf("%s[%s]", t, joinInt32(xs)))
	}
	sort.Strings(parts)
	return orDash(strings.Join(parts, " "))
}
