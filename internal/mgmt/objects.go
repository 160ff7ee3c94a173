package mgmt

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
)

// Exchanges, queues and bindings: listing, declaring, deleting.

func (a *API) exchangeJSON(e meta.Exchange) map[string]any {
	return map[string]any{
		"name": e.Name, "vhost": e.Vhost, "type": e.Type,
		"durable": e.Durable, "auto_delete": e.AutoDelete, "internal": e.Internal,
		"arguments": tableJSON(decodeArgs(e.Arguments)), "user_who_performed_action": "",
	}
}

func (a *API) listExchanges(r *http.Request, s *session) (any, error) {
	vhs, err := s.vhostsOf(r)
	if err != nil {
		return nil, err
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, vh := range vhs {
		pols := a.opts.Router.ExchangePolicies(vh)
		xs, _ := a.opts.Router.ExchangeStats(vh)
		// The super stream exchanges of topics are listed as defined ones.
		for _, e := range append(a.opts.Meta.Exchanges(vh), a.opts.Router.TopicViewExchanges(vh)...) {
			m := a.exchangeJSON(e)
			policyFields(m, pols[e.Name])
			m["message_stats"] = a.exchangeStats(vh, e.Name, xs[e.Name], w)
			out = append(out, m)
		}
	}
	return out, nil
}

// exchangeName reads {name}; "amq.default" names the default exchange in
// URLs, as in RabbitMQ.
func exchangeName(r *http.Request) string {
	n := pathValue(r, "name")
	if n == "amq.default" {
		return ""
	}
	return n
}

func (a *API) getExchange(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	e, ok := a.opts.Meta.Exchange(vh, exchangeName(r))
	if !ok {
		e, ok = topicViewExchange(a.opts.Router, vh, exchangeName(r))
	}
	if !ok {
		return nil, notFound()
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	xs, _ := a.opts.Router.ExchangeStats(vh)
	m := a.exchangeJSON(e)
	m["message_stats"] = a.exchangeStats(vh, e.Name, xs[e.Name], w)
	policyFields(m, a.opts.Router.ExchangePolicies(vh)[e.Name])
	return m, nil
}

type exchangeBody struct {
	Type       string         `json:"type"`
	Durable    *flexBool      `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Internal   flexBool       `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

func (a *API) putExchange(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := exchangeName(r)
	var b exchangeBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if b.Type == "" {
		return nil, badRequest("exchange type is required")
	}
	if err := s.permitted(vh, auth.AccessConfigure, "exchange", name); err != nil {
		return nil, err
	}
	args, err := jsonTable(b.Arguments)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	durable := b.Durable == nil || bool(*b.Durable)
	_, existed := a.opts.Meta.Exchange(vh, name)
	if err := a.opts.Router.DeclareExchange(vh, broker.ExchangeDecl{
		Name: name, Type: b.Type, Durable: durable, AutoDelete: bool(b.AutoDelete), Internal: bool(b.Internal), Arguments: args,
	}); err != nil {
		return nil, err
	}
	if existed {
		return noContent{}, nil
	}
	return created{}, nil
}

func (a *API) deleteExchange(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := exchangeName(r)
	if err := s.permitted(vh, auth.AccessConfigure, "exchange", name); err != nil {
		return nil, err
	}
	if err := a.opts.Router.DeleteExchange(vh, name, queryBool(r, "if-unused")); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (a *API) queueJSON(q broker.QueueStatus) map[string]any {
	typ := q.Type
	if typ == "" {
		typ = "classic"
	}
	m := map[string]any{
		"name": q.Name, "vhost": q.Vhost, "durable": q.Durable, "auto_delete": q.AutoDelete,
		"exclusive": q.Exclusive, "arguments": tableJSON(q.Args), "node": a.opts.NodeName,
		"type": typ, "state": "running",
		"messages": q.Ready + q.Unacked, "messages_ready": q.Ready, "messages_unacknowledged": q.Unacked,
		"consumers": q.Consumers,
	}
	if q.Exclusive {
		m["owner_pid_details"] = map[string]any{"name": q.Owner}
	}
	if q.Remote {
		m["node"] = a.nodeNameOf(q.Node)
		if q.Down {
			m["state"] = "down" // RabbitMQ's word for a queue whose node is down
		}
	}
	if q.Quorum {
		// RabbitMQ's fields for a quorum queue.
		var members, online []string
		for _, id := range q.Members {
			members = append(members, a.nodeNameOf(id))
		}
		for _, id := range q.Online {
			online = append(online, a.nodeNameOf(id))
		}
		m["members"], m["online"] = members, online
		if q.Leader != 0 {
			m["leader"] = a.nodeNameOf(q.Leader)
			m["node"] = m["leader"]
		}
		if len(q.Online) <= len(q.Members)/2 {
			m["state"] = "minority" // RabbitMQ's word: no majority of members up
		}
	}
	if q.CreatedMs > 0 {
		m["created_at"] = time.UnixMilli(q.CreatedMs).UTC().Format(time.RFC3339)
	}
	policyFields(m, q.Policy)
	if len(q.Feeds) > 0 { // Sluice's own: a queue bound to topics
		var fs []map[string]any
		for _, f := range q.Feeds {
			fs = append(fs, map[string]any{"topic": f.Topic, "partition": f.Partition,
				"next_offset": f.Next, "end_offset": f.End, "lag": max(f.End-f.Next, 0)})
		}
		m["topic_feeds"] = fs
	}
	return m
}

func (a *API) listQueues(r *http.Request, s *session) (any, error) {
	vhs, err := s.vhostsOf(r)
	if err != nil {
		return nil, err
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, vh := range vhs {
		qs, err := a.opts.Router.QueueStatuses(vh)
		if err != nil {
			continue // deleted meanwhile
		}
		ms := make([]map[string]any, len(qs))
		for i, q := range qs {
			ms[i] = a.queueJSON(q)
			a.addQueueStats(ms[i], q, w)
		}
		a.fillQuorumLeaders(vh, qs, ms)
		out = append(out, ms...)
		// On a cluster, the queues living on other nodes too, as
		// RabbitMQ lists every node's (sorted after this node's).
		for _, q := range a.opts.Router.RemoteQueueStatuses(vh) {
			out = append(out, a.queueJSON(q))
		}
	}
	return out, nil
}

func (a *API) getQueue(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	q, err := a.opts.Router.QueueStatus(vh, pathValue(r, "name"))
	if err != nil {
		for _, rq := range a.opts.Router.RemoteQueueStatuses(vh) {
			if rq.Name == pathValue(r, "name") {
				return a.queueJSON(rq), nil
			}
		}
		return nil, err
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	m := a.queueJSON(q)
	a.addQueueStats(m, q, w)
	a.fillQuorumLeaders(vh, []broker.QueueStatus{q}, []map[string]any{m})
	return m, nil
}

type queueBody struct {
	Durable    *flexBool      `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

func (a *API) putQueue(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	var b queueBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if err := s.permitted(vh, auth.AccessConfigure, "queue", name); err != nil {
		return nil, err
	}
	args, err := jsonTable(b.Arguments)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	durable := b.Durable == nil || bool(*b.Durable)
	_, existed := a.opts.Meta.Queue(vh, name)
	if _, err := a.opts.Router.DeclareQueue(vh, broker.QueueDecl{
		Name: name, Durable: durable, AutoDelete: bool(b.AutoDelete), Arguments: args,
	}); err != nil {
		return nil, err
	}
	if existed {
		return noContent{}, nil
	}
	return created{}, nil
}

func (a *API) deleteQueue(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	if err := s.permitted(vh, auth.AccessConfigure, "queue", name); err != nil {
		return nil, err
	}
	if _, err := a.opts.Router.DeleteQueue(vh, name, "", queryBool(r, "if-unused"), queryBool(r, "if-empty")); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (a *API) purgeQueue(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	if err := s.permitted(vh, auth.AccessRead, "queue", name); err != nil {
		return nil, err
	}
	if _, err := a.opts.Router.PurgeQueue(vh, name, ""); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func bindingJSON(b meta.Binding) map[string]any {
	m := map[string]any{
		"source": b.Source, "vhost": b.Vhost, "destination": b.Destination,
		"destination_type": b.DestinationKind, "routing_key": b.RoutingKey,
		"arguments": tableJSON(decodeArgs(b.Arguments)), "properties_key": propertiesKey(b.RoutingKey, b.Arguments),
	}
	if b.SourceKind != "" {
		m["source_type"] = b.SourceKind // Sluice's own: a topic bound to a queue
	}
	return m
}

// defaultBindings are the implicit bindings of every queue to the default
// exchange, which RabbitMQ lists too.
func (a *API) defaultBindings(vh string, queue string) []map[string]any {
	var out []map[string]any
	for _, q := range a.opts.Meta.Queues(vh) {
		if queue != "" && q.Name != queue {
			continue
		}
		out = append(out, bindingJSON(meta.Binding{Vhost: vh, Destination: q.Name, DestinationKind: meta.DestQueue, RoutingKey: q.Name}))
	}
	return out
}

// bindingFilter selects bindings.
type bindingFilter func(b meta.Binding) bool

func (a *API) bindings(vhs []string, withDefault bool, keep bindingFilter) []map[string]any {
	out := []map[string]any{}
	for _, vh := range vhs {
		if withDefault {
			for _, d := range a.defaultBindings(vh, "") {
				b := meta.Binding{Vhost: vh, Destination: d["destination"].(string), DestinationKind: meta.DestQueue, RoutingKey: d["routing_key"].(string)}
				if keep(b) {
					out = append(out, d)
				}
			}
		}
		for _, b := range append(a.opts.Meta.Bindings(vh), a.opts.Router.TopicViewBindings(vh)...) {
			if keep(b) {
				out = append(out, bindingJSON(b))
			}
		}
	}
	return out
}

func all(meta.Binding) bool { return true }

func (a *API) listBindings(r *http.Request, s *session) (any, error) {
	vhs, err := s.vhostsOf(r)
	if err != nil {
		return nil, err
	}
	return a.bindings(vhs, true, all), nil
}

func (a *API) queueBindings(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	name := pathValue(r, "name")
	if _, ok := a.opts.Meta.Queue(vh, name); !ok {
		return nil, notFound()
	}
	return a.bindings([]string{vh}, true, func(b meta.Binding) bool {
		return b.DestinationKind == meta.DestQueue && b.Destination == name
	}), nil
}

func (a *API) exchangeBindings(source bool) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		name := exchangeName(r)
		if _, ok := a.opts.Meta.Exchange(vh, name); !ok {
			if _, ok := topicViewExchange(a.opts.Router, vh, name); !ok {
				return nil, notFound()
			}
		}
		return a.bindings([]string{vh}, name == "" && source, func(b meta.Binding) bool {
			if source {
				return b.Source == name && b.SourceKind == ""
			}
			return b.DestinationKind == meta.DestExchange && b.Destination == name
		}), nil
	}
}

// topicToQueue is bindingPath's kind for /api/bindings/{vhost}/t/{src}/q/{dst}.
const topicToQueue = "tq"

// sourceKind is the binding source kind of a bindingPath kind.
func sourceKind(kind string) string {
	if kind == topicToQueue {
		return meta.SourceTopic
	}
	return ""
}

// bindingPath reads /api/bindings/{vhost}/e/{src}/{kind}/{dst} (or
// /t/{src}/q/{dst}, kind topicToQueue).
func bindingPath(r *http.Request, kind string) (src, dst, destKind string) {
	switch kind {
	case "e":
		destKind = meta.DestExchange
	case "t":
		destKind = meta.DestTopic
	default:
		destKind = meta.DestQueue
	}
	src = pathValue(r, "src")
	if src == "amq.default" && kind != topicToQueue {
		src = ""
	}
	return src, pathValue(r, "dst"), destKind
}

type bindingBody struct {
	RoutingKey string         `json:"routing_key"`
	Arguments  map[string]any `json:"arguments"`
}

// checkBindingAccess applies AMQP's rule: write on the destination, read
// on the source exchange.
func (s *session) checkBindingAccess(vh, src, dst, destKind string) error {
	if err := s.permitted(vh, auth.AccessWrite, destKind, dst); err != nil {
		return err
	}
	return s.permitted(vh, auth.AccessRead, "exchange", src)
}

func (a *API) listBindingsBetween(kind string) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		src, dst, destKind := bindingPath(r, kind)
		return a.bindings([]string{vh}, src == "" && destKind == meta.DestQueue && kind != topicToQueue, func(b meta.Binding) bool {
			return b.Source == src && b.Destination == dst && b.DestinationKind == destKind && b.SourceKind == sourceKind(kind)
		}), nil
	}
}

func (a *API) postBinding(kind string) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		src, dst, destKind := bindingPath(r, kind)
		var b bindingBody
		if err := decodeBody(r, &b); err != nil {
			return nil, err
		}
		if err := s.checkBindingAccess(vh, src, dst, destKind); err != nil {
			return nil, err
		}
		args, err := jsonTable(b.Arguments)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		bd := meta.Binding{Vhost: vh, Source: src, Destination: dst, DestinationKind: destKind, RoutingKey: b.RoutingKey, SourceKind: sourceKind(kind)}
		if err := a.opts.Router.Bind(bd, args, ""); err != nil {
			return nil, err
		}
		return created{}, nil
	}
}

// findBinding finds the binding a properties key names.
func (a *API) findBinding(r *http.Request, kind string) (meta.Binding, string, error) {
	vh := pathValue(r, "vhost")
	src, dst, destKind := bindingPath(r, kind)
	props := pathValue(r, "props")
	for _, b := range a.opts.Meta.Bindings(vh) {
		if b.Source == src && b.Destination == dst && b.DestinationKind == destKind && b.SourceKind == sourceKind(kind) {
			if k := propertiesKey(b.RoutingKey, b.Arguments); k == props || unescape(k) == props {
				return b, vh, nil
			}
		}
	}
	return meta.Binding{}, vh, notFound()
}

func unescape(s string) string {
	if strings.Contains(s, "%") {
		if u, err := url.PathUnescape(s); err == nil {
			return u
		}
	}
	return s
}

func (a *API) getBinding(kind string) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		if _, err := s.vhostParam(r); err != nil {
			return nil, err
		}
		b, _, err := a.findBinding(r, kind)
		if err != nil {
			return nil, err
		}
		return bindingJSON(b), nil
	}
}

func (a *API) deleteBinding(kind string) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		if _, err := s.vhostParam(r); err != nil {
			return nil, err
		}
		b, vh, err := a.findBinding(r, kind)
		if err != nil {
			return nil, err
		}
		if err := s.checkBindingAccess(vh, b.Source, b.Destination, b.DestinationKind); err != nil {
			return nil, err
		}
		if err := a.opts.Router.Unbind(b, decodeArgs(b.Arguments), ""); err != nil {
			return nil, err
		}
		return noContent{}, nil
	}
}

// topicViewExchange finds the super stream exchange of a topic.
func topicViewExchange(r *broker.Router, vh, name string) (meta.Exchange, bool) {
	for _, e := range r.TopicViewExchanges(vh) {
		if e.Name == name {
			return e, true
		}
	}
	return meta.Exchange{}, false
}
