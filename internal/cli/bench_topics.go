package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { benchCommands = append(benchCommands, newBenchTopicsCmd) }

type benchTopicsOptions struct {
	topics     int
	partitions int32
	perRequest int
	prefix     string
	keep       bool
	json       bool
}

func newBenchTopicsCmd() *cobra.Command {
	var (
		cf clientFlags
		o  benchTopicsOptions
	)
	cmd := &cobra.Command{
		Use:   "kafka-topics",
		Short: "Kafka topic creation: time to create many topics with their partitions",
		Long: `Create --topics topics of --partitions partitions each, named
<prefix>-<n>, through CreateTopics requests of --per-request topics each
(sent one after another, each answered before the next), and measure the
time from the first request to the last answer. Every topic must be
answered without an error. The topics are deleted afterwards unless --keep.

Works against any Kafka broker, so the same run can measure Sluice and a
peer. The broker's durability policy (fsync) is a server setting: report it
with the results.`,
		Example: `  sluice bench kafka-topics --topics 200 --partitions 10
  sluice bench kafka-topics --topics 1000 --per-request 1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchTopics(&cf, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.IntVar(&o.topics, "topics", 200, "topics to create")
	f.Int32Var(&o.partitions, "partitions", 10, "partitions of each topic")
	f.IntVar(&o.perRequest, "per-request", 200, "topics per CreateTopics request")
	f.StringVar(&o.prefix, "prefix", "sluice-bench-topics", "prefix of the topics' names")
	f.BoolVar(&o.keep, "keep", false, "keep the topics (default: delete them after the run)")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on standard output (the text summary goes to standard error)")
	return cmd
}

func (o *benchTopicsOptions) validate() error {
	switch {
	case o.prefix == "":
		return errors.New("--prefix must not be empty")
	case o.topics < 1 || o.partitions < 1 || o.perRequest < 1:
		return errors.New("--topics, --partitions and --per-request must be at least 1")
	}
	return nil
}

// benchTopicsSummary is the result of a kafka-topics run.
type benchTopicsSummary struct {
	Topics       int     `json:"topics"`
	Partitions   int32   `json:"partitions_per_topic"`
	PerRequest   int     `json:"topics_per_request"`
	Seconds      float64 `json:"seconds"`
	TopicsPerSec float64 `json:"topics_per_sec"`
}

func (s *benchTopicsSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "created %d topics x %d partitions (%d a request) in %.3fs: %.0f topics/s\n",
		s.Topics, s.Partitions, s.PerRequest, s.Seconds, s.TopicsPerSec)
}

func runBenchTopics(cf *clientFlags, o benchTopicsOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := cf.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	names := make([]string, o.topics)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", o.prefix, i)
	}
	// A first request that needs no answer from disk, so that the clock
	// does not count connecting.
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}

	start := time.Now()
	for from := 0; from < len(names); from += o.perRequest {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 60000
		for _, name := range names[from:min(from+o.perRequest, len(names))] {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, o.partitions, 1
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("CreateTopics: %w", err)
		}
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return fmt.Errorf("creating %s: %w", t.Topic, err)
			}
		}
	}
	elapsed := time.Since(start)

	if !o.keep {
		adm := kadm.NewClient(cl)
		for from := 0; from < len(names); from += 100 {
			resps, err := adm.DeleteTopics(ctx, names[from:min(from+100, len(names))]...)
			if err == nil {
				err = resps.Error()
			}
			if err != nil {
				fmt.Fprintf(stderr, "deleting the bench's topics: %v\n", err)
				break
			}
		}
	}

	s := benchTopicsSummary{
		Topics: o.topics, Partitions: o.partitions, PerRequest: o.perRequest,
		Seconds: elapsed.Seconds(), TopicsPerSec: float64(o.topics) / elapsed.Seconds(),
	}
	if !o.json {
		s.writeText(stdout)
		return nil
	}
	s.writeText(stderr)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(&s)
}
