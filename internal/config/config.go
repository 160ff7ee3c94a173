// Package config holds Sluice's one configuration struct: every setting,
// its default and unit, and Validate. Values come, in increasing order of
// precedence, from Default(), an optional YAML-free "key = value" file,
// SLUICE_* environment variables, and command-line flags (see internal/cli).
package config

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the whole broker configuration. Each field names its default
// and unit; the `key` tag is the name used in config files, flags
// (--key with '_' as '-') and environment (SLUICE_KEY upper-cased).
type Config struct {
	// DataDir holds all logs and metadata. Default "./sluice-data".
	DataDir string `key:"data_dir"`
	// KafkaAddr is the Kafka listener host:port. Default ":9092".
	KafkaAddr string `key:"kafka_addr"`
	// KafkaAdvertisedAddr is the host:port told to Kafka clients in
	// Metadata. Default: derived from KafkaAddr; an unspecified host
	// (":9092", "0.0.0.0:9092") becomes 127.0.0.1.
	KafkaAdvertisedAddr string `key:"kafka_advertised_addr"`
	// AMQPAddr is the AMQP 0-9-1 listener host:port. Default ":5672".
	AMQPAddr string `key:"amqp_addr"`
	// HTTPAddr serves the management API, the web console, Prometheus
	// metrics at /metrics and the health checks.
	// Default ":15672".
	HTTPAddr string `key:"http_addr"`
	// AMQPSAddr is the AMQP 0-9-1 over TLS (AMQPS) listener host:port,
	// RabbitMQ's port 5671 by convention. Default "": off.
	AMQPSAddr string `key:"amqps_addr"`
	// KafkaTLSAddr is a second Kafka listener, over TLS (Kafka's SSL and
	// SASL_SSL). Default "": off.
	KafkaTLSAddr string `key:"kafka_tls_addr"`
	// KafkaTLSAdvertisedAddr is the host:port Metadata tells clients
	// connected to the Kafka TLS listener. Default: derived from
	// KafkaTLSAddr as KafkaAdvertisedAddr is from KafkaAddr.
	KafkaTLSAdvertisedAddr string `key:"kafka_tls_advertised_addr"`
	// HTTPSAddr serves what HTTPAddr does over TLS. Default "": off.
	HTTPSAddr string `key:"https_addr"`
	// TLSCert and TLSKey are the PEM files of the certificate chain and
	// private key every TLS listener serves; read again when they change.
	// Required when a TLS listener is on. Default "".
	TLSCert string `key:"tls_cert"`
	TLSKey  string `key:"tls_key"`
	// TLSCA is the PEM file of the CA certificates client certificates
	// must chain to; required when TLSClientAuth is not none. Default "".
	TLSCA string `key:"tls_ca"`
	// TLSClientAuth is what the TLS listeners ask of clients: "none"
	// (default), "request" (a certificate is verified when given) or
	// "require" (mutual TLS: no connection without one). A verified
	// certificate's subject common name is the user it logs in as (AMQP
	// EXTERNAL, the Kafka principal).
	TLSClientAuth string `key:"tls_client_auth"`
	// Cluster settings (docs/clustering.md, "Running a cluster"). All
	// unset (NodeID 0): a single node, exactly as without them.

	// NodeID is this node's id in the cluster (also its Kafka broker id),
	// from 1 to 2^31-1; one of ClusterPeers' ids. Default 0: no cluster.
	NodeID int `key:"node_id"`
	// ClusterAddr is the host:port this node listens on for the other
	// nodes. Default: this node's entry in ClusterPeers.
	ClusterAddr string `key:"cluster_addr"`
	// ClusterPeers is every voting node of the initial cluster, this one
	// included: "1=host:port,2=host:port,...". Default "".
	ClusterPeers string `key:"cluster_peers"`
	// ClusterJoin makes a new node join a running cluster instead of
	// founding one: ClusterPeers lists it and at least one member, and it
	// waits to be added (sluice cluster add-node) rather than bootstrap a
	// configuration. Ignored once its metadata holds a Raft log. Default
	// false.
	ClusterJoin bool `key:"cluster_join"`
	// ClusterID names the cluster: nodes refuse a peer that gives another.
	// Required in a cluster. Default "".
	ClusterID string `key:"cluster_id"`
	// ClusterSecretFile holds the secret the nodes prove to each other
	// (surrounding white space ignored). A cluster needs it or mutual TLS
	// (TLSCert, TLSKey and TLSCA). Default "".
	ClusterSecretFile string `key:"cluster_secret_file"`
	// Rack is this node's rack (Kafka's broker.rack), told to clients in
	// Metadata and used to spread replicas. Default "".
	Rack string `key:"rack"`
	// ReplicaLagTimeMax is Kafka's replica.lag.time.max.ms: a follower
	// of a replicated partition stays in the ISR while it has caught up
	// with the leader's commit within this time. Shorter drops a stalled
	// follower sooner (acks=all produces then wait for fewer replicas);
	// longer tolerates slower followers. Only a cluster uses it. Default
	// 30s, as Kafka.
	ReplicaLagTimeMax time.Duration `key:"replica_lag_time_max"`
	// AutoLeaderRebalance is Kafka's auto.leader.rebalance.enable: in a
	// cluster, every LeaderImbalanceCheck each node hands the replicated
	// partitions it leads back to their preferred replicas (the first of
	// each assignment) when a broker's share of the partitions it is
	// preferred for but does not lead exceeds LeaderImbalancePct
	// (docs/clustering.md, "Moving replicas and leaders"). Default true;
	// ignored on a single node.
	AutoLeaderRebalance bool `key:"auto_leader_rebalance_enable"`
	// LeaderImbalanceCheck is Kafka's
	// leader.imbalance.check.interval.seconds. Default 300s.
	LeaderImbalanceCheck time.Duration `key:"leader_imbalance_check_interval"`
	// LeaderImbalancePct is Kafka's
	// leader.imbalance.per.broker.percentage, 0 to 100. Default 10.
	LeaderImbalancePct int `key:"leader_imbalance_per_broker_percentage"`

	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `key:"log_level"`
	// DebugPprof serves Go's profiler (net/http/pprof) at /debug/pprof/
	// on the HTTP listener, unauthenticated: for profiling a broker under
	// load (docs/benchmarks.md). Default false.
	DebugPprof bool `key:"debug_pprof"`

	// Fsync is the durability policy of every log: "always" (default:
	// acks=1/all answered only after fsync), "interval" (fsync every
	// FsyncInterval, answer after write), or "never".
	Fsync string `key:"fsync"`
	// FsyncInterval is the period for Fsync=interval. Default 1s.
	FsyncInterval time.Duration `key:"fsync_interval"`
	// FileHandles is how many file descriptors the logs and queues may
	// hold open at once; idle files are closed (fsynced first if written)
	// and reopened on use, so the number of queues, partitions and
	// segments is not bounded by the process's open-file limit. Default
	// 0: half the soft RLIMIT_NOFILE at start (the other half is for
	// connections); at least 16.
	FileHandles int `key:"file_handles"`
	// FsyncShared makes the Kafka partitions' logs share their fsyncs:
	// appends to any number of partitions wait for one round, one
	// syncfs(2) of the data directory's file system (Linux; elsewhere a
	// round fsyncs each file). That file system's other dirty data is
	// written with it, so it is for a data directory on a file system of
	// its own. Default false: each partition fsyncs its own file.
	FsyncShared bool `key:"fsync_shared"`

	// AutoCreateTopics creates unknown topics on produce or metadata
	// requests. Default true.
	AutoCreateTopics bool `key:"auto_create_topics"`
	// DefaultPartitions for auto-created topics and CreateTopics with -1.
	// Default 1.
	DefaultPartitions int `key:"default_partitions"`
	// KafkaVhost is the vhost where every topic appears to AMQP clients
	// as a super stream (an exchange and a stream queue per partition),
	// and where a stream queue declared over AMQP is a one-partition
	// topic (docs/bridge.md). Empty shows topics in no vhost. Default "/".
	KafkaVhost string `key:"kafka_vhost"`
	// SegmentBytes is the default segment.bytes. Default 1 GiB.
	SegmentBytes int64 `key:"segment_bytes"`
	// SegmentAge is the default segment.ms. Default 168h.
	SegmentAge time.Duration `key:"segment_age"`
	// Retention is the default retention.ms; negative is unlimited.
	// Default 168h.
	Retention time.Duration `key:"retention"`
	// RetentionBytes is the default retention.bytes per partition;
	// negative is unlimited. Default -1.
	RetentionBytes int64 `key:"retention_bytes"`
	// RetentionCheckInterval is how often retention runs. Default 1m.
	RetentionCheckInterval time.Duration `key:"retention_check_interval"`
	// CleanerInterval is how often the log cleaner looks for compacted
	// partitions to clean (Kafka's log.cleaner.backoff.ms). Default 15s.
	CleanerInterval time.Duration `key:"cleaner_interval"`
	// CleanerMapBytes is the memory of the cleaner's offset map (Kafka's
	// log.cleaner.dedupe.buffer.size): 24 bytes a key; more keys are
	// cleaned in several passes. Default 16 MiB.
	CleanerMapBytes int64 `key:"cleaner_map_bytes"`
	// CleanerBytesPerSecond caps the cleaner's I/O (Kafka's
	// log.cleaner.io.max.bytes.per.second); negative: unthrottled.
	// Default 32 MiB.
	CleanerBytesPerSecond int64 `key:"cleaner_bytes_per_second"`
	// MaxMessageBytes is the default max.message.bytes (largest batch).
	// Default 1 MiB + 12 (Kafka's default).
	MaxMessageBytes int `key:"max_message_bytes"`
	// MaxRequestBytes caps one Kafka request frame. Default 100 MiB.
	MaxRequestBytes int `key:"max_request_bytes"`
	// FetchSessionCacheSlots is how many Kafka fetch sessions (KIP-227)
	// the broker keeps, Kafka's max.incremental.fetch.session.cache.slots;
	// 0 keeps none (every fetch is a full one). Default 1000.
	FetchSessionCacheSlots int `key:"fetch_session_cache_slots"`
	// KafkaZeroCopy sends the records of Fetch answers from the segment
	// files with sendfile (Linux, plain TCP) instead of copying them
	// through memory. Default true.
	KafkaZeroCopy bool `key:"kafka_zero_copy"`
	// KafkaAnonymous says who may use the Kafka listener without SASL
	// (or a client certificate): "loopback" (the default: clients on
	// this host, as RabbitMQ's guest), "none" (everyone authenticates)
	// or "all" (anyone who can reach the port: knowingly open).
	KafkaAnonymous string `key:"kafka_anonymous"`
	// KafkaSASLSessionLifetime is the session_lifetime_ms a Kafka SASL
	// login is given (KIP-368, Kafka's connections.max.reauth.ms): a
	// client must re-authenticate within it or its connection closes.
	// Default 0: sessions never expire.
	KafkaSASLSessionLifetime time.Duration `key:"kafka_sasl_session_lifetime"`
	// TransactionVersion is the level of Kafka's transaction.version
	// feature the broker finalizes: 2 lets clients that support it run
	// KIP-890 part 2 transactions, 1 keeps every client on the classic
	// protocol (an operator's downgrade). Default 2.
	TransactionVersion int `key:"transaction_version"`
	// GroupInitialRebalanceDelay delays the first rebalance of a new group
	// so members starting together land in one generation. Default 0.
	GroupInitialRebalanceDelay time.Duration `key:"group_initial_rebalance_delay"`
	// GroupMinSessionTimeout / GroupMaxSessionTimeout bound the session
	// timeouts clients may ask for. Defaults 6s and 30m.
	GroupMinSessionTimeout time.Duration `key:"group_min_session_timeout"`
	GroupMaxSessionTimeout time.Duration `key:"group_max_session_timeout"`
	// ConsumerSessionTimeout is how long a member of a consumer group of
	// the KIP-848 protocol may go without a heartbeat before it is removed
	// (Kafka's group.consumer.session.timeout.ms). Default 45s.
	ConsumerSessionTimeout time.Duration `key:"consumer_session_timeout"`
	// ConsumerHeartbeatInterval is the heartbeat interval told to KIP-848
	// consumer group members (Kafka's
	// group.consumer.heartbeat.interval.ms). Default 5s.
	ConsumerHeartbeatInterval time.Duration `key:"consumer_heartbeat_interval"`

	// MemoryHighWatermark is the memory alarm threshold, like RabbitMQ's
	// vm_memory_high_watermark: a fraction of total RAM (or of the
	// cgroup limit when smaller) such as "0.6", or an absolute size such
	// as "2GiB", "512MB" or "1073741824" (bytes). Measured as the
	// process's resident set size. While above it, publishers are
	// blocked. "0" blocks publishing at once. Default "0.6".
	MemoryHighWatermark string `key:"memory_high_watermark"`
	// DiskFreeLimit is the disk alarm threshold, like RabbitMQ's
	// disk_free_limit: while the data directory's file system has less
	// free space than this size, publishers are blocked. "0" disables
	// the disk alarm. Default "100MB".
	DiskFreeLimit string `key:"disk_free_limit"`
	// ResourceCheckInterval is how often memory and free disk space are
	// sampled. Default 1s.
	ResourceCheckInterval time.Duration `key:"resource_check_interval"`

	// QueueFlowBacklog is the ready messages past which a queue whose
	// consumers are fast asks its publishers to wait (credit flow,
	// docs/amqp-compatibility.md "Flow control"); 0 turns the count bound
	// off. Default 2048.
	QueueFlowBacklog int64 `key:"queue_flow_backlog"`
	// QueueFlowBacklogBytes is the same bound in ready body bytes; 0 turns
	// it off. Default 8 MiB.
	QueueFlowBacklogBytes int64 `key:"queue_flow_backlog_bytes"`

	// Limits against abusive or broken clients (docs/security.md,
	// "Limits and quotas").

	// AMQPMaxConnections and KafkaMaxConnections cap the open connections
	// of each listener; a connection past the cap is closed at once, as
	// RabbitMQ and Kafka (max.connections) do. 0: unlimited (default).
	AMQPMaxConnections  int `key:"amqp_max_connections"`
	KafkaMaxConnections int `key:"kafka_max_connections"`
	// AMQPMaxMessageBytes is the largest message body a publisher may
	// send (RabbitMQ's max_message_size); larger ones close the channel
	// with 406 PRECONDITION_FAILED. Default 16 MiB.
	AMQPMaxMessageBytes int `key:"amqp_max_message_bytes"`
	// AMQPHandshakeTimeout bounds an AMQP connection's handshake, from
	// accept to connection.open (RabbitMQ's handshake_timeout). Default 10s.
	AMQPHandshakeTimeout time.Duration `key:"amqp_handshake_timeout"`
	// AMQPWriteTimeout closes an AMQP connection whose client stops
	// reading for this long while the broker has frames for it
	// (RabbitMQ's send_timeout); its unacked deliveries return to their
	// queues. Default 15s.
	AMQPWriteTimeout time.Duration `key:"amqp_write_timeout"`
	// KafkaIdleTimeout closes a Kafka connection that sends no request
	// for this long (Kafka's connections.max.idle.ms). Default 10m.
	KafkaIdleTimeout time.Duration `key:"kafka_idle_timeout"`
	// KafkaWriteTimeout closes a Kafka connection whose client does not
	// take a response within this long. Default 60s.
	KafkaWriteTimeout time.Duration `key:"kafka_write_timeout"`
	// FrameTimeout bounds how long a frame (an AMQP frame, a Kafka
	// request) may take to arrive once its first bytes have: a client
	// that dribbles a frame slower (slowloris) is disconnected. A large
	// Kafka request must bring each MiB within it. Default 30s.
	FrameTimeout time.Duration `key:"frame_timeout"`
}

// Default returns the configuration that runs out of the box on a laptop.
func Default() Config {
	return Config{
		DataDir:                    "./sluice-data",
		KafkaAddr:                  ":9092",
		AMQPAddr:                   ":5672",
		HTTPAddr:                   ":15672",
		TLSClientAuth:              "none",
		LogLevel:                   "info",
		AutoLeaderRebalance:        true,
		LeaderImbalanceCheck:       300 * time.Second,
		LeaderImbalancePct:         10,
		Fsync:                      "always",
		FsyncInterval:              time.Second,
		AutoCreateTopics:           true,
		DefaultPartitions:          1,
		KafkaVhost:                 "/",
		SegmentBytes:               1 << 30,
		SegmentAge:                 168 * time.Hour,
		Retention:                  168 * time.Hour,
		RetentionBytes:             -1,
		RetentionCheckInterval:     time.Minute,
		CleanerInterval:            15 * time.Second,
		CleanerMapBytes:            16 << 20,
		CleanerBytesPerSecond:      32 << 20,
		MaxMessageBytes:            1048588,
		MaxRequestBytes:            100 << 20,
		FetchSessionCacheSlots:     1000,
		KafkaZeroCopy:              true,
		KafkaAnonymous:             "loopback",
		TransactionVersion:         2,
		GroupInitialRebalanceDelay: 0,
		ReplicaLagTimeMax:          30 * time.Second,
		GroupMinSessionTimeout:     6 * time.Second,
		GroupMaxSessionTimeout:     30 * time.Minute,
		ConsumerSessionTimeout:     45 * time.Second,
		ConsumerHeartbeatInterval:  5 * time.Second,
		MemoryHighWatermark:        "0.6",
		DiskFreeLimit:              "100MB",
		ResourceCheckInterval:      time.Second,
		QueueFlowBacklog:           2048,
		QueueFlowBacklogBytes:      8 << 20,
		AMQPMaxMessageBytes:        16 << 20,
		AMQPHandshakeTimeout:       10 * time.Second,
		AMQPWriteTimeout:           15 * time.Second,
		KafkaIdleTimeout:           10 * time.Minute,
		KafkaWriteTimeout:          60 * time.Second,
		FrameTimeout:               30 * time.Second,
	}
}

// Validate reports every problem found, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.DataDir == "" {
		bad("data_dir must not be empty")
	}
	for _, a := range []struct{ name, v string }{
		{"kafka_addr", c.KafkaAddr}, {"amqp_addr", c.AMQPAddr}, {"http_addr", c.HTTPAddr},
	} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad("%s %q: want host:port: %v", a.name, a.v, err)
		}
	}
	for _, a := range []struct{ name, v string }{
		{"kafka_advertised_addr", c.KafkaAdvertisedAddr}, {"kafka_tls_advertised_addr", c.KafkaTLSAdvertisedAddr},
	} {
		if a.v == "" {
			continue
		}
		if h, p, err := net.SplitHostPort(a.v); err != nil || h == "" || p == "" {
			bad("%s %q: want host:port", a.name, a.v)
		}
	}
	c.validateTLS(bad)
	c.validateCluster(bad)
	switch c.KafkaAnonymous {
	case "loopback", "none", "all":
	default:
		bad("kafka_anonymous %q: want loopback, none or all", c.KafkaAnonymous)
	}
	if c.KafkaSASLSessionLifetime < 0 {
		bad("kafka_sasl_session_lifetime must not be negative (0: no expiry)")
	}
	if c.TransactionVersion != 1 && c.TransactionVersion != 2 {
		bad("transaction_version %d: want 1 or 2", c.TransactionVersion)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.Fsync {
	case "always", "never":
	case "interval":
		if c.FsyncInterval <= 0 {
			bad("fsync_interval must be positive with fsync=interval")
		}
	default:
		bad("fsync %q: want always, interval or never", c.Fsync)
	}
	if c.FileHandles < 0 {
		bad("file_handles must be 0 (half the open-file limit) or positive")
	}
	if c.DefaultPartitions < 1 {
		bad("default_partitions must be at least 1")
	}
	if c.SegmentBytes < 1<<10 {
		bad("segment_bytes must be at least 1024")
	}
	if c.SegmentAge <= 0 {
		bad("segment_age must be positive")
	}
	if c.RetentionCheckInterval <= 0 {
		bad("retention_check_interval must be positive")
	}
	if c.CleanerInterval <= 0 {
		bad("cleaner_interval must be positive")
	}
	if c.CleanerMapBytes < 1024 {
		bad("cleaner_map_bytes must be at least 1024")
	}
	if c.CleanerBytesPerSecond == 0 {
		bad("cleaner_bytes_per_second must not be 0 (negative: unthrottled)")
	}
	if c.MaxMessageBytes < 64 {
		bad("max_message_bytes must be at least 64")
	}
	if c.MaxRequestBytes < c.MaxMessageBytes {
		bad("max_request_bytes must be at least max_message_bytes")
	}
	if c.GroupMinSessionTimeout <= 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		bad("group session timeout bounds are inconsistent")
	}
	if c.ConsumerHeartbeatInterval <= 0 || c.ConsumerSessionTimeout <= c.ConsumerHeartbeatInterval {
		bad("consumer_heartbeat_interval must be positive and below consumer_session_timeout")
	}
	if _, _, err := ParseWatermark(c.MemoryHighWatermark); err != nil {
		bad("memory_high_watermark: %v", err)
	}
	if _, err := ParseSize(c.DiskFreeLimit); err != nil {
		bad("disk_free_limit: %v", err)
	}
	if c.ResourceCheckInterval <= 0 {
		bad("resource_check_interval must be positive")
	}
	if c.QueueFlowBacklog < 0 || c.QueueFlowBacklogBytes < 0 {
		bad("queue_flow_backlog and queue_flow_backlog_bytes must not be negative (0: off)")
	}
	if c.AMQPMaxConnections < 0 || c.KafkaMaxConnections < 0 {
		bad("amqp_max_connections and kafka_max_connections must not be negative (0: unlimited)")
	}
	if c.AMQPMaxMessageBytes < 1 {
		bad("amqp_max_message_bytes must be positive")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"amqp_handshake_timeout", c.AMQPHandshakeTimeout}, {"amqp_write_timeout", c.AMQPWriteTimeout},
		{"kafka_idle_timeout", c.KafkaIdleTimeout}, {"kafka_write_timeout", c.KafkaWriteTimeout},
		{"frame_timeout", c.FrameTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive", d.name)
		}
	}
	return errors.Join(errs...)
}

// AdvertisedKafkaAddr is the address told to clients.
func (c *Config) AdvertisedKafkaAddr() string {
	return advertised(c.KafkaAdvertisedAddr, c.KafkaAddr, c.unspecifiedHost())
}

// AdvertisedKafkaTLSAddr is the address told to clients of the Kafka TLS
// listener.
func (c *Config) AdvertisedKafkaTLSAddr() string {
	return advertised(c.KafkaTLSAdvertisedAddr, c.KafkaTLSAddr, c.unspecifiedHost())
}

// advertised is set if set, else addr with an unspecified host made
// host.
func advertised(set, addr, host string) string {
	if set != "" {
		return set
	}
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if unspecified(h) {
		h = host
	}
	return net.JoinHostPort(h, port)
}

// unspecified reports whether a listener's host means every interface.
func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// Set assigns one setting by key from its text form.
func (c *Config) Set(key, value string) error {
	f, ok := fields(c)[key]
	if !ok {
		return fmt.Errorf("unknown setting %q", key)
	}
	return f.set(value)
}

// Keys lists every setting key, in declaration order.
func Keys() []string {
	var c Config
	return fieldOrder(&c)
}

// Get returns the text form of a setting.
func (c *Config) Get(key string) string {
	f, ok := fields(c)[key]
	if !ok {
		return ""
	}
	return f.get()
}

// LoadFile applies a config file of "key = value" lines ('#' comments).
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want key = value", filepath.Base(path), n)
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if err := c.Set(strings.TrimSpace(k), v); err != nil {
			return fmt.Errorf("%s:%d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}

// LoadEnv applies SLUICE_<KEY> variables from environ (os.Environ form).
func (c *Config) LoadEnv(environ []string) error {
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "SLUICE_") {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(k, "SLUICE_"))
		if _, known := fields(c)[key]; !known {
			continue // SLUICE_CONFIG and friends belong to the CLI
		}
		if err := c.Set(key, v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// EnvName is the environment variable for a key.
func EnvName(key string) string { return "SLUICE_" + strings.ToUpper(key) }

// FlagName is the command-line flag for a key.
func FlagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func parseBool(s string) (bool, error) { return strconv.ParseBool(s) }
