package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/alarm"
	"github.com/sluice-mq/sluice/internal/config"
	"github.com/sluice-mq/sluice/internal/server"
	"github.com/spf13/cobra"
)

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the broker",
		Long: `Run the broker. Settings come from defaults, then the optional --config file
(key = value lines), then SLUICE_<KEY> environment variables, then flags.
Stops gracefully on SIGINT or SIGTERM, flushing and closing every log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := serverConfig(cmd, os.Environ())
			if err != nil {
				return err
			}
			return runServer(cfg)
		},
	}
	cmd.Flags().String("config", "", "config file of key = value lines (env SLUICE_CONFIG)")
	def := config.Default()
	for _, key := range config.Keys() {
		cmd.Flags().String(config.FlagName(key), def.Get(key),
			fmt.Sprintf("%s (env %s)", describe(key), config.EnvName(key)))
		if d := def.Get(key); d == "true" || d == "false" {
			// A boolean setting given alone (--fsync-shared) means true,
			// as in every CLI; --fsync-shared=false still works.
			cmd.Flags().Lookup(config.FlagName(key)).NoOptDefVal = "true"
		}
	}
	return cmd
}

// serverConfig is the configuration of a server command whose flags are
// parsed: defaults, then the config file, then environ's SLUICE_*
// variables, then the flags given; validated.
func serverConfig(cmd *cobra.Command, environ []string) (config.Config, error) {
	cfg := config.Default()
	configFile, _ := cmd.Flags().GetString("config")
	if configFile == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "SLUICE_CONFIG="); ok {
				configFile = v
			}
		}
	}
	if configFile != "" {
		if err := cfg.LoadFile(configFile); err != nil {
			return cfg, err
		}
	}
	if err := cfg.LoadEnv(environ); err != nil {
		return cfg, err
	}
	for _, key := range config.Keys() {
		if f := cmd.Flags().Lookup(config.FlagName(key)); f != nil && f.Changed {
			if err := cfg.Set(key, f.Value.String()); err != nil {
				return cfg, fmt.Errorf("--%s: %w", config.FlagName(key), err)
			}
		}
	}
	return cfg, cfg.Validate()
}

func runServer(cfg config.Config) error {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// Catch signals before the listeners open: a SIGTERM that arrives
	// once clients can connect must shut down cleanly, not kill.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	tuneGC(cfg, log)
	srv, err := server.Start(cfg, log)
	if err != nil {
		signal.Stop(sig)
		if errors.Is(err, server.ErrStartInterrupted) {
			log.Info("stopped before joining the cluster", "err", err)
			return nil // a node waiting to join was stopped on purpose
		}
		return err
	}
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// describe is the one-line help of each setting.
func describe(key string) string {
	if d, ok := settingHelp[key]; ok {
		return d
	}
	return key
}

var settingHelp = map[string]string{
	"data_dir":                      "directory for logs and metadata",
	"kafka_addr":                    "Kafka listener host:port",
	"kafka_advertised_addr":         "host:port told to Kafka clients (default: from --kafka-addr, unspecified host → 127.0.0.1)",
	"amqp_addr":                     "AMQP 0-9-1 listener host:port",
	"http_addr":                     "HTTP listener host:port: the management API, the web console, /metrics and health checks",
	"amqps_addr":                    "AMQP over TLS (AMQPS) listener host:port, conventionally :5671 (empty: off)",
	"kafka_tls_addr":                "Kafka over TLS listener host:port, beside --kafka-addr (empty: off)",
	"kafka_tls_advertised_addr":     "host:port told to clients of the Kafka TLS listener (default: from --kafka-tls-addr)",
	"https_addr":                    "HTTPS listener host:port: what --http-addr serves, over TLS (empty: off)",
	"tls_cert":                      "PEM certificate chain of the TLS listeners (reloaded when the file changes)",
	"tls_key":                       "PEM private key of --tls-cert (reloaded when the file changes)",
	"tls_ca":                        "PEM CA certificates that client certificates must chain to",
	"tls_client_auth":               "client certificates on TLS listeners: none, request (verified when given) or require (mutual TLS)",
	"node_id":                       "this node's id in a cluster, 1 to 2^31-1, also its Kafka broker id (0: no cluster, a single node)",
	"cluster_addr":                  "host:port this node listens on for the other nodes (default: its entry in --cluster-peers)",
	"cluster_peers":                 "the initial cluster's nodes, this one included: 1=host:port,2=host:port,...",
	"cluster_join":                  "join a running cluster (listed in --cluster-peers with at least one member) instead of founding one; wait to be added with 'sluice cluster add-node'",
	"cluster_id":                    "the cluster's name; nodes refuse a peer with another",
	"cluster_secret_file":           "file holding the secret nodes authenticate each other with (or mutual TLS: --tls-cert, --tls-key, --tls-ca)",
	"replica_lag_time_max":          "how long a follower of a replicated partition may lag before it leaves the ISR (Kafka replica.lag.time.max.ms)",
	"rack":                          "this node's rack (Kafka broker.rack), told to clients and used to spread replicas",
	"log_level":                     "debug, info, warn or error",
	"debug_pprof":                   "serve Go's profiler at /debug/pprof/ on the HTTP listener, unauthenticated (for profiling)",
	"fsync":                         "always (answer after fsync), interval, or never",
	"fsync_interval":                "fsync period with --fsync=interval",
	"file_handles":                  "file descriptors logs and queues may hold open (0: half the open-file limit); idle files are closed and reopened on use",
	"fsync_shared":                  "partitions share one fsync round: one syncfs of the data directory's file system (for a data directory on its own file system)",
	"auto_create_topics":            "create unknown topics on produce and metadata",
	"kafka_vhost":                   "vhost where topics appear as super streams (docs/bridge.md); empty: none",
	"default_partitions":            "partitions of auto-created topics",
	"segment_bytes":                 "default segment.bytes",
	"segment_age":                   "default segment.ms, as a duration",
	"retention":                     "default retention.ms, as a duration (negative: forever)",
	"retention_bytes":               "default retention.bytes per partition (-1: unlimited)",
	"retention_check_interval":      "how often retention runs",
	"cleaner_interval":              "how often the log cleaner looks for compacted partitions to clean",
	"cleaner_map_bytes":             "memory of the log cleaner's offset map (24 bytes a key)",
	"cleaner_bytes_per_second":      "log cleaner I/O budget (negative: unthrottled)",
	"max_message_bytes":             "default max.message.bytes (largest record batch)",
	"max_request_bytes":             "largest Kafka request frame accepted",
	"fetch_session_cache_slots":     "Kafka fetch sessions kept (max.incremental.fetch.session.cache.slots; 0: none)",
	"kafka_zero_copy":               "send Kafka fetch records from the segment files with sendfile (Linux, plain TCP); false: copy them",
	"kafka_anonymous":               "who may use the Kafka listener without SASL: loopback (clients on this host), none, or all (open to anyone)",
	"kafka_sasl_session_lifetime":   "Kafka SASL session lifetime (KIP-368 re-authentication, connections.max.reauth.ms); 0: no expiry",
	"transaction_version":           "Kafka transaction.version finalized: 2 (KIP-890 part 2 for clients that support it) or 1 (classic transactions only)",
	"group_initial_rebalance_delay": "delay of a new group's first rebalance",
	"group_min_session_timeout":     "smallest consumer session timeout allowed",
	"group_max_session_timeout":     "largest consumer session timeout allowed",
	"consumer_session_timeout":      "session timeout of KIP-848 consumer group members (group.consumer.session.timeout.ms)",
	"consumer_heartbeat_interval":   "heartbeat interval told to KIP-848 consumer group members (group.consumer.heartbeat.interval.ms)",
	"memory_high_watermark":         "memory alarm threshold: fraction of total RAM (0.6) or a size (2GiB); publishers are blocked above it",
	"disk_free_limit":               "disk alarm threshold: publishers are blocked while the data directory's file system has less free space (0: off)",
	"resource_check_interval":       "how often memory and free disk space are sampled",
	"queue_flow_backlog":            "ready messages past which a queue with fast consumers holds its publishers (credit flow; 0: off)",
	"queue_flow_backlog_bytes":      "ready body bytes past which a queue with fast consumers holds its publishers (credit flow; 0: off)",
	"amqp_max_connections":          "open AMQP connections allowed, plain and AMQPS together; more are closed at once (0: unlimited)",
	"kafka_max_connections":         "open Kafka connections allowed, plain and TLS together; more wait to be accepted (max.connections; 0: unlimited)",
	"amqp_max_message_bytes":        "largest AMQP message body (max_message_size); larger: 406 PRECONDITION_FAILED",
	"amqp_handshake_timeout":        "time an AMQP connection has from accept to connection.open (handshake_timeout)",
	"amqp_write_timeout":            "an AMQP client that takes no frames for this long is disconnected (send_timeout); its unacked messages are requeued",
	"kafka_idle_timeout":            "a Kafka connection without requests for this long is closed (connections.max.idle.ms)",
	"kafka_write_timeout":           "a Kafka client that takes no response bytes for this long is disconnected",
	"frame_timeout":                 "time a started frame (AMQP frame, Kafka request; each MiB of a big one) has to arrive; slower clients are disconnected",
}

// The broker's garbage collector runs with a headroom rather than a fixed
// GOGC. Its live heap is small whatever the backlog (messages wait on
// disk), and with Go's default (GOGC 100) a 12 MiB live heap is collected
// after every 12 MiB allocated: at 5,000 msg/s that put collections in the
// end-to-end p99, and flat out it cost a quarter of the throughput
// (docs/benchmarks.md). So the heap may grow by gcHeadroom before a
// collection, but by no more than gcMaxPercent of the live heap, and never
// less than Go's default: a large live heap (many connections, say) is
// collected as Go would. A soft memory limit of twice the headroom above
// the last live heap bounds the overshoot when the live heap grows
// between two samples; it follows the live heap, so it never holds the
// collector below what is live for longer than one interval.
const (
	gcHeadroom     = 48 << 20
	gcMaxPercent   = 400
	gcMinPercent   = 100
	gcTuneInterval = time.Second
)

// A broker that stops allocating (thousands of connections closed, and
// nothing since) would keep their memory until Go's forced collection two
// minutes later, and the soft limit, which follows the last live heap,
// would keep it from the scavenger. So when no collection ran for
// idleGCAfter and the heap's objects (live or not) take idleGCHeap or
// more, the tuner collects; the next limit follows the smaller live heap
// and the scavenger returns the pages to the system. Under load
// collections run far more often than that, so this never adds one; an
// idle broker with a large live heap pays one collection every
// idleGCAfter.
const (
	idleGCAfter = 10 * time.Second
	idleGCHeap  = 32 << 20
)

// idleCollect reports whether to collect now, given the collection count
// and heap object bytes sampled; cycles and quiet carry its state between
// calls.
func idleCollect(n, objects uint64, cycles *uint64, quiet *time.Duration) bool {
	if n != *cycles {
		*cycles, *quiet = n, 0
		return false
	}
	*quiet += gcTuneInterval
	if *quiet < idleGCAfter || objects < idleGCHeap {
		return false
	}
	*quiet = 0
	return true
}

// gcPercent is the GOGC that gives a live heap of live bytes gcHeadroom
// to grow, within [gcMinPercent, gcMaxPercent].
func gcPercent(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	return int(min(max(gcHeadroom*100/live, gcMinPercent), gcMaxPercent))
}

// tuneGC adapts GOGC and the soft memory limit to the live heap every
// gcTuneInterval, unless the GOGC or GOMEMLIMIT environment variables are
// set (then Go's own settings apply). The limit never goes above the
// memory alarm's threshold, so the collector works harder before
// publishers would be blocked.
func tuneGC(cfg config.Config, log *slog.Logger) {
	_, gogcSet := os.LookupEnv("GOGC")
	_, limitSet := os.LookupEnv("GOMEMLIMIT")
	if gogcSet || limitSet {
		return
	}
	alarmLimit, ok := cfg.MemoryLimitBytes(alarm.TotalMemory())
	if !ok || alarmLimit < 64<<20 {
		// Unknown, or so low (a test watermark) that a limit there
		// would have the collector run all the time.
		alarmLimit = math.MaxInt64
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}}
	last := gcPercent(0)
	debug.SetGCPercent(last)
	go func() {
		var cycles uint64
		var quiet time.Duration // since the last collection
		for range time.Tick(gcTuneInterval) {
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return // not reported by this runtime: keep the setting
			}
			live := sample[0].Value.Uint64()
			if sample[1].Value.Kind() == metrics.KindUint64 && sample[2].Value.Kind() == metrics.KindUint64 &&
				idleCollect(sample[1].Value.Uint64(), sample[2].Value.Uint64(), &cycles, &quiet) {
				runtime.GC()
				metrics.Read(sample)
				live = sample[0].Value.Uint64()
			}
			debug.SetMemoryLimit(min(int64(min(live, math.MaxInt64/2))+2*gcHeadroom, alarmLimit))
			if p := gcPercent(live); p != last {
				debug.SetGCPercent(p)
				last = p
				log.Debug("garbage collector", "gogc", p, "live_heap_bytes", live)
			}
		}
	}()
}
