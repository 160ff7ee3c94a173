package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { clientCommands = append(clientCommands, newTopicCmd) }

func newTopicCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, move and delete Kafka topics",
		Long: `Manage the topics of a broker through the Kafka admin protocol: any Kafka
protocol broker works, Sluice or not.`,
		Example: `  sluice topic create orders --partitions 6 --config retention.ms=86400000
  sluice topic list
  sluice topic describe orders
  sluice topic delete orders
  sluice topic reassign orders --partition 0 --replicas 1,2,3
  SLUICE_BROKERS=10.0.0.5:9092 sluice topic list`,
	}
	cf.register(cmd)
	cmd.AddCommand(newTopicCreateCmd(&cf), newTopicListCmd(&cf), newTopicDescribeCmd(&cf), newTopicDeleteCmd(&cf),
		newTopicReassignCmd(&cf), newTopicReassignmentsCmd(&cf))
	return cmd
}

func newTopicCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		partitions  int32
		replication int16
		configs     []string
		ifNotExists bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic. Without --partitions the broker's default partition count is
used. --config sets any topic config Kafka accepts (retention.ms,
compression.type, message.timestamp.type, cleanup.policy...; see
docs/kafka-compatibility.md for which Sluice applies) and may be repeated.`,
		Example: `  sluice topic create events
  sluice topic create orders --partitions 12 --config retention.ms=3600000 --config segment.bytes=67108864
  sluice topic create orders --if-not-exists`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kvs, err := parseKV("config", configs)
			if err != nil {
				return err
			}
			cfgs := make(map[string]*string, len(kvs))
			for _, kv := range kvs {
				v := kv[1]
				cfgs[kv[0]] = &v
			}
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				// CreateTopic returns the topic's own error both in resp.Err
				// and as err; only an err alone is a failed request.
				resp, err := adm.CreateTopic(ctx, partitions, replication, cfgs, args[0])
				if err != nil && resp.Err == nil {
					return err
				}
				if resp.Err != nil {
					if ifNotExists && errors.Is(resp.Err, kerr.TopicAlreadyExists) {
						fmt.Fprintf(cmd.OutOrStdout(), "topic %s already exists\n", args[0])
						return nil
					}
					return fmt.Errorf("create topic %s: %w", args[0], withMessage(resp.Err, resp.ErrMessage))
				}
				if resp.NumPartitions > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "created topic %s with %d partitions\n", args[0], resp.NumPartitions)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "created topic %s\n", args[0])
				}
				return nil
			})
		},
	}
	cmd.Flags().Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker's default)")
	cmd.Flags().Int16Var(&replication, "replication-factor", -1, "replicas per partition (-1: the broker's default)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "topic config as key=value (repeatable)")
	cmd.Flags().BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	return cmd
}

func newTopicListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics with their partition counts",
		Example: `  sluice topic list
  sluice topic list --brokers 127.0.0.1:19092`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				topics, err := adm.ListTopics(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPIC\tPARTITIONS")
				for _, t := range topics.Sorted() {
					if t.Err != nil {
						fmt.Fprintf(tw, "%s\terror: %v\n", t.Topic, t.Err)
						continue
					}
					fmt.Fprintf(tw, "%s\t%d\n", t.Topic, len(t.Partitions))
				}
				return tw.Flush()
			})
		},
	}
}

func newTopicDescribeCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's partitions, offsets and configs",
		Long: `Show a topic's partitions (leader, replicas, start and end offset, and the
number of offsets between them) and its configs with where each comes from
(DEFAULT, TOPIC, BROKER...).`,
		Example: `  sluice topic describe orders`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				return describeTopic(ctx, adm, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
			})
		},
	}
}

// describeTopic prints a topic's partitions with their offsets, then its
// configs.
func describeTopic(ctx context.Context, adm *kadm.Client, out, stderr io.Writer, name string) error {
	topics, err := adm.ListTopics(ctx, name)
	if err != nil {
		return err
	}
	t, ok := topics[name]
	if !ok {
		return fmt.Errorf("topic %s: not in the metadata answer", name)
	}
	if t.Err != nil {
		return fmt.Errorf("topic %s: %w", name, t.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, name)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Topic:       %s\n", name)
	if id := t.ID.String(); t.ID != (kadm.TopicID{}) {
		fmt.Fprintf(out, "ID:          %s\n", id)
	}
	fmt.Fprintf(out, "Partitions:  %d\n\n", len(t.Partitions))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tSTART\tEND\tOFFSETS")
	for _, p := range t.Partitions.Sorted() {
		start, end := offsetCell(starts, name, p.Partition), offsetCell(ends, name, p.Partition)
		span := "-"
		s, sok := starts.Lookup(name, p.Partition)
		e, eok := ends.Lookup(name, p.Partition)
		if sok && eok && s.Err == nil && e.Err == nil {
			span = fmt.Sprint(e.Offset - s.Offset)
		}
		leader := fmt.Sprint(p.Leader)
		if p.Err != nil {
			leader = "error: " + p.Err.Error()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.Partition, leader, joinInt32(p.Replicas), start, end, span)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printTopicConfigs(ctx, out, adm, stderr, name)
}

// printTopicConfigs prints a topic's configs; a broker that cannot
// describe configs gets a warning, not a failure, since the partitions
// above were already printed.
func printTopicConfigs(ctx context.Context, out io.Writer, adm *kadm.Client, stderr io.Writer, name string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		if rc, rerr := rcs.On(name, nil); rerr != nil {
			err = rerr
		} else if rc.Err != nil {
			err = withMessage(rc.Err, rc.ErrMessage)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "warning: cannot describe configs of %s: %v\n", name, err)
		return nil
	}
	rc, _ := rcs.On(name, nil)
	configs := slices.Clone(rc.Configs)
	slices.SortFunc(configs, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
	fmt.Fprintln(out, "\nConfigs:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, c := range configs {
		v := c.MaybeValue()
		if c.Sensitive {
			v = "(sensitive)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Key, v, configSource(c.Source))
	}
	return tw.Flush()
}

func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "TOPIC"
	case kmsg.ConfigSourceDefaultConfig:
		return "DEFAULT"
	case kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "BROKER"
	}
	return strings.ToUpper(s.String())
}

func newTopicDeleteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Example: `  sluice topic delete orders
  sluice topic delete scratch-1 scratch-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.runAdmin(func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.DeleteTopics(ctx, args...)
				if err != nil {
					return err
				}
				return reportDeleted(cmd.OutOrStdout(), "topic", args, resps, func(r kadm.DeleteTopicResponse) error {
					return withMessage(r.Err, r.ErrMessage)
				})
			})
		},
	}
}

// offsetCell formats one listed offset for a table.
func offsetCell(l kadm.ListedOffsets, topic string, p int32) string {
	o, ok := l.Lookup(topic, p)
	switch {
	case !ok:
		return "-"
	case o.Err != nil:
		return "error: " + o.Err.Error()
	}
	return fmt.Sprint(o.Offset)
}

func joinInt32(xs []int32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}

// withMessage appends a broker's error message to its error code; a nil
// err stays nil.
func withMessage(err error, msg string) error {
	if err == nil || msg == "" || msg == err.Error() {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}
