package mgmt

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
)

// Client connections, their channels and consumers, from the core's
// registry of connections.

// connections lists the connections s may see: all of them for a
// monitoring or administrator user, else the user's own.
func (a *API) connections(s *session) []broker.ConnInfo {
	if a.opts.Connections == nil {
		return nil
	}
	var out []broker.ConnInfo
	for _, c := range a.opts.Connections.List() {
		if s.seesAll() || c.User == s.user.Name {
			out = append(out, c)
		}
	}
	return out
}

func (a *API) connectionJSON(c broker.ConnInfo) map[string]any {
	state := c.State
	if state == "" {
		state = "running"
	}
	out := map[string]any{
		"name": c.Name, "node": a.opts.NodeName, "type": "network", "state": state,
		"protocol": c.Protocol, "auth_mechanism": c.AuthMechanism,
		"user": c.User, "vhost": c.Vhost,
		"host": c.Host, "port": c.Port, "peer_host": c.PeerHost, "peer_port": c.PeerPort,
		"ssl": c.TLS != nil, "channels": len(c.Channels),
		"connected_at":      c.ConnectedAt.UnixMilli(),
		"client_properties": tableJSON(c.ClientProperties),
		"frame_max":         c.FrameMax, "channel_max": c.ChannelMax, "timeout": int(c.Heartbeat.Seconds()),
	}
	if t := c.TLS; t != nil {
		out["ssl_protocol"], out["ssl_cipher"] = t.Version, t.Cipher
		out["peer_cert_subject"], out["peer_cert_issuer"] = t.PeerSubject, t.PeerIssuer
	}
	return out
}

func channelName(c broker.ConnInfo, ch broker.ChannelInfo) string {
	return fmt.Sprintf("%s (%d)", c.Name, ch.Number)
}

func (a *API) channelJSON(c broker.ConnInfo, ch broker.ChannelInfo) map[string]any {
	return map[string]any{
		"name": channelName(c, ch), "number": ch.Number, "node": a.opts.NodeName,
		"user": c.User, "vhost": c.Vhost, "state": "running",
		"connection_details": map[string]any{"name": c.Name, "peer_host": c.PeerHost, "peer_port": c.PeerPort},
		"prefetch_count":     ch.Prefetch, "global_prefetch_count": ch.GlobalPrefetch,
		"consumer_count": len(ch.Consumers), "messages_unacknowledged": ch.Unacked,
		"confirm": ch.Confirm, "transactional": ch.Tx,
	}
}

func (a *API) listConnections(r *http.Request, s *session) (any, error) {
	vh := pathValue(r, "vhost")
	if vh != "" {
		if _, err := s.vhostParam(r); err != nil {
			return nil, err
		}
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, c := range a.connections(s) {
		if vh == "" || c.Vhost == vh {
			out = append(out, a.withConnStats(c, w))
		}
	}
	// On a cluster, the other nodes' connections too (each with its
	// "node"), as RabbitMQ lists them.
	return append(out, a.remoteList(nodeInfoConnections, r, s, vh)...), nil
}

// remoteList gathers the other nodes' answers to a question of kind
// ("connections", "channels": lists of objects with a user and a vhost;
// asked with r's rate windows) on a cluster, keeping what s may see in
// vhost vh (or all); a node that does not answer within
// remoteInfoTimeout is left out.
func (a *API) remoteList(kind string, r *http.Request, s *session, vh string) []map[string]any {
	return a.remoteItems(kind+"\x00"+r.URL.RawQuery, func(m map[string]any) bool {
		user, _ := m["user"].(string)
		ivh, _ := m["vhost"].(string)
		return (s.seesAll() || user == s.user.Name) && (vh == "" || ivh == vh)
	})
}

// remoteItems asks the other nodes a question whose answer is a list of
// objects, and gathers those keep accepts; a node that does not answer
// within remoteInfoTimeout is left out.
func (a *API) remoteItems(question string, keep func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, ans := range a.opts.Router.GatherNodeInfo(question, remoteInfoTimeout) {
		var items []map[string]any
		if ans.Err != nil || json.Unmarshal(ans.Body, &items) != nil {
			continue
		}
		for _, m := range items {
			if keep(m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// Questions other nodes' management APIs ask this one (broker.Router.
// GatherNodeInfo, AskNodeInfo), and how long an answer is waited for. A
// question is its kind, then its arguments, each after a NUL; query is
// the asking request's query string, for its rate windows (msg_rates_age
// and msg_rates_incr):
//   - "connections", query: this node's AMQP connections, as
//     /api/connections lists them, with their message_stats;
//   - "channels", query: the channels of this node's connections, as
//     /api/channels lists them, with their message_stats;
//   - "consumers": the consumers on this node's channels, as
//     /api/consumers lists them;
//   - "overview", a JSON overviewQuestion: this node's part of
//     /api/overview (overview_cluster.go);
//   - "connection", name, query: that connection and its channels, as
//     {"connection": ..., "channels": [...]}, with their message_stats,
//     if it is on this node;
//   - "close-connection", name, reason: closes it (320, reason), answering
//     {"closed": true}, if it is on this node;
//   - "quorum-leaders", vhost: the leaders this node knows of that vhost's
//     quorum queues (quorum_leaders.go).
//
// The asking node checks what its user may see and do; the nodes are
// authenticated to each other (the cluster transport).
const (
	nodeInfoConnections     = "connections"
	nodeInfoChannels        = "channels"
	nodeInfoConsumers       = "consumers"
	nodeInfoOverview        = "overview"
	nodeInfoConnection      = "connection"
	nodeInfoCloseConnection = "close-connection"
	remoteInfoTimeout       = 3 * time.Second
)

// nodeInfo answers another node's question (above); nil when it has no
// answer.
func (a *API) nodeInfo(question string) []byte {
	kind, args, _ := strings.Cut(question, "\x00")
	var out any
	switch kind {
	case nodeInfoConnections:
		w := a.askedWindows(args)
		cs := []map[string]any{}
		for _, c := range a.opts.Connections.List() {
			cs = append(cs, a.withConnStats(c, w))
		}
		out = cs
	case nodeInfoChannels:
		w := a.askedWindows(args)
		chans := []map[string]any{}
		for _, c := range a.opts.Connections.List() {
			chans = a.appendChannelsJSON(chans, c, w)
		}
		out = chans
	case nodeInfoConsumers:
		out = a.consumersJSON(func(string) bool { return true })
	case nodeInfoOverview:
		if out = a.nodeOverview(args); out == nil {
			return nil
		}
	case nodeInfoConnection:
		name, query, _ := strings.Cut(args, "\x00")
		c, ok := a.localConnection(name)
		if !ok {
			return nil
		}
		w := a.askedWindows(query)
		out = remoteConnection{Conn: a.withConnStats(c, w), Channels: a.appendChannelsJSON([]map[string]any{}, c, w)}
	case nodeInfoQuorumLeaders:
		if out = a.quorumLeaders(args); out == nil {
			return nil
		}
	case nodeInfoCloseConnection:
		name, reason, _ := strings.Cut(args, "\x00")
		if !a.opts.Connections.Close(name, reason) {
			return nil
		}
		out = map[string]bool{"closed": true}
	default:
		return nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return b
}

// askedWindows are the rate windows of another node's question: those of
// its request's query, or none if they are not valid (that node checked
// them before it asked).
func (a *API) askedWindows(query string) rateWindows {
	w, err := a.windows(&http.Request{URL: &url.URL{RawQuery: query}})
	if err != nil {
		return rateWindows{}
	}
	return w
}

// withConnStats is c as /api/connections shows it, with its message_stats
// over windows w.
func (a *API) withConnStats(c broker.ConnInfo, w rateWindows) map[string]any {
	m := a.connectionJSON(c)
	m["message_stats"] = a.connStats(c, w)
	return m
}

// appendChannelsJSON appends c's channels with their message_stats over
// windows w.
func (a *API) appendChannelsJSON(out []map[string]any, c broker.ConnInfo, w rateWindows) []map[string]any {
	for _, ch := range c.Channels {
		out = append(out, a.withChannelStats(c, ch, w))
	}
	return out
}

// remoteConnection is another node's answer about one of its connections.
type remoteConnection struct {
	Conn     map[string]any   `json:"connection"`
	Channels []map[string]any `json:"channels"`
	node     uint64
}

func (a *API) localConnection(name string) (broker.ConnInfo, bool) {
	for _, c := range a.opts.Connections.List() {
		if c.Name == name {
			return c, true
		}
	}
	return broker.ConnInfo{}, false
}

// findRemoteConnection asks the other nodes of a cluster for the
// connection of the request's name, one s may see.
func (a *API) findRemoteConnection(r *http.Request, s *session) (remoteConnection, error) {
	name := pathValue(r, "name")
	if name == "" || strings.Contains(name, "\x00") {
		return remoteConnection{}, notFound()
	}
	for _, ans := range a.opts.Router.GatherNodeInfo(nodeInfoConnection+"\x00"+name+"\x00"+r.URL.RawQuery, remoteInfoTimeout) {
		var rc remoteConnection
		if ans.Err != nil || json.Unmarshal(ans.Body, &rc) != nil || rc.Conn == nil {
			continue
		}
		if user, _ := rc.Conn["user"].(string); !s.seesAll() && user != s.user.Name {
			continue
		}
		rc.node = ans.Node
		return rc, nil
	}
	return remoteConnection{}, notFound()
}

func (a *API) findConnection(r *http.Request, s *session) (broker.ConnInfo, error) {
	if a.opts.Connections != nil {
		if c, ok := a.localConnection(pathValue(r, "name")); ok && (s.seesAll() || c.User == s.user.Name) {
			return c, nil
		}
	}
	return broker.ConnInfo{}, notFound()
}

func (a *API) getConnection(r *http.Request, s *session) (any, error) {
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	c, err := a.findConnection(r, s)
	if err != nil {
		// On a cluster, another node's.
		rc, rerr := a.findRemoteConnection(r, s)
		if rerr != nil {
			return nil, err
		}
		return rc.Conn, nil
	}
	return a.withConnStats(c, w), nil
}

// closeConnection closes a connection with 320 CONNECTION_FORCED; the
// X-Reason header is the reply text, as in RabbitMQ.
// On a cluster, a connection to another node is closed by that node.
func (a *API) closeConnection(r *http.Request, s *session) (any, error) {
	reason := r.Header.Get("X-Reason")
	if reason == "" {
		reason = "Closed via management plugin"
	}
	notAuthorised := &apiError{http.StatusUnauthorized, "not_authorised", "Not administrator user"}
	c, err := a.findConnection(r, s)
	if err != nil {
		rc, rerr := a.findRemoteConnection(r, s)
		if rerr != nil {
			return nil, err
		}
		if user, _ := rc.Conn["user"].(string); !s.admin && user != s.user.Name {
			return nil, notAuthorised
		}
		name, _ := rc.Conn["name"].(string)
		q := nodeInfoCloseConnection + "\x00" + name + "\x00" + strings.ReplaceAll(reason, "\x00", " ")
		if _, err := a.opts.Router.AskNodeInfo(rc.node, q, remoteInfoTimeout); err != nil {
			return nil, notFound() // gone meanwhile, or its node with it
		}
		return noContent{}, nil
	}
	if !s.admin && c.User != s.user.Name {
		return nil, notAuthorised
	}
	if !a.opts.Connections.Close(c.Name, reason) {
		return nil, notFound()
	}
	return noContent{}, nil
}

func (a *API) connectionChannels(r *http.Request, s *session) (any, error) {
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	c, err := a.findConnection(r, s)
	if err != nil {
		rc, rerr := a.findRemoteConnection(r, s)
		if rerr != nil {
			return nil, err
		}
		return rc.Channels, nil
	}
	return a.appendChannelsJSON([]map[string]any{}, c, w), nil
}

func (a *API) listChannels(r *http.Request, s *session) (any, error) {
	vh := pathValue(r, "vhost")
	if vh != "" {
		if _, err := s.vhostParam(r); err != nil {
			return nil, err
		}
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, c := range a.connections(s) {
		if vh != "" && c.Vhost != vh {
			continue
		}
		out = a.appendChannelsJSON(out, c, w)
	}
	return append(out, a.remoteList(nodeInfoChannels, r, s, vh)...), nil
}

func (a *API) getChannel(r *http.Request, s *session) (any, error) {
	name := pathValue(r, "name")
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	for _, c := range a.connections(s) {
		for _, ch := range c.Channels {
			if channelName(c, ch) == name {
				return a.withChannelStats(c, ch, w), nil
			}
		}
	}
	for _, m := range a.remoteList(nodeInfoChannels, r, s, "") {
		if m["name"] == name {
			return m, nil
		}
	}
	return nil, notFound()
}

// listConsumers lists consumers in the visible vhosts (or one vhost). A
// management user sees every consumer in its vhosts, as in RabbitMQ; on a
// cluster, those on the other nodes' channels too.
func (a *API) listConsumers(r *http.Request, s *session) (any, error) {
	vhs, err := s.vhostsOf(r)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, vh := range vhs {
		keep[vh] = true
	}
	out := a.consumersJSON(func(vh string) bool { return keep[vh] })
	return append(out, a.remoteItems(nodeInfoConsumers, func(m map[string]any) bool {
		q, _ := m["queue"].(map[string]any)
		vh, _ := q["vhost"].(string)
		return keep[vh]
	})...), nil
}

// consumersJSON lists the consumers on this node's channels in the vhosts
// keep accepts, as /api/consumers shows them.
func (a *API) consumersJSON(keep func(vhost string) bool) []map[string]any {
	out := []map[string]any{}
	if a.opts.Connections == nil {
		return out
	}
	for _, c := range a.opts.Connections.List() {
		if !keep(c.Vhost) {
			continue
		}
		for _, ch := range c.Channels {
			for _, cs := range ch.Consumers {
				out = append(out, map[string]any{
					"consumer_tag": cs.Tag, "ack_required": cs.AckRequired, "prefetch_count": cs.Prefetch,
					"arguments": map[string]any{},
					"queue":     map[string]any{"name": cs.Queue, "vhost": c.Vhost},
					"channel_details": map[string]any{
						"name": channelName(c, ch), "number": ch.Number, "user": c.User,
						"connection_name": c.Name, "peer_host": c.PeerHost, "peer_port": c.PeerPort, "node": a.opts.NodeName,
					},
				})
			}
		}
	}
	return out
}
