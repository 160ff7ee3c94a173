package mgmt

import (
	"runtime"

	"github.com/sluice-mq/sluice/internal/broker"
)

// message_stats: the running totals the core keeps (broker.MessageStats
// per channel, connection and vhost; exchange and queue totals), with
// rates from the sampler (sampler.go), in RabbitMQ's field names. Only
// AMQP traffic counts; Kafka produce and fetch show in /metrics and the
// Kafka view (docs/management-api.md).

// Columns of each kind of object's samples.
var (
	// channelCols are a channel's, a connection's and a vhost's totals.
	channelCols = []string{
		"publish", "confirm", "return_unroutable", "drop_unroutable",
		"deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "deliver_get",
		"ack", "redeliver",
	}
	// queueCols are a queue's totals.
	queueCols = []string{
		"publish", "deliver", "deliver_no_ack", "get", "get_no_ack", "deliver_get",
		"ack", "redeliver",
	}
	exchangeCols = []string{"publish_in", "publish_out"}
	// lengthCols follow the message totals in queue and vhost samples.
	lengthCols = []string{"messages", "messages_ready", "messages_unacknowledged"}
)

func channelValues(t broker.MessageTotals) []int64 {
	v := make([]int64, 0, len(channelCols)+len(lengthCols))
	for _, k := range []broker.MessageStat{
		broker.StatPublish, broker.StatConfirm, broker.StatReturnUnroutable, broker.StatDropUnroutable,
		broker.StatDeliver, broker.StatDeliverNoAck, broker.StatGet, broker.StatGetNoAck, broker.StatGetEmpty,
	} {
		v = append(v, t[k])
	}
	v = append(v, t[broker.StatDeliver]+t[broker.StatDeliverNoAck]+t[broker.StatGet]+t[broker.StatGetNoAck])
	return append(v, t[broker.StatAck], t[broker.StatRedeliver])
}

func queueValues(q broker.QueueStatus) []int64 {
	v := make([]int64, len(queueCols), len(queueCols)+len(lengthCols))
	if t := q.Totals; t != nil {
		v[0] = t.Published
		v[1] = t.Delivered - t.DeliveredNoAck - t.Got
		v[2] = t.DeliveredNoAck
		v[3] = t.Got - t.GotNoAck
		v[4] = t.GotNoAck
		v[5] = t.Delivered
		v[6] = t.Acked
		v[7] = t.Redelivered
	}
	return append(v, q.Ready+q.Unacked, q.Ready, q.Unacked)
}

func queueKey(q broker.QueueStatus) string { return "q:" + q.Vhost + "\x00" + q.Name + "\x00" + q.ID }
func exchangeKey(vh, name string) string   { return "x:" + vh + "\x00" + name }
func vhostKey(vh string) string            { return "v:" + vh }
func connKey(name string) string           { return "c:" + name }
func channelKey(name string) string        { return "ch:" + name }

// collectStats reports every object's totals to the sampler.
func (a *API) collectStats(add func(key string, keep int, vals []int64)) {
	long, short := keepFor(historyLong, a.stats.interval), keepFor(historyShort, a.stats.interval)
	for _, v := range a.opts.Meta.Vhosts() {
		qs, err := a.opts.Router.QueueStatuses(v.Name)
		if err != nil {
			continue
		}
		var ready, unacked int64
		for _, q := range qs {
			ready += q.Ready
			unacked += q.Unacked
			add(queueKey(q), short, queueValues(q))
		}
		add(vhostKey(v.Name), long, append(channelValues(a.opts.Router.VhostStats(v.Name).Totals()), ready+unacked, ready, unacked))
		xs, _ := a.opts.Router.ExchangeStats(v.Name)
		for name, x := range xs {
			add(exchangeKey(v.Name, name), short, []int64{x.PublishIn, x.PublishOut})
		}
	}
	if a.opts.Connections == nil {
		return
	}
	for _, c := range a.opts.Connections.List() {
		add(connKey(c.Name), short, channelValues(c.Stats))
		for _, ch := range c.Channels {
			add(channelKey(channelName(c, ch)), short, channelValues(ch.Stats))
		}
	}
}

// statsJSON is a message_stats object: each of names with its current
// value from cur and its "_details" over keys' samples, whose columns
// start at first.
func (a *API) statsJSON(names []string, cur []int64, keys []string, first int, w window) map[string]any {
	out := make(map[string]any, 2*len(names))
	for i, n := range names {
		out[n] = cur[i]
		out[n+"_details"] = a.stats.details(keys, first+i, w)
	}
	return out
}

// addQueueStats adds a queue's message_stats, the details of its lengths
// and its memory to m (queueJSON's map).
func (a *API) addQueueStats(m map[string]any, q broker.QueueStatus, w rateWindows) {
	cur := queueValues(q)
	keys := []string{queueKey(q)}
	m["message_stats"] = a.statsJSON(queueCols, cur, keys, 0, w.msg)
	for i, n := range lengthCols {
		m[n+"_details"] = a.stats.details(keys, len(queueCols)+i, w.lengths)
	}
	if q.Memory >= 0 {
		m["memory"] = q.Memory
	}
}

// vhostsStats is the message_stats of vhosts vhs summed (one vhost's, or
// the overview's), and the details of their queues' lengths.
func (a *API) vhostsStats(vhs []string, w rateWindows) (stats map[string]any, lengths map[string]any) {
	var total broker.MessageTotals
	keys := make([]string, 0, len(vhs))
	for _, vh := range vhs {
		t := a.opts.Router.VhostStats(vh).Totals()
		for i := range total {
			total[i] += t[i]
		}
		keys = append(keys, vhostKey(vh))
	}
	stats = a.statsJSON(channelCols, channelValues(total), keys, 0, w.msg)
	lengths = make(map[string]any, len(lengthCols))
	for i, n := range lengthCols {
		lengths[n+"_details"] = a.stats.details(keys, len(channelCols)+i, w.lengths)
	}
	return stats, lengths
}

func (a *API) exchangeStats(vh, name string, t broker.ExchangeTotals, w rateWindows) map[string]any {
	return a.statsJSON(exchangeCols, []int64{t.PublishIn, t.PublishOut}, []string{exchangeKey(vh, name)}, 0, w.msg)
}

func (a *API) connStats(c broker.ConnInfo, w rateWindows) map[string]any {
	return a.statsJSON(channelCols, channelValues(c.Stats), []string{connKey(c.Name)}, 0, w.msg)
}

func (a *API) channelStats(c broker.ConnInfo, ch broker.ChannelInfo, w rateWindows) map[string]any {
	return a.statsJSON(channelCols, channelValues(ch.Stats), []string{channelKey(channelName(c, ch))}, 0, w.msg)
}

func (a *API) withChannelStats(c broker.ConnInfo, ch broker.ChannelInfo, w rateWindows) map[string]any {
	m := a.channelJSON(c, ch)
	m["message_stats"] = a.channelStats(c, ch, w)
	return m
}

// withVhostStats adds a vhost's message_stats and the details of its
// queues' lengths to m (vhostJSON's map).
func (a *API) withVhostStats(m map[string]any, vh string, w rateWindows) map[string]any {
	stats, lengths := a.vhostsStats([]string{vh}, w)
	m["message_stats"] = stats
	for k, v := range lengths {
		m[k] = v
	}
	return m
}

// memoryBreakdown is a node's "memory" (GET /api/nodes/{node}?memory=true)
// in RabbitMQ's categories where Sluice has a counterpart: queue_procs and
// stream_queue_procs are the queues' own estimates (broker.QueueStatus
// .Memory), mgmt_db the rate samples, other_proc the rest of the Go heap in
// use, allocated_unused the heap held but free; total.rss is the resident
// memory the memory alarm watches, total.allocated what the Go runtime
// holds from the OS.
func (a *API) memoryBreakdown() map[string]any {
	var queues, streams int64
	for _, v := range a.opts.Meta.Vhosts() {
		qs, _ := a.opts.Router.QueueStatuses(v.Name)
		for _, q := range qs {
			switch {
			case q.Memory < 0:
			case q.Type == "stream":
				streams += q.Memory
			default:
				queues += q.Memory
			}
		}
	}
	mgmtDB := a.stats.memoryBytes()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inUse := int64(ms.HeapInuse + ms.StackInuse)
	other := max(inUse-queues-streams-mgmtDB, 0)
	rss := int64(ms.Sys - ms.HeapReleased)
	if a.opts.Resources != nil {
		if st := a.opts.Resources(); st.MemoryUsed >= 0 {
			rss = st.MemoryUsed
		}
	}
	return map[string]any{
		"queue_procs": queues, "stream_queue_procs": streams, "quorum_queue_procs": 0,
		"mgmt_db": mgmtDB, "other_proc": other,
		"allocated_unused": int64(ms.HeapIdle - ms.HeapReleased),
		"strategy":         "rss",
		"total":            map[string]any{"rss": rss, "allocated": int64(ms.Sys), "erlang": inUse},
	}
}
