package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The moves of partitions between brokers, through the Kafka admin
// protocol (AlterPartitionReassignments, ListPartitionReassignments), as
// kafka-reassign-partitions does them.

func newTopicReassignCmd(cf *clientFlags) *cobra.Command {
	var (
		partitions []int32
		replicas   string
		cancel     bool
	)
	cmd := &cobra.Command{
		Use:   "reassign NAME",
		Short: "Move partitions of a topic to other brokers, or change their replicas",
		Long: `Give partitions of a topic a new replica list (AlterPartitionReassignments):
the first broker is the preferred leader. A longer list raises the replication
factor, a shorter one lowers it, another broker moves it; a partition of one
replica can be moved too. The command returns once the move is recorded; the
brokers carry it out (see "sluice topic reassignments"). --cancel cancels the
partitions' moves in progress instead.`,
		Example: `  sluice topic reassign orders --partition 0 --replicas 1,2,3
  sluice topic reassign orders --partition 0 --partition 1 --replicas 2
  sluice topic reassign orders --partition 0 --cancel`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(partitions) == 0 {
				return fmt.Errorf("name the partitions with --partition")
			}
			var target []int32
			switch {
			case cancel && replicas != "":
				return fmt.Errorf("--replicas and --cancel are exclusive")
			case !cancel:
				var err error
				if target, err = parseBrokerList(replicas); err != nil {
					return err
				}
			}
			var req kadm.AlterPartitionAssignmentsReq
			for _, p := range partitions {
				if cancel {
					req.CancelAssign(args[0], p)
				} else {
					req.Assign(args[0], p, target)
				}
			}
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				rs, err := adm.AlterPartitionAssignments(ctx, req)
				if err != nil {
					return err
				}
				failed := 0
				for _, p := range partitions {
					r, ok := rs[args[0]][p]
					switch {
					case !ok:
						failed++
						fmt.Fprintf(cmd.ErrOrStderr(), "partition %d: no answer\n", p)
					case r.Err != nil:
						failed++
						fmt.Fprintf(cmd.ErrOrStderr(), "partition %d: %v\n", p, withMessage(r.Err, r.ErrMessage))
					case cancel:
						fmt.Fprintf(cmd.OutOrStdout(), "partition %d: move cancelled\n", p)
					default:
						fmt.Fprintf(cmd.OutOrStdout(), "partition %d: moving to %s\n", p, formatBrokers(target))
					}
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d partitions refused", failed, len(partitions))
				}
				return nil
			})
		},
	}
	cmd.Flags().Int32SliceVar(&partitions, "partition", nil, "a partition to move (repeat, or comma-separated)")
	cmd.Flags().StringVar(&replicas, "replicas", "", "the new replica list, broker ids comma-separated, preferred leader first")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "cancel the partitions' moves in progress")
	return cmd
}

func newTopicReassignmentsCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reassignments [NAME...]",
		Short: "List the moves of partitions in progress",
		Long: `List the partitions being moved (ListPartitionReassignments), of the topics
named or of every topic: their replicas during the move, and the brokers being
added and removed. An empty list means no move is in progress.`,
		Example: `  sluice topic reassignments
  sluice topic reassignments orders`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				var set kadm.TopicsSet
				if len(args) > 0 {
					td, err := adm.ListTopics(ctx, args...)
					if err != nil {
						return err
					}
					set = kadm.TopicsSet{}
					for _, name := range args {
						t, ok := td[name]
						if !ok || t.Err != nil {
							return fmt.Errorf("topic %s: unknown", name)
						}
						for p := range t.Partitions {
							set.Add(name, p)
						}
					}
				}
				rs, err := adm.ListPartitionReassignments(ctx, set)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TOPIC\tPARTITION\tREPLICAS\tADDING\tREMOVING")
				topics := make([]string, 0, len(rs))
				for t := range rs {
					topics = append(topics, t)
				}
				slices.Sort(topics)
				for _, t := range topics {
					ps := make([]int32, 0, len(rs[t]))
					for p := range rs[t] {
						ps = append(ps, p)
					}
					slices.Sort(ps)
					for _, p := range ps {
						r := rs[t][p]
						fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", t, p, formatBrokers(r.Replicas), formatBrokers(r.AddingReplicas), formatBrokers(r.RemovingReplicas))
					}
				}
				return w.Flush()
			})
		},
	}
}

// parseBrokerList parses "1,2,3" into broker ids, at least one, none twice.
func parseBrokerList(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("give the new replicas with --replicas (broker ids, comma-separated), or --cancel")
	}
	var out []int32
	for f := range strings.SplitSeq(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("--replicas: %q is not a broker id", f)
		}
		if slices.Contains(out, int32(id)) {
			return nil, fmt.Errorf("--replicas: broker %d twice", id)
		}
		out = append(out, int32(id))
	}
	return out, nil
}

// formatBrokers writes broker ids as "1,2,3" ("-" for none).
func formatBrokers(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	return joinInt32(ids)
}
