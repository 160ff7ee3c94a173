package mgmt

import (
	"encoding/json"
	"net/http"
	"slices"
)

// The overview on a cluster, as RabbitMQ's: its connections, channels and
// message_stats are every node's. Queues, exchanges and consumers are
// counted from the queues this node knows (every queue of the cluster,
// with its leader's counts) and need no question.

// overviewQuestion is the argument of an "overview" question.
type overviewQuestion struct {
	Query  string   `json:"query"`  // the asking request's query (rate windows)
	Vhosts []string `json:"vhosts"` // the vhosts the asking user may see
	User   string   `json:"user"`   // only this user's connections; "" for all
}

// overviewAnswer is one node's part of the overview.
type overviewAnswer struct {
	Connections int            `json:"connections"`
	Channels    int            `json:"channels"`
	Stats       map[string]any `json:"message_stats"`
}

// nodeOverview answers an "overview" question with this node's part.
func (a *API) nodeOverview(args string) any {
	var q overviewQuestion
	if json.Unmarshal([]byte(args), &q) != nil {
		return nil
	}
	ans := overviewAnswer{}
	if a.opts.Connections != nil {
		for _, c := range a.opts.Connections.List() {
			if q.User == "" || c.User == q.User {
				ans.Connections++
				ans.Channels += len(c.Channels)
			}
		}
	}
	ans.Stats, _ = a.vhostsStats(q.Vhosts, a.askedWindows(q.Query))
	return ans
}

// addRemoteOverview adds the other nodes' connections, channels and
// message_stats to the overview out (as overview built it), on a cluster.
// A node that does not answer within remoteInfoTimeout is left out.
func (a *API) addRemoteOverview(out map[string]any, r *http.Request, s *session) {
	q := overviewQuestion{Query: r.URL.RawQuery, Vhosts: s.visibleVhosts()}
	if !s.seesAll() {
		q.User = s.user.Name
	}
	b, err := json.Marshal(q)
	if err != nil {
		return
	}
	totals, _ := out["object_totals"].(map[string]any)
	stats, _ := out["message_stats"].(map[string]any)
	for _, ans := range a.opts.Router.GatherNodeInfo(nodeInfoOverview+"\x00"+string(b), remoteInfoTimeout) {
		var o overviewAnswer
		if ans.Err != nil || json.Unmarshal(ans.Body, &o) != nil {
			continue
		}
		if totals != nil {
			totals["connections"] = toInt(totals["connections"]) + o.Connections
			totals["channels"] = toInt(totals["channels"]) + o.Channels
		}
		if stats != nil {
			addStats(stats, o.Stats)
		}
	}
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

// addStats adds message_stats from (another node's, decoded from JSON) to
// into: the totals and their rates summed, the samples summed where their
// timestamps meet (every node samples at the same multiples of the
// request's increment), and their avg and avg_rate computed again.
func addStats(into, from map[string]any) {
	for k, v := range from {
		d, ok := v.(map[string]any)
		if !ok {
			into[k] = int64(toFloat(into[k]) + toFloat(v))
			continue
		}
		mine, _ := into[k].(map[string]any)
		if mine == nil {
			mine = map[string]any{"rate": 0.0}
			into[k] = mine
		}
		mine["rate"] = toFloat(mine["rate"]) + toFloat(d["rate"])
		theirs, ok := d["samples"].([]any)
		if !ok {
			continue
		}
		sum := map[int64]float64{}
		for _, s := range sampleList(mine["samples"]) {
			sum[s.at] += s.v
		}
		for _, x := range theirs {
			if m, ok := x.(map[string]any); ok {
				sum[int64(toFloat(m["timestamp"]))] += toFloat(m["sample"])
			}
		}
		ats := make([]int64, 0, len(sum))
		for at := range sum {
			ats = append(ats, at)
		}
		slices.Sort(ats)
		slices.Reverse(ats) // newest first
		samples := make([]map[string]any, 0, len(ats))
		var total float64
		for _, at := range ats {
			samples = append(samples, map[string]any{"sample": int64(sum[at]), "timestamp": at})
			total += sum[at]
		}
		mine["samples"] = samples
		mine["avg"], mine["avg_rate"] = 0.0, 0.0
		if len(ats) > 0 {
			mine["avg"] = total / float64(len(ats))
		}
		if n := len(ats); n > 1 {
			if secs := float64(ats[0]-ats[n-1]) / 1000; secs > 0 {
				mine["avg_rate"] = (sum[ats[0]] - sum[ats[n-1]]) / secs
			}
		}
	}
}

type samplePoint struct {
	at int64
	v  float64
}

// sampleList reads samples as details builds them ([]map[string]any) or
// as JSON decodes them ([]any).
func sampleList(v any) []samplePoint {
	var out []samplePoint
	add := func(m map[string]any) {
		out = append(out, samplePoint{int64(toFloat(m["timestamp"])), toFloat(m["sample"])})
	}
	switch l := v.(type) {
	case []map[string]any:
		for _, m := range l {
			add(m)
		}
	case []any:
		for _, x := range l {
			if m, ok := x.(map[string]any); ok {
				add(m)
			}
		}
	}
	return out
}
