package cli

// sluice group describe of a share group (KIP-932): its members and, per
// share-partition, the start offset (every record below it is settled)
// and the lag (records from there to the end still to settle).

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// printShareGroup prints the share group name, or reports false if there
// is no share group of that name.
func printShareGroup(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, name string) (bool, error) {
	ds, err := adm.DescribeShareGroups(ctx, name)
	if err != nil || ds[name].Err != nil {
		return false, nil
	}
	g := ds[name]
	offs, err := adm.DescribeShareGroupOffsets(ctx, name)
	if err != nil {
		return true, err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Group:        %s\n", g.GroupID)
	fmt.Fprintf(out, "State:        %s\n", g.GroupState)
	fmt.Fprintf(out, "Protocol:     share (KIP-932, assignor %s, epoch %d)\n", g.Assignor, g.GroupEpoch)
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
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART\tLAG")
	var topics []string
	for t := range offs[name].Offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var total int64
	for _, t := range topics {
		var ps []int32
		for p := range offs[name].Offsets[t] {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			o := offs[name].Offsets[t][p]
			lag := "-"
			if o.Lag >= 0 {
				lag = fmt.Sprint(o.Lag)
				total += o.Lag
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t, p, o.StartOffset, lag)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "\nTotal lag:    %d\n", total)
	return true, nil
}
