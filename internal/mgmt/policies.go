package mgmt

import (
	"encoding/json"
	"net/http"

	"github.com/sluice-mq/sluice/internal/broker"
)

// Policies and operator policies, in RabbitMQ's shapes:
//
//	GET    /api/policies[/{vhost}]                  policymaker: the vhosts it may see
//	GET    /api/policies/{vhost}/{name}
//	PUT    /api/policies/{vhost}/{name}             {"pattern", "definition", "priority", "apply-to"}
//	DELETE /api/policies/{vhost}/{name}
//	...    /api/operator-policies/...               the same, administrator only
//
// A PUT answers 201 when it creates the policy and 204 when it replaces
// one; the policy applies at once to the vhost's queues and exchanges.

// policyJSON is a policy as RabbitMQ lists it.
func policyJSON(p broker.Policy) map[string]any {
	var def any = map[string]any{}
	if len(p.Definition) > 0 {
		def = json.RawMessage(p.Definition)
	}
	return map[string]any{
		"vhost": p.Vhost, "name": p.Name, "pattern": p.Pattern,
		"apply-to": p.ApplyTo, "definition": def, "priority": p.Priority,
	}
}

// policyBody is a PUT's body (and a definitions file's entry).
type policyBody struct {
	Pattern    *string         `json:"pattern"`
	Definition json.RawMessage `json:"definition"`
	Priority   json.Number     `json:"priority"`
	ApplyTo    string          `json:"apply-to"`
}

// policy checks a body's fields and returns the policy it describes.
func (b *policyBody) policy(vh, name string) (broker.Policy, error) {
	if b.Pattern == nil {
		return broker.Policy{}, badRequest("policy '%s': pattern is missing", name)
	}
	if len(b.Definition) == 0 {
		return broker.Policy{}, badRequest("policy '%s': definition is missing", name)
	}
	prio := 0
	if b.Priority != "" {
		n, err := b.Priority.Int64()
		if err != nil || n != int64(int32(n)) {
			return broker.Policy{}, badRequest("policy '%s': priority %s is not an integer", name, b.Priority)
		}
		prio = int(n)
	}
	return broker.Policy{Vhost: vh, Name: name, Pattern: *b.Pattern, ApplyTo: b.ApplyTo, Priority: prio, Definition: b.Definition}, nil
}

func (a *API) listPolicies(operator bool) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vhs, err := s.vhostsOf(r)
		if err != nil {
			return nil, err
		}
		out := []map[string]any{}
		for _, vh := range vhs {
			for _, p := range a.opts.Router.Policies(vh, operator) {
				out = append(out, policyJSON(p))
			}
		}
		return out, nil
	}
}

// findPolicy returns the named policy of vh.
func (a *API) findPolicy(vh, name string, operator bool) (broker.Policy, bool) {
	for _, p := range a.opts.Router.Policies(vh, operator) {
		if p.Name == name {
			return p, true
		}
	}
	return broker.Policy{}, false
}

func (a *API) getPolicy(operator bool) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		p, ok := a.findPolicy(vh, pathValue(r, "name"), operator)
		if !ok {
			return nil, notFound()
		}
		return policyJSON(p), nil
	}
}

func (a *API) putPolicy(operator bool) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		name := pathValue(r, "name")
		var b policyBody
		if err := decodeBody(r, &b); err != nil {
			return nil, err
		}
		p, err := b.policy(vh, name)
		if err != nil {
			return nil, err
		}
		_, existed := a.findPolicy(vh, name, operator)
		if err := a.opts.Router.SetPolicy(p, operator); err != nil {
			return nil, err
		}
		if existed {
			return noContent{}, nil
		}
		return created{}, nil
	}
}

func (a *API) deletePolicy(operator bool) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		vh, err := s.vhostParam(r)
		if err != nil {
			return nil, err
		}
		if err := a.opts.Router.ClearPolicy(vh, pathValue(r, "name"), operator); err != nil {
			return nil, err
		}
		return noContent{}, nil
	}
}

// policyFields are the fields RabbitMQ lists queues and exchanges with.
func policyFields(m map[string]any, ap broker.AppliedPolicy) {
	var pol, op any // null when none, as in RabbitMQ
	if ap.Policy != "" {
		pol = ap.Policy
	}
	if ap.OperatorPolicy != "" {
		op = ap.OperatorPolicy
	}
	m["policy"], m["operator_policy"], m["effective_policy_definition"] = pol, op, ap.Effective
}
