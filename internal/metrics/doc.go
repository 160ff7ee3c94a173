// Package metrics turns Sluice's state and measurements into Prometheus
// metrics.
//
// Two kinds of metric live here. Counters and histograms of things that
// happen (connections, socket bytes, request latency, group commits and
// fsyncs) are fed by small hooks the front ends and storage call:
// KafkaHooks, AMQPHooks and StorageObserver implement the kafka.Hooks,
// amqp.Hooks and storage.Observer interfaces, so those packages never
// import a metrics library. Gauges of state (queue depth, offsets, lag,
// disk use) are computed at scrape time by collectors that read the broker
// (Watch), so nothing per message is kept for them.
//
// Use: New before opening storage (its StorageObserver goes into the
// storage options), Watch once the broker and router are open, and serve
// Handler at /metrics. docs/monitoring.md lists every metric.
package metrics
