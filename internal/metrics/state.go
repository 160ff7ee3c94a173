package metrics

import (
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// Sources are what the scrape-time collectors read. Any may be nil.
type Sources struct {
	Router  *broker.Router // AMQP queues
	Broker  *broker.Broker // topics, partitions and committed offsets
	DataDir string         // disk use and free space
	// Failures lists the logs that refuse writes (broker.Recovery); nil:
	// no sluice_storage_failed_logs series.
	Failures func() []broker.LogFailure
}

// Watch registers collectors that read src at every scrape. Call it once.
func (m *Metrics) Watch(src Sources) {
	m.reg.MustRegister(&stateCollector{src: src})
}

// desc makes a gauge family's description and declares the family, so
// that /metrics lists it before its first series (Handler).
func desc(name, help string, labels ...string) *prometheus.Desc {
	declare(name, help, dto.MetricType_GAUGE)
	return prometheus.NewDesc(name, help, labels, nil)
}

// counterDesc is desc for a counter family.
func counterDesc(name, help string, labels ...string) *prometheus.Desc {
	declare(name, help, dto.MetricType_COUNTER)
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	qLabels = []string{"vhost", "queue"}

	queueReady     = desc("sluice_queue_messages_ready", "Messages ready for delivery.", qLabels...)
	queueUnacked   = desc("sluice_queue_messages_unacked", "Messages delivered and not yet acknowledged.", qLabels...)
	queueConsumers = desc("sluice_queue_consumers", "Consumers attached to the queue.", qLabels...)
	queueTotals    = []struct {
		d   *prometheus.Desc
		get func(queue.Totals) int64
	}{
		{counterDesc("sluice_queue_published_total", "Messages accepted into the queue.", qLabels...), func(t queue.Totals) int64 { return t.Published }},
		{counterDesc("sluice_queue_delivered_total", "Deliveries to consumers and basic.get, redeliveries included.", qLabels...), func(t queue.Totals) int64 { return t.Delivered }},
		{counterDesc("sluice_queue_acked_total", "Deliveries acknowledged (auto-ack deliveries are not counted).", qLabels...), func(t queue.Totals) int64 { return t.Acked }},
		{counterDesc("sluice_queue_redelivered_total", "Deliveries of requeued messages.", qLabels...), func(t queue.Totals) int64 { return t.Redelivered }},
		{counterDesc("sluice_queue_dead_lettered_total", "Messages dead-lettered to the queue's dead-letter exchange.", qLabels...), func(t queue.Totals) int64 { return t.DeadLettered }},
		{counterDesc("sluice_queue_dropped_total", "Messages expired, over a length limit or rejected with no dead-letter exchange, and discarded.", qLabels...), func(t queue.Totals) int64 { return t.Dropped }},
	}

	feedLag = desc("sluice_topic_feed_lag", "Records of the partition not yet fed to a queue bound to the topic (queue set) or to the exchange the topic forwards to (exchange set): last stable offset minus the feed's next offset.",
		"vhost", "queue", "exchange", "topic", "partition")

	pLabels        = []string{"topic", "partition"}
	partStart      = desc("sluice_partition_log_start_offset", "First offset still in the partition's log.", pLabels...)
	partEnd        = desc("sluice_partition_log_end_offset", "Offset the next record will get (high watermark).", pLabels...)
	partBytes      = desc("sluice_partition_size_bytes", "Bytes in the partition's segments.", pLabels...)
	partSegments   = desc("sluice_partition_segments", "Segments in the partition's log.", pLabels...)
	gLabels        = []string{"group", "topic", "partition"}
	groupCommitted = desc("sluice_group_committed_offset", "Offset the consumer group committed for the partition.", gLabels...)
	groupLag       = desc("sluice_group_lag", "Records between the group's committed offset and the partition's end offset (never negative).", gLabels...)

	cleanerTotals = []struct {
		d   *prometheus.Desc
		get func(broker.CleanerStats) int64
	}{
		{counterDesc("sluice_log_cleaner_rounds_total", "Rounds of the log cleaner over every compacted partition completed."), func(s broker.CleanerStats) int64 { return s.Rounds }},
		{counterDesc("sluice_log_cleaner_passes_total", "Partition passes of the log cleaner that rewrote segments."), func(s broker.CleanerStats) int64 { return s.Passes }},
		{counterDesc("sluice_log_cleaner_segments_cleaned_total", "Segments the log cleaner rewrote."), func(s broker.CleanerStats) int64 { return s.SegmentsCleaned }},
		{counterDesc("sluice_log_cleaner_bytes_read_total", "Bytes the log cleaner read (building its offset map and rewriting)."), func(s broker.CleanerStats) int64 { return s.BytesRead }},
		{counterDesc("sluice_log_cleaner_bytes_written_total", "Bytes of cleaned segments the log cleaner wrote."), func(s broker.CleanerStats) int64 { return s.BytesWritten }},
		{counterDesc("sluice_log_cleaner_bytes_freed_total", "Bytes the log cleaner's rewrites freed."), func(s broker.CleanerStats) int64 { return s.BytesFreed }},
		{counterDesc("sluice_log_cleaner_records_removed_total", "Records the log cleaner removed (superseded, expired tombstones, aborted data, markers)."), func(s broker.CleanerStats) int64 { return s.RecordsRemoved }},
	}
	cleanerLastRound   = desc("sluice_log_cleaner_last_round_duration_seconds", "Duration of the log cleaner's last completed round.")
	cleanerMaxDirty    = desc("sluice_log_cleaner_max_dirty_ratio", "Largest share of dirty bytes in the cleanable part of a compacted partition, as the last round found it (Kafka's max-dirty-percent, as a ratio).")
	cleanerDirty       = desc("sluice_log_cleaner_dirty_ratio", "Share of dirty bytes in the cleanable part of the compacted partition, as the log cleaner's last round found it before cleaning.", pLabels...)
	cleanerUncleanable = desc("sluice_log_cleaner_uncleanable_partitions", "Compacted partitions whose pass failed in the last round.")

	diskUsed     = desc("sluice_storage_used_bytes", "Bytes of files in the data directory, by area (topics, queues, delayed, meta, other).", "area")
	diskSegments = desc("sluice_storage_segments", "Segment data files in the data directory, by area.", "area")
	diskFree     = desc("sluice_storage_disk_free_bytes", "Bytes available to Sluice on the file system holding the data directory.")
	diskTotal    = desc("sluice_storage_disk_total_bytes", "Size of the file system holding the data directory.")
	failedLogs   = desc("sluice_storage_failed_logs", "Logs refusing writes after a failed write or fsync, by kind (partition, queue, metadata), until they recover.", "kind")
)

type stateCollector struct{ src Sources }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueReady, queueUnacked, queueConsumers, feedLag,
		partStart, partEnd, partBytes, partSegments, groupCommitted, groupLag,
		diskUsed, diskSegments, diskFree, diskTotal, failedLogs,
		cleanerLastRound, cleanerMaxDirty, cleanerDirty, cleanerUncleanable} {
		ch <- d
	}
	for _, t := range queueTotals {
		ch <- t.d
	}
	for _, t := range cleanerTotals {
		ch <- t.d
	}
	describeShares(ch)
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Router != nil {
		collectQueues(ch, c.src.Router)
	}
	if c.src.Broker != nil {
		collectPartitions(ch, c.src.Broker)
		collectCleaner(ch, c.src.Broker.CleanerStats())
		collectShares(ch, c.src.Broker)
	}
	if c.src.DataDir != "" {
		collectDisk(ch, c.src.DataDir)
	}
	if c.src.Failures != nil {
		n := map[string]int{"partition": 0, "queue": 0, "metadata": 0}
		for _, f := range c.src.Failures() {
			n[f.Kind]++
		}
		for kind, v := range n {
			gauge(ch, failedLogs, float64(v), kind)
		}
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// totaler is implemented by queue.Queue and queue.Priority.
type totaler interface{ Totals() queue.Totals }

func collectQueues(ch chan<- prometheus.Metric, r *broker.Router) {
	for _, q := range r.QueueRefs() {
		ready, unacked, consumers := q.Handle.Counts()
		gauge(ch, queueReady, float64(ready), q.Vhost, q.Name)
		gauge(ch, queueUnacked, float64(unacked), q.Vhost, q.Name)
		gauge(ch, queueConsumers, float64(consumers), q.Vhost, q.Name)
		t, ok := q.Handle.(totaler)
		if !ok {
			continue
		}
		tot := t.Totals()
		for _, td := range queueTotals {
			ch <- prometheus.MustNewConstMetric(td.d, prometheus.CounterValue, float64(td.get(tot)), q.Vhost, q.Name)
		}
	}
	for _, f := range r.Feeds() {
		gauge(ch, feedLag, float64(max(f.End-f.Next, 0)), f.Vhost, f.Queue, f.Exchange, f.Topic, strconv.Itoa(int(f.Partition)))
	}
}

func collectPartitions(ch chan<- prometheus.Metric, b *broker.Broker) {
	type tp struct {
		topic string
		p     int32
	}
	ends := map[tp]int64{}
	for _, t := range b.Topics() {
		for _, p := range t.Partitions {
			idx := strconv.Itoa(int(p.Index))
			start, end, _ := p.Offsets()
			ends[tp{t.Name, p.Index}] = end
			gauge(ch, partStart, float64(start), t.Name, idx)
			gauge(ch, partEnd, float64(end), t.Name, idx)
			gauge(ch, partBytes, float64(p.Size()), t.Name, idx)
			gauge(ch, partSegments, float64(p.Segments()), t.Name, idx)
			if r, ok := b.CleanerDirtyRatio(t.Name, p.Index); ok {
				gauge(ch, cleanerDirty, r, t.Name, idx)
			}
		}
	}
	for _, g := range b.OffsetGroups() {
		for _, o := range b.GroupOffsets(g) {
			idx := strconv.Itoa(int(o.Partition))
			gauge(ch, groupCommitted, float64(o.Offset), g, o.Topic, idx)
			if end, ok := ends[tp{o.Topic, o.Partition}]; ok {
				gauge(ch, groupLag, float64(max(0, end-o.Offset)), g, o.Topic, idx)
			}
		}
	}
}

func collectCleaner(ch chan<- prometheus.Metric, st broker.CleanerStats) {
	for _, t := range cleanerTotals {
		ch <- prometheus.MustNewConstMetric(t.d, prometheus.CounterValue, float64(t.get(st)))
	}
	gauge(ch, cleanerLastRound, st.LastRoundDuration.Seconds())
	gauge(ch, cleanerMaxDirty, st.MaxDirtyRatio)
	gauge(ch, cleanerUncleanable, float64(st.Uncleanable))
}

// collectDisk walks the data directory. It costs one stat per file per
// scrape, which stays small next to a scrape interval even with many
// thousands of segments.
func collectDisk(ch chan<- prometheus.Metric, dir string) {
	used := map[string]int64{"topics": 0, "queues": 0, "delayed": 0, "meta": 0, "other": 0}
	segs := map[string]int64{"topics": 0, "queues": 0, "delayed": 0}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file removed mid-walk is simply not counted
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		area, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		if _, ok := used[area]; !ok || area == rel {
			area = "other"
		}
		used[area] += info.Size()
		if _, ok := segs[area]; ok && isSegmentFile(d.Name()) {
			segs[area]++
		}
		return nil
	})
	for area, n := range used {
		gauge(ch, diskUsed, float64(n), area)
	}
	for area, n := range segs {
		gauge(ch, diskSegments, float64(n), area)
	}
	if total, free, ok := diskSpace(dir); ok {
		gauge(ch, diskFree, float64(free))
		gauge(ch, diskTotal, float64(total))
	}
}

// isSegmentFile matches a segment's data file: 20 digits and ".log".
func isSegmentFile(name string) bool {
	digits, ok := strings.CutSuffix(name, ".log")
	if !ok || len(digits) != 20 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
