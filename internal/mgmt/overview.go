package mgmt

import (
	"github.com/sluice-mq/sluice/internal/broker/alarm"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The overview, nodes and health checks.

func hostnameShort() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "localhost", err
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h, nil
}

func listenerPort(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	_, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return n
}

func (a *API) listenersJSON() []map[string]any {
	out := []map[string]any{}
	for _, l := range a.opts.Listeners {
		host, _, _ := net.SplitHostPort(l.Addr.String())
		out = append(out, map[string]any{"node": a.opts.NodeName, "protocol": l.Protocol, "ip_address": host, "port": listenerPort(l.Addr)})
	}
	return out
}

func (a *API) overview(r *http.Request, s *session) (any, error) {
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	var ready, unacked int64
	var queues, exchanges, consumers int
	for _, vh := range s.visibleVhosts() {
		exchanges += len(a.opts.Meta.Exchanges(vh))
		qs, err := a.opts.Router.QueueStatuses(vh)
		if err != nil {
			continue
		}
		queues += len(qs)
		for _, q := range qs {
			ready += q.Ready
			unacked += q.Unacked
			consumers += q.Consumers
		}
	}
	conns := a.connections(s)
	channels := 0
	for _, c := range conns {
		channels += len(c.Channels)
	}
	out := map[string]any{
		"management_version": RabbitMQVersion, "rabbitmq_version": RabbitMQVersion,
		"product_name": "Sluice", "product_version": a.opts.Version,
		"cluster_name": a.opts.ClusterName, "node": a.opts.NodeName,
		"erlang_version": "none (Go " + runtime.Version() + ")",
		"rates_mode":     "basic", "exchange_types": exchangeTypes(),
		"queue_totals": map[string]any{"messages": ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked},
		"object_totals": map[string]any{
			"queues": queues, "exchanges": exchanges, "consumers": consumers,
			"connections": len(conns), "channels": channels,
		},
		"listeners": a.listenersJSON(),
		"contexts":  []map[string]any{{"node": a.opts.NodeName, "description": "RabbitMQ Management", "path": "/", "port": strconv.Itoa(a.httpPort())}},
	}
	stats, lengths := a.vhostsStats(s.visibleVhosts(), w)
	out["message_stats"] = stats
	for k, v := range lengths {
		out["queue_totals"].(map[string]any)[k] = v
	}
	a.addRemoteOverview(out, r, s)
	if a.opts.Kafka != nil && s.seesAll() {
		out["kafka_totals"] = map[string]any{"topics": len(a.opts.Kafka.Topics())}
	}
	return out, nil
}

func (a *API) httpPort() int {
	for _, l := range a.opts.Listeners {
		if l.Protocol == "http" {
			return listenerPort(l.Addr)
		}
	}
	return 0
}

func exchangeTypes() []map[string]any {
	var out []map[string]any
	for _, t := range []string{"direct", "fanout", "topic", "headers", "x-delayed-message"} {
		out = append(out, map[string]any{"name": t, "description": "", "enabled": true})
	}
	return out
}

func (a *API) nodeJSON() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := map[string]any{
		"name": a.opts.NodeName, "type": "disc", "running": true, "being_drained": false,
		"mem_used": ms.Sys - ms.HeapReleased, "uptime": time.Since(a.started).Milliseconds(),
		"processors": runtime.NumCPU(), "run_queue": 0, "proc_used": runtime.NumGoroutine(),
		"os_pid": strconv.Itoa(os.Getpid()), "rates_mode": "basic",
		"exchange_types": exchangeTypes(), "applications": []any{},
		"partitions": []any{},
	}
	n["storage_failures"] = a.failuresJSON()
	if a.opts.Resources != nil {
		// RabbitMQ's resource fields; a resource not watched is left out.
		st := a.opts.Resources()
		raised := map[alarm.Resource]bool{}
		for _, al := range st.Alarms {
			raised[al.Resource] = true
		}
		if st.MemoryLimit >= 0 {
			n["mem_limit"], n["mem_alarm"] = st.MemoryLimit, raised[alarm.Memory]
			if st.MemoryUsed >= 0 {
				n["mem_used"] = st.MemoryUsed // resident memory, what the alarm watches
			}
		}
		if st.DiskFreeLimit >= 0 {
			n["disk_free_limit"], n["disk_free_alarm"] = st.DiskFreeLimit, raised[alarm.Disk]
			if st.DiskFree >= 0 {
				n["disk_free"] = st.DiskFree
			}
		}
	}
	return n
}

// Health checks answer 200 {"status":"ok"} or 503 {"status":"failed",
// "reason": ...}, as RabbitMQ's.

type healthResult struct {
	status int
	body   map[string]any
}

func healthOK() healthResult { return healthResult{http.StatusOK, map[string]any{"status": "ok"}} }

func healthFailed(reason string, extra map[string]any) healthResult {
	body := map[string]any{"status": "failed", "reason": reason}
	for k, v := range extra {
		body[k] = v
	}
	return healthResult{http.StatusServiceUnavailable, body}
}

func (a *API) health(check func(r *http.Request) healthResult) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, aerr := a.authenticate(r, levelManagement); aerr != nil {
			writeError(w, aerr)
			return
		}
		res := check(r)
		writeJSON(w, res.status, res.body)
	}
}

// checkAlarms fails while a resource alarm is in effect or a log refuses
// writes after a storage failure (a Sluice addition: RabbitMQ has no such
// state to report). Each failed log is an alarm with resource "storage"
// and says which log and why.
func (a *API) checkAlarms(r *http.Request) healthResult {
	var alarms []map[string]any
	if a.opts.Resources != nil {
		for _, al := range a.opts.Resources().Alarms {
			alarms = append(alarms, map[string]any{"node": a.opts.NodeName, "resource": string(al.Resource)})
		}
	}
	failures := a.failuresJSON()
	for _, f := range failures {
		alarm := map[string]any{"node": a.opts.NodeName, "resource": "storage"}
		for k, v := range f {
			alarm[k] = v
		}
		alarms = append(alarms, alarm)
	}
	switch {
	case len(alarms) == 0:
		return healthOK()
	case len(failures) == 0:
		return healthFailed("resource alarm(s) in effect", map[string]any{"alarms": alarms})
	default:
		return healthFailed("storage failure(s): logs refusing writes until they recover", map[string]any{"alarms": alarms})
	}
}

// failuresJSON lists the logs refusing writes, for the node and the
// alarms check.
func (a *API) failuresJSON() []map[string]any {
	out := []map[string]any{}
	if a.opts.Failures == nil {
		return out
	}
	for _, f := range a.opts.Failures() {
		m := map[string]any{"kind": f.Kind, "log": f.Name, "error": f.Err, "since": f.Since.UTC().Format(time.RFC3339)}
		if f.Vhost != "" {
			m["vhost"] = f.Vhost
		}
		out = append(out, m)
	}
	return out
}

func (a *API) checkVirtualHosts(r *http.Request) healthResult {
	var down []string
	for _, v := range a.opts.Meta.Vhosts() {
		if !a.opts.Router.VhostExists(v.Name) {
			down = append(down, v.Name)
		}
	}
	if len(down) > 0 {
		return healthFailed("some virtual hosts are down", map[string]any{"virtual-hosts": down})
	}
	return healthOK()
}

func (a *API) checkPortListener(r *http.Request) healthResult {
	port, err := strconv.Atoi(pathValue(r, "port"))
	if err != nil {
		return healthResult{http.StatusBadRequest, map[string]any{"error": "bad_request", "reason": "port must be a number"}}
	}
	var ports []int
	for _, l := range a.opts.Listeners {
		if listenerPort(l.Addr) == port {
			return healthResult{http.StatusOK, map[string]any{"status": "ok", "port": port}}
		}
		ports = append(ports, listenerPort(l.Addr))
	}
	return healthFailed("No active listener", map[string]any{"missing": port, "ports": ports})
}

func (a *API) checkProtocolListener(r *http.Request) healthResult {
	want := strings.ToLower(pathValue(r, "protocol"))
	switch want {
	case "amqp091", "amqp0-9-1", "amqp-0-9-1":
		want = "amqp"
	case "amqps", "amqp091/ssl", "amqp/tls":
		want = "amqp/ssl"
	}
	var protos []string
	for _, l := range a.opts.Listeners {
		if l.Protocol == want {
			return healthResult{http.StatusOK, map[string]any{"status": "ok", "protocol": pathValue(r, "protocol")}}
		}
		protos = append(protos, l.Protocol)
	}
	return healthFailed("No active listener", map[string]any{"missing": pathValue(r, "protocol"), "protocols": protos})
}

// checkSingleNode covers the cluster checks (quorum- and mirror-critical):
// a single node has no replicas another node depends on.
func (a *API) checkSingleNode(r *http.Request) healthResult { return healthOK() }
