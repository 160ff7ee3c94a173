package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { benchCommands = append(benchCommands, newBenchCommitsCmd) }

type benchCommitsOptions struct {
	topic       string
	partitions  int32
	committers  int
	duration    time.Duration
	groupPrefix string
	json        bool
}

func newBenchCommitsCmd() *cobra.Command {
	var (
		cf clientFlags
		o  benchCommitsOptions
	)
	cmd := &cobra.Command{
		Use:   "kafka-commits",
		Short: "Kafka consumer-group offset commits per second",
		Long: `Join --committers consumer groups (one member each, its own client and
connections) to a topic (created with --partitions if missing), then have
each member commit an offset synchronously in a loop, one partition per
commit, the offset one higher each time, for --duration, and measure:

  - throughput of answered commits (commits/s, all committers together);
  - commit latency: from the commit call to its answer.

A commit is counted only when the broker answers it without an error. The
groups are named <group-prefix>-<n>; the offsets they leave behind are
ordinary committed offsets (delete them with "sluice group delete").

The broker's durability policy (fsync) is a server setting: report it with
the results.`,
		Example: `  sluice bench kafka-commits --duration 10s
  sluice bench kafka-commits --committers 64 --duration 20s --json > result.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCommits(&cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "sluice-bench-commits", "topic the groups consume")
	f.Int32Var(&o.partitions, "partitions", 8, "partitions of the topic if the bench creates it")
	f.IntVar(&o.committers, "committers", 8, "consumer groups committing concurrently, one member each")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to commit")
	f.StringVar(&o.groupPrefix, "group-prefix", "sluice-bench-commits", "prefix of the groups' names")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on standard output (the text summary goes to standard error)")
	return cmd
}

func (o *benchCommitsOptions) validate() error {
	switch {
	case o.topic == "" || o.groupPrefix == "":
		return errors.New("--topic and --group-prefix must not be empty")
	case o.partitions < 1:
		return errors.New("--partitions must be at least 1")
	case o.committers < 1:
		return errors.New("--committers must be at least 1")
	case o.duration <= 0:
		return errors.New("--duration must be positive: the bench must end by itself")
	}
	return nil
}

// benchCommitsSummary is the result of a commits run.
type benchCommitsSummary struct {
	Topic         string         `json:"topic"`
	Committers    int            `json:"committers"`
	Seconds       float64        `json:"seconds"`
	Commits       uint64         `json:"commits"`
	CommitsPerSec float64        `json:"commits_per_sec"`
	Errors        uint64         `json:"errors"`
	Latency       latencySummary `json:"commit_latency"`
}

func (s *benchCommitsSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s committing to %s for %.1fs\n", plural(s.Committers, "committer"), s.Topic, s.Seconds)
	fmt.Fprintf(w, "commits: %d answered, %.0f commits/s, %d errors\n", s.Commits, s.CommitsPerSec, s.Errors)
	ms := func(v float64) string { return fmtLatency(time.Duration(v * 1e6)) }
	fmt.Fprintf(w, "commit latency: p50 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
		ms(s.Latency.P50Ms), ms(s.Latency.P99Ms), ms(s.Latency.P999Ms), ms(s.Latency.MaxMs), ms(s.Latency.MeanMs))
}

func runBenchCommits(cf *clientFlags, o benchCommitsOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+time.Minute)
	defer cancel()
	admCl, err := cf.newClient()
	if err != nil {
		return err
	}
	defer admCl.Close()
	resp, err := kadm.NewClient(admCl).CreateTopic(ctx, o.partitions, -1, nil, o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", o.topic, err)
	}

	// Join every group before the clock starts.
	clients := make([]*kgo.Client, o.committers)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	assigned := make([]chan struct{}, o.committers)
	for i := range clients {
		ch := make(chan struct{})
		var once sync.Once
		assigned[i] = ch
		cl, err := cf.newClient(
			kgo.ConsumerGroup(fmt.Sprintf("%s-%d", o.groupPrefix, i)),
			kgo.ConsumeTopics(o.topic),
			kgo.DisableAutoCommit(),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { once.Do(func() { close(ch) }) }),
		)
		if err != nil {
			return err
		}
		clients[i] = cl
		go func() { // keeps the member's fetch loop going; records are ignored
			for ctx.Err() == nil && !cl.PollFetches(ctx).IsClientClosed() {
			}
		}()
	}
	for i, ch := range assigned {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("group %s-%d got no assignment in 30s", o.groupPrefix, i)
		}
	}
	fmt.Fprintf(stderr, "%s joined; committing for %v\n", plural(o.committers, "group"), o.duration)

	var (
		mu       sync.Mutex
		lat      histogram
		commits  uint64
		errs     uint64
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(o.duration)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := int32(i) % o.partitions
			for offset := int64(1); time.Now().Before(deadline); offset++ {
				sent := time.Now()
				var cerr error
				cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{o.topic: {p: {Epoch: -1, Offset: offset}}},
					func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
						if err == nil {
							for _, t := range resp.Topics {
								for _, rp := range t.Partitions {
									if err == nil {
										err = kerr.ErrorForCode(rp.ErrorCode)
									}
								}
							}
						}
						cerr = err
					})
				d := time.Since(sent)
				mu.Lock()
				if cerr == nil {
					commits++
					lat.Record(d)
				} else {
					errs++
					if firstErr == nil {
						firstErr = cerr
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sum := benchCommitsSummary{
		Topic: o.topic, Committers: o.committers, Seconds: elapsed.Seconds(),
		Commits: commits, CommitsPerSec: float64(commits) / elapsed.Seconds(), Errors: errs,
		Latency: summarize(&lat),
	}
	if firstErr != nil {
		fmt.Fprintf(stderr, "first commit error: %v\n", firstErr)
	}
	return writeBenchSummary(stdout, stderr, o.json, sum.writeText, &sum)
}
