package metrics

// Share groups (KIP-932): members, records in flight, lag, and what
// happened to the records handed out.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-mq/sluice/internal/broker"
)

var (
	shareMembers  = desc("sluice_share_group_members", "Members of the share group.", "group")
	shareInFlight = desc("sluice_share_records_in_flight", "Records of the share-partition acquired by members and not yet acknowledged.", gLabels...)
	shareStart    = desc("sluice_share_start_offset", "The share-partition's start offset: every record below it is settled.", gLabels...)
	shareLag      = desc("sluice_share_lag", "Records from the share-partition's start offset to the last stable offset still to settle.", gLabels...)
	shareTotals   = []struct {
		d   *prometheus.Desc
		get func(broker.ShareStats) int64
	}{
		{counterDesc("sluice_share_records_acquired_total", "Records handed out to share group members, redeliveries included."), func(s broker.ShareStats) int64 { return s.Acquired }},
		{counterDesc("sluice_share_records_redelivered_total", "Records handed out again after a release, a lock timeout or a member leaving."), func(s broker.ShareStats) int64 { return s.Redelivered }},
		{counterDesc("sluice_share_acks_accepted_total", "Records accepted (and gaps acknowledged) by share group members."), func(s broker.ShareStats) int64 { return s.Accepted }},
		{counterDesc("sluice_share_acks_released_total", "Records released by share group members for another delivery."), func(s broker.ShareStats) int64 { return s.Released }},
		{counterDesc("sluice_share_acks_rejected_total", "Records rejected by share group members: never delivered again."), func(s broker.ShareStats) int64 { return s.Rejected }},
		{counterDesc("sluice_share_records_archived_total", "Records archived at the delivery count limit (released or timed out once too often)."), func(s broker.ShareStats) int64 { return s.Archived }},
	}
)

func describeShares(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{shareMembers, shareInFlight, shareStart, shareLag} {
		ch <- d
	}
	for _, t := range shareTotals {
		ch <- t.d
	}
}

func collectShares(ch chan<- prometheus.Metric, b *broker.Broker) {
	s := b.Shares()
	if s == nil {
		return
	}
	st := s.Stats()
	for _, t := range shareTotals {
		ch <- prometheus.MustNewConstMetric(t.d, prometheus.CounterValue, float64(t.get(st)))
	}
	for _, g := range s.List() {
		gauge(ch, shareMembers, float64(g.Members), g.Name)
		offs, _ := s.Offsets(g.Name)
		for _, o := range offs {
			t, ok := b.TopicByID(broker.TopicID(o.TP.Topic))
			if !ok {
				continue
			}
			p := strconv.Itoa(int(o.TP.Partition))
			gauge(ch, shareInFlight, float64(o.InFlight), g.Name, t.Name, p)
			gauge(ch, shareStart, float64(o.StartOffset), g.Name, t.Name, p)
			if o.Lag >= 0 {
				gauge(ch, shareLag, float64(o.Lag), g.Name, t.Name, p)
			}
		}
	}
}
