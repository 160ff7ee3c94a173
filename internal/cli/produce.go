package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { clientCommands = append(clientCommands, newProduceCmd) }

type produceOptions struct {
	topic        string
	keySeparator string
	headers      []string
	partition    int32
	acks         string
	compression  string
	linger       time.Duration
}

func newProduceCmd() *cobra.Command {
	var (
		cf   clientFlags
		opts produceOptions
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce one record per line of standard input",
		Long: `Read standard input and produce one record per line (the newline, and a
carriage return before it, are not part of the record). With --key-separator
each line is split at the first separator into key and value; a line without
the separator becomes a record without a key. Every record gets the --header
headers.

Records are sent asynchronously and batched; the command waits for every
acknowledgement, prints a summary (records, bytes) to standard error, and
exits non-zero if any record failed. SIGINT stops reading and waits for the
records already sent.`,
		Example: `  echo hello | sluice produce events
  printf 'user-1:login\nuser-2:logout\n' | sluice produce events --key-separator :
  sluice produce events --header source=cli --header trace=1 < lines.txt
  seq 1000 | sluice produce numbers --partition 0 --acks 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.topic = args[0]
			return runProduce(&cf, opts, cmd.InOrStdin(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.keySeparator, "key-separator", "", "split each line into key and value at the first occurrence of this string")
	f.StringArrayVar(&opts.headers, "header", nil, "record header as key=value, added to every record (repeatable)")
	f.Int32Var(&opts.partition, "partition", -1, "produce to this partition (-1: by key hash, or spread when there is no key)")
	f.StringVar(&opts.acks, "acks", "all", "acknowledgement: all (durable on the broker), 1 (leader), 0 (none)")
	f.StringVar(&opts.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&opts.linger, "linger", 0, "how long to wait to fill a batch before sending it")
	return cmd
}

func runProduce(cf *clientFlags, opts produceOptions, stdin io.Reader, stderr io.Writer) error {
	hdrs, err := parseKV("header", opts.headers)
	if err != nil {
		return err
	}
	headers := make([]kgo.RecordHeader, len(hdrs))
	for i, kv := range hdrs {
		headers[i] = kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])}
	}
	ack, err := ackOpts(opts.acks)
	if err != nil {
		return err
	}
	codec, err := compressionCodec(opts.compression)
	if err != nil {
		return err
	}
	kopts := append(ack,
		kgo.DefaultProduceTopic(opts.topic),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(opts.linger),
		// Let the broker's auto-create setting decide about unknown topics.
		kgo.AllowAutoTopicCreation(),
	)
	if opts.partition >= 0 {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := cf.newClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	// The first SIGINT stops reading and waits for the records already
	// sent.
	ctx, stop := interruptContext()
	defer stop()
	// Records live on past SIGINT: canceling their context would fail
	// the ones still buffered.
	produceCtx, cancelProduce := context.WithCancel(context.Background())
	defer cancelProduce()

	var (
		sent, acked, ackedBytes, failed atomic.Int64
		errOnce                         sync.Once
		firstErr                        error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
			return
		}
		acked.Add(1)
		ackedBytes.Add(int64(len(r.Key) + len(r.Value)))
	}

	lines := make(chan []byte, 256)
	readErr := make(chan error, 1)
	go func() { readErr <- readLines(stdin, lines) }()

	start := time.Now()
	// A bulk produce running longer than a second reports its progress
	// every second.
	progressDone, progressExited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(progressExited)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-tick.C:
				fmt.Fprintf(stderr, "... %d records sent, %d acknowledged, %d failed\n", sent.Load(), acked.Load(), failed.Load())
			}
		}
	}()
	interrupted := false
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			r := &kgo.Record{Value: line, Headers: headers}
			if opts.keySeparator != "" {
				if k, v, found := bytes.Cut(line, []byte(opts.keySeparator)); found {
					r.Key, r.Value = k, v
				}
			}
			if opts.partition >= 0 {
				r.Partition = opts.partition
			}
			sent.Add(1)
			cl.Produce(produceCtx, r, promise)
		}
	}
	var errs []error
	if !interrupted {
		if err := <-readErr; err != nil {
			errs = append(errs, fmt.Errorf("reading stdin: %w", err))
		}
	}
	// Wait for what was sent: until interrupted, or for a bounded time
	// once interrupted; then fail whatever is left.
	flushCtx, cancel := ctx, context.CancelFunc(func() {})
	if interrupted {
		flushCtx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	}
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		interrupted = true
		cancelProduce()
		drainCtx, cancelDrain := context.WithTimeout(context.Background(), 5*time.Second)
		cl.Flush(drainCtx)
		cancelDrain()
	}
	close(progressDone)
	<-progressExited
	elapsed := time.Since(start)
	fmt.Fprintf(stderr, "produced %d records (%d bytes) to %s in %v",
		acked.Load(), ackedBytes.Load(), opts.topic, elapsed.Round(time.Millisecond))
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(stderr, "; %d of %d failed, first error: %v", n, sent.Load(), firstErr)
		errs = append(errs, fmt.Errorf("%d records failed", n))
	}
	if n := sent.Load() - acked.Load() - failed.Load(); n > 0 {
		fmt.Fprintf(stderr, "; %d unacknowledged", n)
		errs = append(errs, fmt.Errorf("%d records unacknowledged", n))
	}
	if interrupted {
		fmt.Fprint(stderr, " (interrupted)")
	}
	fmt.Fprintln(stderr)
	return errors.Join(errs...)
}

// readLines sends each line of r, without its "\n" or "\r\n", to out and
// closes out at the end. Lines may be of any length.
func readLines(r io.Reader, out chan<- []byte) error {
	defer close(out)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			out <- line
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
