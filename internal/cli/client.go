package cli

// Shared setup of the client commands (topic, produce, consume, group,
// bench): the --brokers flag, franz-go client construction, and the
// parsing of flags that several commands accept.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	defaultBrokers = "127.0.0.1:9092"
	brokersEnv     = "SLUICE_BROKERS"

	// adminTimeout bounds one administrative command (create, describe,
	// delete...), so that a command pointed at a dead address fails
	// instead of retrying forever.
	adminTimeout = 30 * time.Second
)

// clientFlags are the connection settings every client command takes.
type clientFlags struct {
	brokers string
	// tlsCA, when set, makes the client connect over TLS, trusting the
	// CA certificates in this PEM file (a Kafka TLS listener).
	tlsCA string
}

// register adds --brokers to cmd as a persistent flag, so that it is
// accepted by cmd and by all of its subcommands.
func (f *clientFlags) register(cmd *cobra.Command) {
	def := os.Getenv(brokersEnv)
	if def == "" {
		def = defaultBrokers
	}
	cmd.PersistentFlags().StringVar(&f.brokers, "brokers", def,
		"comma-separated bootstrap broker host:port list (env "+brokersEnv+")")
	cmd.PersistentFlags().StringVar(&f.tlsCA, "tls-ca", os.Getenv(tlsCAEnv),
		"connect over TLS, trusting the CA certificates in this PEM file (a Kafka TLS listener; env "+tlsCAEnv+")")
}

// seeds returns the broker addresses, checked for a host:port shape.
func (f *clientFlags) seeds() ([]string, error) {
	var out []string
	for _, s := range strings.Split(f.brokers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("--brokers: %q is not host:port", s)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("--brokers: no broker address given")
	}
	return out, nil
}

// newClient returns a franz-go client bootstrapped from --brokers, with
// opts appended to the shared defaults.
func (f *clientFlags) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := f.seeds()
	if err != nil {
		return nil, err
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("sluice-cli"),
		kgo.DialTimeout(5 * time.Second),
	}
	if f.tlsCA != "" {
		cfg, err := tlsClientConfig(f.tlsCA)
		if err != nil {
			return nil, err
		}
		base = append(base, kgo.DialTLSConfig(cfg))
	}
	return kgo.NewClient(append(base, opts...)...)
}

// newClients returns n clients, client i built with opts(i); if one
// fails, the ones already built are closed.
func (f *clientFlags) newClients(n int, opts func(i int) []kgo.Opt) ([]*kgo.Client, error) {
	out := make([]*kgo.Client, 0, n)
	for i := range n {
		c, err := f.newClient(opts(i)...)
		if err != nil {
			closeClients(out)
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func closeClients(cs []*kgo.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// newAdmin returns an admin client; closing it closes its kgo client.
func (f *clientFlags) newAdmin(opts ...kgo.Opt) (*kadm.Client, error) {
	cl, err := f.newClient(opts...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// signalContext is canceled on SIGINT or SIGTERM, so that a command can
// stop cleanly (flush, commit, print its summary) instead of dying.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// interruptContext is a signalContext for commands that finish their work
// in flight after the first SIGINT or SIGTERM: from then on, a second
// signal kills the process the usual way.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, stop := signalContext()
	go func() { <-ctx.Done(); stop() }()
	return ctx, stop
}

// adminContext is a signal context bounded by adminTimeout.
func adminContext() (context.Context, context.CancelFunc) {
	sig, stop := signalContext()
	ctx, cancel := context.WithTimeout(sig, adminTimeout)
	return ctx, func() { cancel(); stop() }
}

// explainTimeout turns a deadline error into a message saying where the
// command was trying to connect.
func (f *clientFlags) explainTimeout(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from brokers %s within %v: %w", f.brokers, adminTimeout, err)
	}
	return err
}

// runAdmin runs one administrative command: fn gets an admin client and
// a context bounded by adminTimeout and canceled on SIGINT, and a
// deadline error it returns is explained with the broker addresses.
func (f *clientFlags) runAdmin(fn func(ctx context.Context, adm *kadm.Client) error) error {
	adm, err := f.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := adminContext()
	defer cancel()
	return f.explainTimeout(fn(ctx, adm))
}

// reportDeleted prints "deleted KIND NAME" for each name whose response
// has no error, and joins the errors of the others, each as
// "delete KIND NAME: ...". errOf gives a response's error.
func reportDeleted[R any](out io.Writer, kind string, names []string, resps map[string]R, errOf func(R) error) error {
	var errs []error
	for _, name := range names {
		err := errors.New("not in the answer")
		if r, ok := resps[name]; ok {
			err = errOf(r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", kind, name, err))
			continue
		}
		fmt.Fprintf(out, "deleted %s %s\n", kind, name)
	}
	return errors.Join(errs...)
}

// ackOpts turns --acks into producer options. Only acks=all can use
// idempotent writes, so the weaker settings turn idempotence off.
func ackOpts(acks string) ([]kgo.Opt, error) {
	switch strings.ToLower(acks) {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, fmt.Errorf("--acks: %q is not all, 1 or 0", acks)
}

// compressionCodec parses --compression.
func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression: %q is not none, gzip, snappy, lz4 or zstd", name)
}

// parseKV splits "k=v" flag values; flag names the flag for errors.
func parseKV(flag string, pairs []string) ([][2]string, error) {
	out := make([][2]string, 0, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s: %q is not key=value", flag, p)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
