package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// tlsMetrics count the TLS listeners' failed handshakes (package
// tlsconf): plain-text clients, untrusted, expired or missing client
// certificates, clients that gave up.
func tlsMetrics() []prometheus.Collector {
	var cs []prometheus.Collector
	for _, l := range []string{tlsconf.ListenerAMQPS, tlsconf.ListenerKafka, tlsconf.ListenerHTTPS} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "sluice_tls_handshake_failures_total",
			Help:        "TLS handshakes that failed (plain-text client, untrusted, expired or missing client certificate, timeout), by listener.",
			ConstLabels: prometheus.Labels{"listener": l},
		}, func() float64 { return float64(tlsconf.HandshakeFailures(l)) }))
	}
	return cs
}
