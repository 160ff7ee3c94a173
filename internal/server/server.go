// Package server wires Sluice together: storage → meta → broker →
// listeners. Start opens everything and begins serving; Shutdown stops the
// listeners, then flushes and closes every log.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/accept"
	"github.com/sluice-mq/sluice/internal/amqp"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/alarm"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/config"
	"github.com/sluice-mq/sluice/internal/kafka"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/metrics"
	"github.com/sluice-mq/sluice/internal/mgmt"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/sluice-mq/sluice/internal/version"
)

// Server is a running broker.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	meta   *meta.Store
	broker *broker.Broker
	groups *groups.Coordinator
	kafka  *kafka.Server
	router *broker.Router
	amqp   *amqp.Server
	http   *http.Server
	mx     *metrics.Metrics
	mgmt   *mgmt.API
	alarms *alarm.Monitor
	// recovery reopens logs that failed (a full disk, an I/O error) once
	// the disk takes writes again.
	recovery *broker.Recovery
	faultFS  storage.FS // faultinject builds only; nil otherwise
	// partitionSync is the fsync round the partitions share
	// (config FsyncShared); nil: each log fsyncs its own file.
	partitionSync *storage.SyncGroup

	kafkaLn, amqpLn, httpLn net.Listener
	tls                     tlsListeners // tls.go; off unless configured
	cluster                 *clusterNode // cluster.go; nil on a single node
	stop                    chan struct{}
	wg                      sync.WaitGroup
}

// Start opens the data directory and starts serving.
func Start(cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, stop: make(chan struct{}), mx: metrics.New()}
	defer func() {
		if err != nil {
			s.Shutdown(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	storage.SetFileHandleBudget(cfg.FileHandles)
	var (
		faultHandler http.Handler
		wrapMetaLog  func(string, meta.LogFile) meta.LogFile
	)
	if faultInjector != nil {
		s.faultFS, wrapMetaLog, faultHandler = faultInjector()
		log.Warn("fault injection build: storage runs on a fault-injecting file system (POST /debug/faults); not for production")
	}
	clusterID, err := loadClusterID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.ClusterOn() {
		if err := s.openCluster(); err != nil {
			return nil, err
		}
		clusterID = kafkaClusterID(cfg.ClusterID)
	}
	// The alarms come first: every log reports its writes to the disk
	// alarm (storageOptions).
	s.alarms = newAlarms(cfg, log)
	if err := s.openPartitionSync(); err != nil {
		return nil, err
	}
	metaOpts := meta.Options{Logger: log, WrapLog: wrapMetaLog}
	if s.cluster != nil {
		s.meta, err = s.openClusterMeta(metaDir(cfg.DataDir), metaOpts)
	} else {
		s.meta, err = meta.Open(metaDir(cfg.DataDir), metaOpts)
	}
	if err != nil {
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	var nodeID uint64 // 0: a single node
	if s.cluster != nil {
		nodeID = s.cluster.cfg.NodeID
	}
	var replication broker.ReplicationOptions
	if s.cluster != nil {
		replication.Host = s.cluster.host
		replication.Alive = s.cluster.tr.Alive
		replication.LagTime = cfg.ReplicaLagTimeMax
	}
	if s.broker, err = broker.New(broker.Options{
		NodeID:      nodeID,
		Replication: replication,
		Balance: broker.BalanceOptions{Enable: cfg.AutoLeaderRebalance, Interval: cfg.LeaderImbalanceCheck,
			Percentage: cfg.LeaderImbalancePct},
		DataDir:          cfg.DataDir,
		Storage:          s.storageOptions("partition"),
		AutoCreateTopics: cfg.AutoCreateTopics,
		Logger:           log,
		WrapOffsetsLog:   offsetsLogWrapper(wrapMetaLog),
		// Committed offsets readable as __consumer_offsets, in Kafka's formats.
		OffsetsTopicCodec: kafka.OffsetsTopicCodec{},
		Cleaner:           broker.CleanerOptions{MapBytes: cfg.CleanerMapBytes, BytesPerSecond: cfg.CleanerBytesPerSecond},
		Defaults: broker.Defaults{
			Partitions:      int32(cfg.DefaultPartitions),
			SegmentBytes:    cfg.SegmentBytes,
			SegmentAge:      cfg.SegmentAge,
			Retention:       cfg.Retention,
			RetentionBytes:  cfg.RetentionBytes,
			MaxMessageBytes: cfg.MaxMessageBytes,
		},
	}, s.meta); err != nil {
		return nil, fmt.Errorf("open broker: %w", err)
	}
	s.groups = groups.New(groups.Options{
		MinSessionTimeout:         cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:         cfg.GroupMaxSessionTimeout,
		InitialRebalanceDelay:     cfg.GroupInitialRebalanceDelay,
		ConsumerSessionTimeout:    cfg.ConsumerSessionTimeout,
		ConsumerHeartbeatInterval: cfg.ConsumerHeartbeatInterval,
	})
	// One limiter of failed logins for both protocols: guesses from
	// one address are slowed whichever port they try.
	loginLimiter := auth.DefaultFailureLimiter()
	// One count of connections for the vhost and user max-connections
	// limits, over both protocols.
	connCounts := new(broker.ConnCounts)
	anonymous, err := kafka.ParseAnonymousAccess(cfg.KafkaAnonymous)
	if err != nil {
		return nil, err
	}
	if s.kafka, err = kafka.NewServer(kafka.Options{
		AdvertisedAddr:  cfg.AdvertisedKafkaAddr(),
		ClusterID:       clusterID,
		Cluster:         s.kafkaCluster(),
		MaxRequestBytes: cfg.MaxRequestBytes,
		DataDir:         cfg.DataDir,
		Logger:          log,
		Hooks:           s.mx.Kafka,
		Flow:            s.alarms,

		FetchSessionCacheSlots: fetchSessionSlots(cfg.FetchSessionCacheSlots),
		ZeroCopy:               cfg.KafkaZeroCopy,
		Users:                  s.meta,
		Anonymous:              anonymous,
		SASLSessionLifetime:    cfg.KafkaSASLSessionLifetime,
		LoginLimiter:           loginLimiter,
		TransactionVersion:     int16(cfg.TransactionVersion),
		Authorizer:             broker.NewAuthorizer(s.meta, cfg.KafkaVhost),

		MaxConnections: cfg.KafkaMaxConnections,
		IdleTimeout:    cfg.KafkaIdleTimeout,
		FrameTimeout:   cfg.FrameTimeout,
		WriteTimeout:   cfg.KafkaWriteTimeout,
		Limits:         s.meta,
		ConnCounts:     connCounts,
		Vhost:          cfg.KafkaVhost,
	}, s.broker, s.groups); err != nil {
		return nil, err
	}
	if err := bootstrapDefinitions(s.meta); err != nil {
		return nil, fmt.Errorf("default vhost and user: %w", err)
	}
	if s.router, err = broker.NewRouter(broker.RouterOptions{
		DataDir: cfg.DataDir,
		Storage: s.storageOptions("queue"),
		Logger:  log,
		Topics:  s.broker,
		// Topics appear there as super streams (docs/bridge.md).
		KafkaVhost: cfg.KafkaVhost,
		// Off is negative for the queue, 0 in the setting.
		FlowBacklog:      offIfZero(cfg.QueueFlowBacklog),
		FlowBacklogBytes: offIfZero(cfg.QueueFlowBacklogBytes),
		Clustered:        s.cluster != nil,
		NodeID:           nodeID,
		Forward:          s.forwarder(),
	}, s.meta); err != nil {
		return nil, fmt.Errorf("open queues: %w", err)
	}
	s.recovery = broker.NewRecovery(broker.RecoveryOptions{
		Broker: s.broker, Router: s.router, Meta: s.meta, Logger: log,
		Writable: func() bool { return !diskAlarmRaised(s.alarms) },
	})
	conns := new(broker.Connections) // the front ends register, mgmt lists
	s.amqp = amqp.NewServer(amqp.Options{Logger: log, Hooks: s.mx.AMQP, Flow: s.alarms, Connections: conns, LoginLimiter: loginLimiter,
		Authorizer:     broker.NewAuthorizer(s.meta, cfg.KafkaVhost),
		MaxConnections: cfg.AMQPMaxConnections, MaxMessageBytes: cfg.AMQPMaxMessageBytes,
		HandshakeTimeout: cfg.AMQPHandshakeTimeout, WriteTimeout: cfg.AMQPWriteTimeout, FrameTimeout: cfg.FrameTimeout,
		Limits: s.meta, ConnCounts: connCounts,
	}, s.router, s.meta)
	s.mx.Watch(metrics.Sources{Router: s.router, Broker: s.broker, DataDir: cfg.DataDir, Failures: s.recovery.Failures})
	s.mx.SetAlarmSource(alarmSource{s.alarms})
	if s.kafkaLn, err = net.Listen("tcp", cfg.KafkaAddr); err != nil {
		return nil, fmt.Errorf("kafka listener: %w", err)
	}
	if s.amqpLn, err = net.Listen("tcp", cfg.AMQPAddr); err != nil {
		return nil, fmt.Errorf("amqp listener: %w", err)
	}
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if err := s.openTLS(); err != nil {
		return nil, err
	}
	s.mgmt = mgmt.New(mgmt.Options{
		Router: s.router, Meta: s.meta, Kafka: s.broker, Groups: s.groups, Connections: conns,
		Logger: log, Resources: s.alarms.Status, Failures: s.recovery.Failures,
		BrokerID: kafka.NodeID, Rack: cfg.Rack, ClusterNodes: s.clusterNodesFunc(), ClusterPartitions: s.clusterPartitionsFunc(), NodeName: s.clusterNodeName(),
		Membership: s.membershipOpt(),
		ConnectionCaps: func() []mgmt.ConnectionCap {
			return []mgmt.ConnectionCap{
				{Protocol: "amqp", Setting: "amqp_max_connections", Open: s.amqp.OpenConnections(), Max: cfg.AMQPMaxConnections},
				{Protocol: "kafka", Setting: "kafka_max_connections", Open: s.kafka.OpenConnections(), Max: cfg.KafkaMaxConnections},
			}
		},
		Listeners: append([]mgmt.Listener{
			{Protocol: "amqp", Addr: s.amqpLn.Addr()},
			{Protocol: "kafka", Addr: s.kafkaLn.Addr()},
			{Protocol: "http", Addr: s.httpLn.Addr()},
		}, s.tlsMgmtListeners()...),
	})
	s.mgmt.Handle("GET /metrics", s.mx.Handler())
	if faultHandler != nil {
		s.mgmt.Handle("POST /debug/faults", faultHandler)
	}
	if clusterFaults && s.cluster != nil {
		s.mgmt.Handle("POST /debug/cluster", s.clusterFaultHandler())
	}
	if cfg.DebugPprof {
		s.mgmt.Handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
		s.mgmt.Handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		s.mgmt.Handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
		s.mgmt.Handle("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	}
	// net/http retries failed accepts itself (5ms doubling to 1s); its
	// messages join the structured log.
	s.http = &http.Server{Handler: s.mgmt, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	s.goServe("kafka", func() error { return s.kafka.Serve(s.kafkaLn) })
	s.goServe("amqp", func() error { return s.amqp.Serve(s.amqpLn) })
	s.goServe("http", func() error {
		if err := s.http.Serve(accept.CountFailures(s.httpLn, "http")); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	s.serveTLS()
	if s.cluster != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.registerNode()
		}()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watchMembership()
		}()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.broker.RunPartitionMoves(s.stop) // leader balancing, reassignments
		}()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.broker.RunLeaderRecords(s.stop) // leaders in the metadata, for every node's Metadata
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.alarms.Run(s.stop)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.broker.RunRetention(cfg.RetentionCheckInterval, s.stop)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Completes transactions a crash left prepared, then aborts
		// those past transaction.timeout.ms, checking every second.
		s.broker.RunTransactions(time.Second, s.stop)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.broker.RunCleaner(cfg.CleanerInterval, s.stop)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.recovery.Run(s.stop)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mgmt.Run(s.stop) // samples for message rates
	}()
	log.Info("sluice started", "version", version.Get().String(),
		"data_dir", cfg.DataDir, "kafka", s.kafkaLn.Addr().String(),
		"kafka_advertised", cfg.AdvertisedKafkaAddr(), "amqp", s.amqpLn.Addr().String(), "http", s.httpLn.Addr().String(),
		"fsync", cfg.Fsync, "cluster_id", clusterID)
	return s, nil
}

func (s *Server) goServe(name string, serve func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil {
			s.log.Error("listener failed", "listener", name, "err", err)
		}
	}()
}

// newAlarms builds the resource alarms from the configuration and takes
// the first samples, so that a server starting low on memory or disk
// blocks publishers from the first message.
func newAlarms(cfg config.Config, log *slog.Logger) *alarm.Monitor {
	o := alarm.Options{Interval: cfg.ResourceCheckInterval, Logger: log}
	if limit, ok := cfg.MemoryLimitBytes(alarm.TotalMemory()); ok {
		o.MemoryLimit, o.Memory = limit, alarm.ProcessMemory
	} else {
		log.Warn("total memory unknown: memory alarm off; set an absolute memory_high_watermark", "memory_high_watermark", cfg.MemoryHighWatermark)
	}
	o.DiskFreeLimit, _ = config.ParseSize(cfg.DiskFreeLimit) // checked by Validate
	if o.DiskFreeLimit > 0 {
		if o.DiskFree = alarm.DiskFree(cfg.DataDir); o.DiskFree == nil {
			log.Warn("free disk space cannot be read on this platform: disk alarm off")
		}
	}
	log.Info("resource alarms", "memory_limit_bytes", o.MemoryLimit, "disk_free_limit_bytes", o.DiskFreeLimit,
		"interval", o.Interval.String())
	m := alarm.New(o)
	m.Check()
	return m
}

// writeObserver passes a log's timings to the metrics and its written
// bytes to the disk alarm, which checks its limit against what was
// written since it last sampled free space (alarm.Monitor.Wrote), so the
// limit holds at any write rate.
type writeObserver struct {
	*metrics.StorageObserver
	alarms *alarm.Monitor
}

func (o writeObserver) ObserveAppend(d time.Duration, batches, bytes int) {
	o.StorageObserver.ObserveAppend(d, batches, bytes)
	o.alarms.Wrote(bytes)
}

// diskAlarmRaised reports whether the disk alarm is in effect: failed
// logs wait for it to clear before they are reopened.
func diskAlarmRaised(m *alarm.Monitor) bool {
	for _, a := range m.Active() {
		if a.Resource == alarm.Disk {
			return true
		}
	}
	return false
}

// Alarms is the resource-alarm state, for management and metrics.
func (s *Server) Alarms() *alarm.Monitor { return s.alarms }

// KafkaAddr is the bound Kafka listener address.
func (s *Server) KafkaAddr() net.Addr { return s.kafkaLn.Addr() }

// AMQPAddr is the bound AMQP listener address.
func (s *Server) AMQPAddr() net.Addr { return s.amqpLn.Addr() }

// HTTPAddr is the bound HTTP listener address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// Shutdown stops serving, then flushes and closes every log.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.stop:
		return nil
	default:
		close(s.stop)
	}
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.kafka != nil {
		errs = append(errs, s.kafka.Close())
	} else if s.kafkaLn != nil {
		s.kafkaLn.Close()
	}
	if s.amqp != nil {
		s.amqp.Close()
	} else if s.amqpLn != nil {
		s.amqpLn.Close()
	}
	if s.groups != nil {
		s.groups.Close()
	}
	s.closeTLSUnserved()
	s.wg.Wait()
	if s.router != nil {
		errs = append(errs, s.router.Close())
	}
	if s.broker != nil {
		errs = append(errs, s.broker.Close())
	}
	if s.partitionSync != nil {
		errs = append(errs, s.partitionSync.Close())
	}
	if s.meta != nil {
		errs = append(errs, s.meta.Close())
	}
	errs = append(errs, s.closeCluster())
	err := errors.Join(errs...)
	s.log.Info("sluice stopped", "err", err)
	return err
}

// storageOptions are the options for logs of one kind ("partition",
// "queue"), observed for metrics under that name.
func (s *Server) storageOptions(kind string) storage.Options {
	o := storageOptions(s.cfg)
	o.Observer = writeObserver{s.mx.StorageObserver(kind), s.alarms}
	o.FS = s.faultFS // nil: the real file system
	if kind == "partition" {
		o.SyncGroup = s.partitionSync
	}
	return o
}

// openPartitionSync makes the partitions' shared fsync round when the
// configuration asks for one: one syncfs of the data directory's file
// system, or, on a fault-injecting file system (faultinject builds) or
// where there is no syncfs, each file's fsync in turn.
func (s *Server) openPartitionSync() error {
	if !s.cfg.FsyncShared || s.cfg.Fsync == "never" {
		return nil
	}
	if s.faultFS == nil {
		g, err := storage.NewSyncGroupFS(s.cfg.DataDir)
		if err == nil {
			s.partitionSync = g
			s.log.Info("partitions share fsync rounds", "round", "syncfs", "dir", s.cfg.DataDir)
			return nil
		}
		if !errors.Is(err, storage.ErrSyncFSUnsupported) {
			return err
		}
	}
	s.partitionSync = storage.NewSyncGroup()
	s.log.Info("partitions share fsync rounds", "round", "fsync each file")
	return nil
}

func storageOptions(cfg config.Config) storage.Options {
	o := storage.Options{SyncInterval: cfg.FsyncInterval}
	switch cfg.Fsync {
	case "interval":
		o.Sync = storage.SyncInterval
	case "never":
		o.Sync = storage.SyncNever
	default:
		o.Sync = storage.SyncAlways
	}
	return o
}

// loadClusterID reads the cluster id, making one on first start.
func loadClusterID(dir string) (string, error) {
	path := filepath.Join(dir, "cluster.id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, os.Rename(tmp, path)
}

// bootstrapDefinitions creates, on a first start, the default vhost "/"
// and the default user guest/guest with full permissions on it, as
// RabbitMQ does. guest may only log in from loopback.
func bootstrapDefinitions(m *meta.Store) error {
	if len(m.Vhosts()) == 0 {
		if err := m.PutVhost(meta.Vhost{Name: auth.DefaultVHost, Description: "Default virtual host"}); err != nil {
			return err
		}
	}
	if len(m.Users()) == 0 {
		guest, err := broker.UserWithPassword(auth.DefaultUser, auth.DefaultPassword, []string{"administrator"})
		if err != nil {
			return err
		}
		if err := m.PutUser(guest); err != nil {
			return err
		}
		if err := m.SetPermission(meta.Permission{User: auth.DefaultUser, Vhost: auth.DefaultVHost, Configure: auth.AllowAll, Write: auth.AllowAll, Read: auth.AllowAll}); err != nil {
			return err
		}
	}
	return nil
}

// alarmSource shows the resource alarms to the metrics: every resource
// watched, raised or not.
type alarmSource struct{ m *alarm.Monitor }

func (a alarmSource) Alarms() []metrics.Alarm {
	st := a.m.Status()
	raised := map[alarm.Resource]bool{}
	for _, al := range st.Alarms {
		raised[al.Resource] = true
	}
	var out []metrics.Alarm
	if st.MemoryLimit >= 0 {
		out = append(out, metrics.Alarm{Resource: string(alarm.Memory), Raised: raised[alarm.Memory]})
	}
	if st.DiskFreeLimit >= 0 {
		out = append(out, metrics.Alarm{Resource: string(alarm.Disk), Raised: raised[alarm.Disk]})
	}
	return out
}

// fetchSessionSlots maps the config's fetch_session_cache_slots (0: no
// sessions, as in Kafka) to the Kafka server's option (0: the default).
func fetchSessionSlots(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// offIfZero maps a setting where 0 means off to an option where 0 means
// the default and a negative value off.
func offIfZero(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}
