package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { clientCommands = append(clientCommands, newConsumeCmd) }

type consumeOptions struct {
	topic        string
	from         string
	partition    int32
	group        string
	count        int64
	timeout      time.Duration
	printKey     bool
	printOffset  bool
	printHeaders bool
	separator    string
}

func newConsumeCmd() *cobra.Command {
	var (
		cf   clientFlags
		opts consumeOptions
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records, one per line",
		Long: `Consume a topic and write each record's value to standard output, one per
line. --print-offset, --print-headers and --print-key put those fields before
the value, in that order, each followed by --separator:

  PARTITION:OFFSET<sep>HEADER=V,HEADER=V<sep>KEY<sep>VALUE

Where to start (--from): beginning, latest (the default: only new records),
an absolute OFFSET, or -N for N records before the end of each partition.

Without --group the command reads every partition (or only --partition) and
commits nothing. With --group it joins that consumer group: --from applies
only to partitions the group has no committed offset for, and offsets of
printed records are committed periodically, on rebalance and on exit.

The command runs until --count records were printed, until nothing arrived
for --timeout (counted from start, so leave room for a group join), or
until SIGINT, after which it commits (with --group) and exits cleanly. A
--count not reached within --timeout is an error.`,
		Example: `  sluice consume events
  sluice consume events --from beginning --count 10
  sluice consume events --from beginning --timeout 2s --print-offset --print-key
  sluice consume events --partition 3 --from 1200
  sluice consume events --group billing --from beginning`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.topic = args[0]
			return runConsume(&cf, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.from, "from", "latest", "where to start: beginning, latest, OFFSET, or -N (N before the end)")
	f.Int32Var(&opts.partition, "partition", -1, "read only this partition (-1: all; not with --group)")
	f.StringVar(&opts.group, "group", "", "consume as a member of this consumer group, committing offsets")
	f.Int64Var(&opts.count, "count", 0, "stop after this many records (0: no limit)")
	f.DurationVar(&opts.timeout, "timeout", 0, "stop when no record arrives for this long (0: wait forever)")
	f.BoolVar(&opts.printKey, "print-key", false, "print each record's key before its value")
	f.BoolVar(&opts.printOffset, "print-offset", false, "print PARTITION:OFFSET before each record")
	f.BoolVar(&opts.printHeaders, "print-headers", false, "print headers as k=v,k=v before each record")
	f.StringVar(&opts.separator, "separator", "\t", "separator between the printed fields")
	return cmd
}

// parseStartOffset parses --from.
func parseStartOffset(from string) (kgo.Offset, error) {
	switch strings.ToLower(from) {
	case "beginning", "earliest", "start":
		return kgo.NewOffset().AtStart(), nil
	case "latest", "end":
		return kgo.NewOffset().AtEnd(), nil
	}
	n, err := strconv.ParseInt(from, 10, 64)
	if err != nil {
		return kgo.Offset{}, fmt.Errorf("--from: %q is not beginning, latest, an offset or -N", from)
	}
	if n < 0 {
		return kgo.NewOffset().AtEnd().Relative(n), nil
	}
	return kgo.NewOffset().At(n), nil
}

func runConsume(cf *clientFlags, opts consumeOptions, stdout, stderr io.Writer) error {
	start, err := parseStartOffset(opts.from)
	if err != nil {
		return err
	}
	if opts.count < 0 || opts.timeout < 0 {
		return errors.New("--count and --timeout must not be negative")
	}
	var kopts []kgo.Opt
	switch {
	case opts.group != "" && opts.partition >= 0:
		return errors.New("--partition and --group exclude each other: a group assigns partitions itself")
	case opts.group != "":
		kopts = append(kopts,
			kgo.ConsumerGroup(opts.group),
			kgo.ConsumeTopics(opts.topic),
			kgo.ConsumeResetOffset(start),
			// Commit only what was printed: with --count the last poll
			// may hold records beyond the limit.
			kgo.AutoCommitMarks(),
		)
	case opts.partition >= 0:
		kopts = append(kopts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			opts.topic: {opts.partition: start},
		}))
	default:
		kopts = append(kopts, kgo.ConsumeTopics(opts.topic), kgo.ConsumeResetOffset(start))
	}
	cl, err := cf.newClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	ctx, stop := signalContext()
	defer stop()

	w := bufio.NewWriterSize(stdout, 64<<10)
	var (
		n        int64
		timedOut bool
		last     = time.Now()
		warned   = map[string]bool{}
	)
poll:
	for opts.count == 0 || n < opts.count {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if opts.timeout > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, last.Add(opts.timeout))
		}
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil || fs.IsClientClosed() {
			break poll // SIGINT is a normal way to stop consuming
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if msg := fmt.Sprintf("%s/%d: %v", topic, p, err); !warned[msg] {
				warned[msg] = true
				fmt.Fprintf(stderr, "warning: fetching %s\n", msg)
			}
		})
		var printed []*kgo.Record
		for r := range fs.RecordsAll() {
			if opts.count > 0 && n >= opts.count {
				break
			}
			writeRecord(w, r, opts)
			printed = append(printed, r)
			n++
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("writing records: %w", err)
		}
		if len(printed) > 0 {
			last = time.Now()
			if opts.group != "" {
				cl.MarkCommitRecords(printed...)
			}
		} else if opts.timeout > 0 && time.Since(last) >= opts.timeout {
			timedOut = true
			break
		}
	}

	var errs []error
	if opts.group != "" {
		commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cl.CommitMarkedOffsets(commitCtx); err != nil {
			errs = append(errs, fmt.Errorf("committing offsets of group %s: %w", opts.group, err))
		}
		cancel()
	}
	fmt.Fprintf(stderr, "consumed %d records from %s\n", n, opts.topic)
	if timedOut && opts.count > 0 {
		errs = append(errs, fmt.Errorf("got %d of %d records: nothing arrived for %v", n, opts.count, opts.timeout))
	}
	return errors.Join(errs...)
}

// writeRecord prints one record in the format chosen by the flags.
func writeRecord(w *bufio.Writer, r *kgo.Record, opts consumeOptions) {
	if opts.printOffset {
		fmt.Fprintf(w, "%d:%d%s", r.Partition, r.Offset, opts.separator)
	}
	if opts.printHeaders {
		for i, h := range r.Headers {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(h.Key)
			w.WriteByte('=')
			w.Write(h.Value)
		}
		w.WriteString(opts.separator)
	}
	if opts.printKey {
		w.Write(r.Key)
		w.WriteString(opts.separator)
	}
	w.Write(r.Value)
	w.WriteByte('\n')
}
