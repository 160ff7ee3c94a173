package mgmt

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
)

// Definitions export and import, in RabbitMQ's definitions-file format.
// Policies and topic permissions are exported and imported. Vhost and
// user limits go as RabbitMQ exports them: a vhost's as a parameter of
// component "vhost-limits" named "limits" (its value the limits,
// {"max-connections": 10}), a user's as the "limits" object of its user;
// other parameters are exported empty and ignored on import: Sluice has
// none.

func predeclared(name string) bool { return name == "" || strings.HasPrefix(name, "amq.") }

func (a *API) exportDefinitions(r *http.Request, s *session) (any, error) {
	vhs, err := s.vhostsOf(r)
	if err != nil {
		return nil, err
	}
	one := pathValue(r, "vhost") != ""
	out := map[string]any{
		"rabbit_version": RabbitMQVersion, "rabbitmq_version": RabbitMQVersion,
		"product_name": "Sluice", "product_version": a.opts.Version,
		"parameters": []any{}, "global_parameters": []any{},
	}
	if !one {
		users := []map[string]any{}
		userLimits := limitsByName(a.opts.Meta.Limits(meta.LimitUser))
		for _, u := range a.opts.Meta.Users() {
			m := userJSON(u)
			if l := userLimits[u.Name]; l != nil {
				m["limits"] = l
			}
			users = append(users, m)
		}
		vhosts := []map[string]any{}
		for _, v := range a.opts.Meta.Vhosts() {
			tags := v.Tags
			if tags == nil {
				tags = []string{}
			}
			vhosts = append(vhosts, map[string]any{"name": v.Name, "description": v.Description, "tags": tags, "limits": []any{}, "metadata": map[string]any{"description": v.Description, "tags": tags}})
		}
		perms := []map[string]any{}
		for _, p := range a.opts.Meta.Permissions() {
			perms = append(perms, permissionJSON(p))
		}
		out["users"], out["vhosts"], out["permissions"] = users, vhosts, perms
		out["topic_permissions"] = topicPermissionsJSON(a.opts.Meta.TopicPermissions("", ""))
	}
	exchanges, queues, bindings, policies := []map[string]any{}, []map[string]any{}, []map[string]any{}, []map[string]any{}
	params := []map[string]any{}
	vhostLimits := limitsByName(a.opts.Meta.Limits(meta.LimitVhost))
	for _, vh := range vhs {
		if l := vhostLimits[vh]; l != nil {
			m := map[string]any{"component": vhostLimitsComponent, "name": "limits", "value": l}
			if !one {
				m["vhost"] = vh
			}
			params = append(params, m)
		}
		for _, p := range a.opts.Router.Policies(vh, false) {
			m := policyJSON(p)
			if one {
				delete(m, "vhost")
			}
			policies = append(policies, m)
		}
		for _, e := range a.opts.Meta.Exchanges(vh) {
			if predeclared(e.Name) {
				continue
			}
			m := map[string]any{"name": e.Name, "type": e.Type, "durable": e.Durable, "auto_delete": e.AutoDelete, "internal": e.Internal, "arguments": tableJSON(decodeArgs(e.Arguments))}
			if !one {
				m["vhost"] = vh
			}
			exchanges = append(exchanges, m)
		}
		for _, q := range a.opts.Meta.Queues(vh) {
			if q.Exclusive {
				continue
			}
			m := map[string]any{"name": q.Name, "durable": q.Durable, "auto_delete": q.AutoDelete, "arguments": tableJSON(decodeArgs(q.Arguments))}
			if !one {
				m["vhost"] = vh
			}
			queues = append(queues, m)
		}
		for _, b := range a.opts.Meta.Bindings(vh) {
			m := map[string]any{"source": b.Source, "destination": b.Destination, "destination_type": b.DestinationKind, "routing_key": b.RoutingKey, "arguments": tableJSON(decodeArgs(b.Arguments))}
			if b.SourceKind != "" {
				m["source_type"] = b.SourceKind // Sluice's own: a topic bound to a queue
			}
			if !one {
				m["vhost"] = vh
			}
			bindings = append(bindings, m)
		}
	}
	out["exchanges"], out["queues"], out["bindings"], out["policies"] = exchanges, queues, bindings, policies
	out["parameters"] = params
	return out, nil
}

// vhostLimitsComponent is the parameter component RabbitMQ keeps a
// vhost's limits in, and exports them as.
const vhostLimitsComponent = "vhost-limits"

// limitsByName groups limits by vhost or user name: {"/":
// {"max-connections": 10}}.
func limitsByName(limits []meta.Limit) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, l := range limits {
		if out[l.Name] == nil {
			out[l.Name] = map[string]int64{}
		}
		out[l.Name][l.Key] = l.Value
	}
	return out
}

// importLimits sets the limits of a vhost or user from a definitions
// file, each as PUT /api/{vhost,user}-limits would.
func (a *API) importLimits(kind, name string, limits map[string]int64) error {
	keys := make([]string, 0, len(limits))
	for k := range limits {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		err := a.opts.Meta.SetLimit(meta.Limit{Kind: kind, Name: name, Key: k, Value: limits[k]})
		switch {
		case errors.Is(err, meta.ErrUnknownVhost), errors.Is(err, meta.ErrUnknownUser):
			return badRequest("%s '%s' does not exist", kind, name)
		case errors.Is(err, meta.ErrInvalidCommand):
			return badRequest("%s '%s': unknown limit '%s'", kind, name, k)
		case err != nil:
			return err
		}
	}
	return nil
}

type definitions struct {
	Users []struct {
		Name             string  `json:"name"`
		PasswordHash     string  `json:"password_hash"`
		HashingAlgorithm string  `json:"hashing_algorithm"`
		Tags             tagList `json:"tags"`
		// Limits are the user's limits, RabbitMQ's {"max-connections": 2}.
		Limits map[string]int64 `json:"limits"`
	} `json:"users"`
	// Parameters: those of component "vhost-limits" are a vhost's
	// limits; others are ignored.
	Parameters []struct {
		Vhost     string          `json:"vhost"`
		Component string          `json:"component"`
		Value     json.RawMessage `json:"value"`
	} `json:"parameters"`
	Vhosts []struct {
		Name        string  `json:"name"`
		Description string  `json:"description"`
		Tags        tagList `json:"tags"`
	} `json:"vhosts"`
	Permissions      []permissionBody2 `json:"permissions"`
	TopicPermissions []struct {
		User  string `json:"user"`
		Vhost string `json:"vhost"`
		topicPermissionBody
	} `json:"topic_permissions"`
	Exchanges []struct {
		Vhost string `json:"vhost"`
		Name  string `json:"name"`
		exchangeBody
	} `json:"exchanges"`
	Queues []struct {
		Vhost string `json:"vhost"`
		Name  string `json:"name"`
		queueBody
	} `json:"queues"`
	Bindings []struct {
		Vhost           string `json:"vhost"`
		Source          string `json:"source"`
		Destination     string `json:"destination"`
		DestinationType string `json:"destination_type"`
		SourceType      string `json:"source_type"` // Sluice's own: "topic" for a topic bound to a queue
		bindingBody
	} `json:"bindings"`
	Policies []struct {
		Vhost string `json:"vhost"`
		Name  string `json:"name"`
		policyBody
	} `json:"policies"`
}

type permissionBody2 struct {
	User  string `json:"user"`
	Vhost string `json:"vhost"`
	permissionBody
}

// importDefinitions applies a definitions file: vhosts, users (with their
// limits) and permissions first, then vhost limits, policies, exchanges, queues and bindings, each through the
// same path as the API's own PUT and POST. The first error stops it and is
// returned (what came before stays applied, as in RabbitMQ).
func (a *API) importDefinitions(r *http.Request, s *session) (any, error) {
	var d definitions
	if err := decodeBody(r, &d); err != nil {
		return nil, err
	}
	only := ""
	if pathValue(r, "vhost") != "" {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		only = vh
	}
	vhostOf := func(v string) string {
		if only != "" {
			return only
		}
		return v
	}
	if only == "" {
		for _, v := range d.Vhosts {
			if err := a.opts.Router.AddVhost(v.Name); err != nil {
				return nil, err
			}
			if v.Description != "" || len(v.Tags) > 0 {
				if err := a.opts.Meta.PutVhost(meta.Vhost{Name: v.Name, Description: v.Description, Tags: v.Tags}); err != nil {
					return nil, err
				}
			}
		}
		for _, u := range d.Users {
			if u.HashingAlgorithm != "" && u.HashingAlgorithm != "rabbit_password_hashing_sha256" {
				return nil, badRequest("user '%s': unsupported hashing_algorithm '%s'", u.Name, u.HashingAlgorithm)
			}
			if err := a.opts.Meta.PutUser(meta.User{Name: u.Name, PasswordHash: u.PasswordHash, Tags: u.Tags}); err != nil {
				return nil, err
			}
			if err := a.importLimits(meta.LimitUser, u.Name, u.Limits); err != nil {
				return nil, err
			}
		}
		for _, p := range d.Permissions {
			if err := a.opts.Meta.SetPermission(meta.Permission{User: p.User, Vhost: p.Vhost, Configure: p.Configure, Write: p.Write, Read: p.Read}); err != nil {
				return nil, badRequest("permission for '%s' in '%s': %v", p.User, p.Vhost, err)
			}
		}
		for _, p := range d.TopicPermissions {
			if err := a.opts.Meta.SetTopicPermission(meta.TopicPermission{User: p.User, Vhost: p.Vhost, Exchange: p.Exchange, Write: p.Write, Read: p.Read}); err != nil {
				return nil, badRequest("topic permission for '%s' in '%s': %v", p.User, p.Vhost, err)
			}
		}
	}
	for _, p := range d.Parameters {
		if p.Component != vhostLimitsComponent {
			continue
		}
		var limits map[string]int64
		if err := json.Unmarshal(p.Value, &limits); err != nil {
			return nil, badRequest("vhost-limits of '%s': %v", p.Vhost, err)
		}
		if err := a.importLimits(meta.LimitVhost, vhostOf(p.Vhost), limits); err != nil {
			return nil, err
		}
	}
	for _, p := range d.Policies {
		pol, err := p.policy(vhostOf(p.Vhost), p.Name)
		if err != nil {
			return nil, err
		}
		if err := a.opts.Router.SetPolicy(pol, false); err != nil {
			return nil, err
		}
	}
	for _, e := range d.Exchanges {
		args, err := jsonTable(e.Arguments)
		if err != nil {
			return nil, badRequest("exchange '%s': %v", e.Name, err)
		}
		durable := e.Durable == nil || bool(*e.Durable)
		if err := a.opts.Router.DeclareExchange(vhostOf(e.Vhost), broker.ExchangeDecl{Name: e.Name, Type: e.Type, Durable: durable, AutoDelete: bool(e.AutoDelete), Internal: bool(e.Internal), Arguments: args}); err != nil {
			return nil, err
		}
	}
	for _, q := range d.Queues {
		args, err := jsonTable(q.Arguments)
		if err != nil {
			return nil, badRequest("queue '%s': %v", q.Name, err)
		}
		durable := q.Durable == nil || bool(*q.Durable)
		if _, err := a.opts.Router.DeclareQueue(vhostOf(q.Vhost), broker.QueueDecl{Name: q.Name, Durable: durable, AutoDelete: bool(q.AutoDelete), Arguments: args}); err != nil {
			return nil, err
		}
	}
	for _, b := range d.Bindings {
		args, err := jsonTable(b.Arguments)
		if err != nil {
			return nil, badRequest("binding: %v", err)
		}
		kind := meta.DestQueue
		switch b.DestinationType {
		case "queue", "":
		case "exchange":
			kind = meta.DestExchange
		case "topic": // Sluice's own: the topic must exist already
			kind = meta.DestTopic
		default:
			return nil, badRequest("binding destination_type '%s'", b.DestinationType)
		}
		var srcKind string
		switch b.SourceType {
		case "", "exchange":
		case meta.SourceTopic: // the topic must exist already
			srcKind = meta.SourceTopic
		default:
			return nil, badRequest("binding source_type '%s'", b.SourceType)
		}
		if err := a.opts.Router.Bind(meta.Binding{Vhost: vhostOf(b.Vhost), Source: b.Source, Destination: b.Destination, DestinationKind: kind, RoutingKey: b.RoutingKey, SourceKind: srcKind}, args, ""); err != nil {
			if errors.Is(err, broker.ErrAccessRefused) && b.Source == "" {
				continue // the default exchange's implicit bindings
			}
			return nil, err
		}
	}
	return noContent{}, nil
}
