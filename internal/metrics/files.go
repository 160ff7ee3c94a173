package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-mq/sluice/internal/accept"
	"github.com/sluice-mq/sluice/internal/storage"
)

// fileMetrics are the process's file handle budget (storage) and its
// listeners' failed accepts (package accept), read when scraped.
func fileMetrics() []prometheus.Collector {
	stat := func(pick func(open, budget int, evictions, reopens int64) float64) func() float64 {
		return func() float64 { return pick(storage.FileHandleStats()) }
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_file_handles_open", Help: "File descriptors held by logs and queues' ack records (bounded by file_handles, plus files in use at the moment).",
		}, stat(func(open, _ int, _, _ int64) float64 { return float64(open) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_file_handles_budget", Help: "The file handle budget (file_handles, or half the open-file limit).",
		}, stat(func(_, budget int, _, _ int64) float64 { return float64(budget) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sluice_file_handle_evictions_total", Help: "Idle files closed to stay within the file handle budget.",
		}, stat(func(_, _ int, evictions, _ int64) float64 { return float64(evictions) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sluice_file_handle_reopens_total", Help: "Files reopened on use after the budget closed them.",
		}, stat(func(_, _ int, _, reopens int64) float64 { return float64(reopens) })),
	}
	for _, l := range []string{"amqp", "kafka", "http"} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "sluice_accept_failures_total",
			Help:        "Failed accepts retried with backoff (out of file descriptors, say), by listener.",
			ConstLabels: prometheus.Labels{"listener": l},
		}, func() float64 { return float64(accept.Failures(l)) }))
	}
	return cs
}
