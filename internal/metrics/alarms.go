package metrics

import "github.com/prometheus/client_golang/prometheus"

// Alarm is one resource alarm's state.
type Alarm struct {
	Resource string // "memory", "disk"
	Raised   bool
}

// AlarmSource is what a resource-alarm component implements so that its
// alarms are exported as sluice_alarm{resource}. It is read at scrape
// time and must be safe for concurrent use.
type AlarmSource interface {
	Alarms() []Alarm
}

type alarmHolder struct{ src AlarmSource }

// SetAlarmSource exports src's alarms. Until one is set no sluice_alarm
// series exist: the metric does not claim "no alarm" for alarms nothing
// watches.
func (m *Metrics) SetAlarmSource(src AlarmSource) { m.alarms.Store(&alarmHolder{src}) }

var alarmDesc = prometheus.NewDesc("sluice_alarm",
	"1 while a resource alarm is raised (publishers blocked), else 0.", []string{"resource"}, nil)

type alarmCollector struct{ m *Metrics }

func (c alarmCollector) Describe(ch chan<- *prometheus.Desc) { ch <- alarmDesc }

func (c alarmCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.m.alarms.Load()
	if h == nil || h.src == nil {
		return
	}
	for _, a := range h.src.Alarms() {
		v := 0.0
		if a.Raised {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(alarmDesc, prometheus.GaugeValue, v, a.Resource)
	}
}
