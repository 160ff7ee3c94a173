package mgmt

import (
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// rateSampler turns a queue's running totals (queue.Stats, kept by the
// queue itself) into RabbitMQ's message_stats: each total with a
// "<name>_details": {"rate": per second}. The rate is the change since the
// previous sample of that queue divided by the time between them; a new
// sample is taken when a request finds the last one at least
// rateInterval old, so a rate covers the last rateInterval or more. The
// first listing of a queue reports rate 0.
type rateSampler struct {
	now func() time.Time

	mu      sync.Mutex
	samples map[string]*rateSample // by queue id
}

// rateInterval is RabbitMQ's default sample interval.
const rateInterval = 5 * time.Second

type rateSample struct {
	at     time.Time
	totals [4]int64
	rates  [4]float64
}

var rateNames = [4]string{"publish", "deliver_get", "ack", "redeliver"}

func newRateSampler(now func() time.Time) *rateSampler {
	return &rateSampler{now: now, samples: map[string]*rateSample{}}
}

func (rs *rateSampler) queueStats(vhost, name, id string, st *queue.Stats) map[string]any {
	cur := [4]int64{st.Published.Load(), st.Delivered.Load(), st.Acked.Load(), st.Redelivered.Load()}
	now := rs.now()
	rs.mu.Lock()
	s, ok := rs.samples[id]
	switch {
	case !ok:
		s = &rateSample{at: now, totals: cur}
		rs.samples[id] = s
	case now.Sub(s.at) >= rateInterval:
		dt := now.Sub(s.at).Seconds()
		for i := range cur {
			s.rates[i] = float64(cur[i]-s.totals[i]) / dt
		}
		s.at, s.totals = now, cur
	}
	rates := s.rates
	rs.mu.Unlock()
	out := make(map[string]any, 8)
	for i, n := range rateNames {
		out[n] = cur[i]
		out[n+"_details"] = map[string]any{"rate": rates[i]}
	}
	return out
}
