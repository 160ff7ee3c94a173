package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sluice-mq/sluice/internal/version"
)

// latencyBuckets (seconds) span a page-cache append (tens of µs) to a
// Fetch long poll (seconds).
var latencyBuckets = []float64{
	.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
}

// Metrics is one registry with Sluice's metrics.
type Metrics struct {
	reg *prometheus.Registry

	// Kafka and AMQP are the front ends' hooks.
	Kafka *KafkaHooks
	AMQP  *AMQPHooks

	storageAppend *prometheus.HistogramVec
	storageFsync  *prometheus.HistogramVec
	storageBytes  *prometheus.CounterVec

	alarms atomic.Pointer[alarmHolder]
}

// New makes a registry holding the hook-fed metrics and the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_connections", Help: "Open client connections, by protocol.",
	}, []string{"protocol"})
	opened := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_connections_opened_total", Help: "Client connections accepted, by protocol.",
	}, []string{"protocol"})
	recv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_received_bytes_total", Help: "Bytes read from client sockets, by protocol.",
	}, []string{"protocol"})
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_sent_bytes_total", Help: "Bytes written to client sockets, by protocol.",
	}, []string{"protocol"})
	sendfile := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_kafka_sendfile_bytes_total", Help: "Record bytes of Kafka Fetch answers sent from segment files with sendfile (zero copy); part of sluice_sent_bytes_total.",
	})
	channels := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sluice_amqp_channels", Help: "Open AMQP channels.",
	})
	kafkaReq := histogramVec(prometheus.HistogramOpts{
		Name:    "sluice_kafka_request_duration_seconds",
		Help:    "Time from a Kafka request arriving to its response being written, by API (waits included: Fetch long polls, acks=all fsyncs).",
		Buckets: latencyBuckets,
	}, []string{"api"})
	amqpMethod := histogramVec(prometheus.HistogramOpts{
		Name:    "sluice_amqp_method_duration_seconds",
		Help:    "Time the server took to handle an AMQP synchronous method, by method; basic.publish: method frame to message routed and appended.",
		Buckets: latencyBuckets,
	}, []string{"method"})
	amqpConfirm := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_amqp_confirm_duration_seconds",
		Help:    "Time from basic.publish on a confirm-mode channel to the message being durable in every queue (its basic.ack due).",
		Buckets: latencyBuckets,
	})
	flowWaits := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_amqp_flow_waits_total", Help: "Times a publishing AMQP connection stopped reading to wait for a queue in credit flow (its consumers behind).",
	})
	flowSeconds := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_amqp_flow_wait_seconds_total", Help: "Time publishing AMQP connections spent waiting for queues in credit flow.",
	})
	m.storageAppend = histogramVec(prometheus.HistogramOpts{
		Name:    "sluice_storage_append_duration_seconds",
		Help:    "Duration of one group commit (write, plus fsync when the policy asks), by kind of log.",
		Buckets: latencyBuckets,
	}, []string{"log"})
	m.storageFsync = histogramVec(prometheus.HistogramOpts{
		Name:    "sluice_storage_fsync_duration_seconds",
		Help:    "Duration of one fsync of a segment's data file, by kind of log.",
		Buckets: latencyBuckets,
	}, []string{"log"})
	m.storageBytes = counterVec(prometheus.CounterOpts{
		Name: "sluice_storage_appended_bytes_total", Help: "Bytes appended to logs, by kind of log.",
	}, []string{"log"})
	refused := counterVec(prometheus.CounterOpts{
		Name: "sluice_connections_refused_total", Help: "Client connections refused by a limit, by listener (amqp, amqps, kafka, kafka_tls) and reason (max_connections: for Kafka, times the listener stopped accepting at its cap; vhost_max_connections, user_max_connections, user_max_channels).",
	}, []string{"listener", "reason"})
	dropped := counterVec(prometheus.CounterOpts{
		Name: "sluice_connections_dropped_total", Help: "Open client connections closed by a limit or timeout, by listener (amqp, amqps, kafka, kafka_tls) and reason (handshake_timeout, idle_timeout, frame_timeout, write_timeout, frame_too_large).",
	}, []string{"listener", "reason"})
	info := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sluice_build_info", Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "goversion": info.Go},
	})
	build.Set(1)
	authFailures := counterVec(prometheus.CounterOpts{
		Name: "sluice_auth_failures_total", Help: "Refused client logins (wrong password, unknown user, malformed or rate-limited attempts), by protocol and mechanism.",
	}, []string{"protocol", "mechanism"})
	m.reg.MustRegister(authFailures)
	m.reg.MustRegister(conns, opened, recv, sent, sendfile, channels, kafkaReq, amqpMethod, amqpConfirm,
		flowWaits, flowSeconds, m.storageAppend, m.storageFsync, m.storageBytes, build, refused, dropped)

	m.Kafka = &KafkaHooks{
		proto:        newProtoMetrics("kafka", conns, opened, recv, sent),
		latency:      newObserverCache(kafkaReq),
		sendfile:     sendfile,
		auth:         authFailureCounter{authFailures, "kafka"},
		limitMetrics: newLimitMetrics(refused, dropped, "kafka", "kafka_tls"),
	}
	m.AMQP = &AMQPHooks{
		proto:     newProtoMetrics("amqp", conns, opened, recv, sent),
		channels:  channels,
		latency:   newObserverCache(amqpMethod),
		confirm:   amqpConfirm,
		flowWaits: flowWaits, flowSeconds: flowSeconds,
		limitMetrics: newLimitMetrics(refused, dropped, "amqp", "amqps"),
		auth:         authFailureCounter{authFailures, "amqp"},
	}
	m.reg.MustRegister(alarmCollector{m})
	m.reg.MustRegister(fileMetrics()...)
	m.reg.MustRegister(tlsMetrics()...)
	return m
}

// Registry is the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or the
// protobuf format when asked), with every declared family (families.go)
// listed even before its first series.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(m.serve)
}

// protoMetrics are one protocol's children of the per-protocol families,
// resolved once so hooks do no label lookups.
type protoMetrics struct {
	conns      prometheus.Gauge
	opened     prometheus.Counter
	recv, sent prometheus.Counter
}

func newProtoMetrics(proto string, conns *prometheus.GaugeVec, opened, recv, sent *prometheus.CounterVec) protoMetrics {
	return protoMetrics{
		conns: conns.WithLabelValues(proto), opened: opened.WithLabelValues(proto),
		recv: recv.WithLabelValues(proto), sent: sent.WithLabelValues(proto),
	}
}

func (p *protoMetrics) ConnOpened()        { p.conns.Inc(); p.opened.Inc() }
func (p *protoMetrics) ConnClosed()        { p.conns.Dec() }
func (p *protoMetrics) BytesRead(n int)    { p.recv.Add(float64(n)) }
func (p *protoMetrics) BytesWritten(n int) { p.sent.Add(float64(n)) }

// observerCache resolves a histogram child per label value once; later
// lookups are a sync.Map load.
type observerCache struct {
	vec *prometheus.HistogramVec
	m   sync.Map // string -> prometheus.Observer
}

func newObserverCache(vec *prometheus.HistogramVec) *observerCache {
	return &observerCache{vec: vec}
}

func (c *observerCache) observe(label string, d time.Duration) {
	o, ok := c.m.Load(label)
	if !ok {
		o, _ = c.m.LoadOrStore(label, c.vec.WithLabelValues(label))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// limitMetrics implement the front ends' LimitHooks and TLSLimitHooks
// for one protocol's plain and TLS listeners.
type limitMetrics struct {
	refused, dropped       *prometheus.CounterVec
	tlsRefused, tlsDropped *prometheus.CounterVec
}

func newLimitMetrics(refused, dropped *prometheus.CounterVec, listener, tlsListener string) limitMetrics {
	l := prometheus.Labels{"listener": listener}
	tl := prometheus.Labels{"listener": tlsListener}
	return limitMetrics{
		refused: refused.MustCurryWith(l), dropped: dropped.MustCurryWith(l),
		tlsRefused: refused.MustCurryWith(tl), tlsDropped: dropped.MustCurryWith(tl),
	}
}

func (l limitMetrics) ConnRefused(reason string)    { l.refused.WithLabelValues(reason).Inc() }
func (l limitMetrics) ConnDropped(reason string)    { l.dropped.WithLabelValues(reason).Inc() }
func (l limitMetrics) ConnRefusedTLS(reason string) { l.tlsRefused.WithLabelValues(reason).Inc() }
func (l limitMetrics) ConnDroppedTLS(reason string) { l.tlsDropped.WithLabelValues(reason).Inc() }

// KafkaHooks implements kafka.Hooks, kafka.SendfileHooks and
// kafka.LimitHooks.
type KafkaHooks struct {
	limitMetrics
	proto    protoMetrics
	latency  *observerCache
	sendfile prometheus.Counter
	auth     authFailureCounter
}

// authFailureCounter counts one protocol's refused logins.
type authFailureCounter struct {
	vec   *prometheus.CounterVec
	proto string
}

// AuthFailed counts a refused login; mechanism is what the client asked
// for, so its values are bounded to what the front end accepts, plus ""
// for attempts refused before a mechanism was chosen.
func (a authFailureCounter) AuthFailed(mechanism string) {
	switch mechanism {
	case "PLAIN", "AMQPLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "EXTERNAL":
	default:
		mechanism = "other"
	}
	a.vec.WithLabelValues(a.proto, mechanism).Inc()
}

// AuthFailed implements kafka.AuthHooks.
func (h *KafkaHooks) AuthFailed(mechanism string) { h.auth.AuthFailed(mechanism) }

// AuthFailed implements amqp.AuthHooks.
func (h *AMQPHooks) AuthFailed(mechanism string) { h.auth.AuthFailed(mechanism) }

func (h *KafkaHooks) ConnOpened()             { h.proto.ConnOpened() }
func (h *KafkaHooks) ConnClosed()             { h.proto.ConnClosed() }
func (h *KafkaHooks) BytesRead(n int)         { h.proto.BytesRead(n) }
func (h *KafkaHooks) BytesWritten(n int)      { h.proto.BytesWritten(n) }
func (h *KafkaHooks) BytesSentFromFile(n int) { h.sendfile.Add(float64(n)) }
func (h *KafkaHooks) RequestDone(api string, d time.Duration) {
	h.latency.observe(api, d)
}

// AMQPHooks implements amqp.Hooks and amqp.LimitHooks.
type AMQPHooks struct {
	limitMetrics
	proto    protoMetrics
	channels prometheus.Gauge
	latency  *observerCache
	confirm  prometheus.Observer

	flowWaits, flowSeconds prometheus.Counter
	auth                   authFailureCounter
}

func (h *AMQPHooks) ConnOpened()        { h.proto.ConnOpened() }
func (h *AMQPHooks) ConnClosed()        { h.proto.ConnClosed() }
func (h *AMQPHooks) ChannelOpened()     { h.channels.Inc() }
func (h *AMQPHooks) ChannelClosed()     { h.channels.Dec() }
func (h *AMQPHooks) BytesRead(n int)    { h.proto.BytesRead(n) }
func (h *AMQPHooks) BytesWritten(n int) { h.proto.BytesWritten(n) }
func (h *AMQPHooks) MethodDone(method string, d time.Duration) {
	h.latency.observe(method, d)
}
func (h *AMQPHooks) Confirmed(d time.Duration) { h.confirm.Observe(d.Seconds()) }
func (h *AMQPHooks) FlowWaited(d time.Duration) {
	h.flowWaits.Inc()
	h.flowSeconds.Add(d.Seconds())
}

// StorageObserver returns the storage.Observer for logs of one kind
// ("partition" for Kafka partitions, "queue" for AMQP queues).
func (m *Metrics) StorageObserver(kind string) *StorageObserver {
	return &StorageObserver{
		append: m.storageAppend.WithLabelValues(kind),
		fsync:  m.storageFsync.WithLabelValues(kind),
		bytes:  m.storageBytes.WithLabelValues(kind),
	}
}

// StorageObserver implements storage.Observer.
type StorageObserver struct {
	append, fsync prometheus.Observer
	bytes         prometheus.Counter
}

func (o *StorageObserver) ObserveAppend(d time.Duration, batches, bytes int) {
	o.append.Observe(d.Seconds())
	o.bytes.Add(float64(bytes))
}

func (o *StorageObserver) ObserveFsync(d time.Duration) { o.fsync.Observe(d.Seconds()) }
