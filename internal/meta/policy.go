package meta

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Policy is a RabbitMQ policy or operator policy: a set of settings
// (Definition) for the queues and exchanges of a vhost whose names match
// Pattern. Meta stores policies and keeps them in an existing vhost;
// compiling the pattern, checking the definition's keys and applying it
// are the broker's.
type Policy struct {
	Vhost   string `json:"vhost"`
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
	// ApplyTo is "queues", "exchanges", "all", "classic_queues",
	// "quorum_queues" or "streams"; not checked by meta.
	ApplyTo  string `json:"apply_to"`
	Priority int    `json:"priority"`
	// Definition is a JSON object, opaque to meta: the broker stores it
	// compact and with sorted keys, so that equal policies are equal bytes.
	Definition json.RawMessage `json:"definition"`
}

func (p Policy) clone() Policy {
	p.Definition = bytes.Clone(p.Definition)
	return p
}

// validatePolicy refuses what meta cannot store: an empty name, invalid
// UTF-8, a definition that is not a JSON object.
func validatePolicy(p *Policy) error {
	if p.Name == "" {
		return fmt.Errorf("%w: empty policy name", ErrInvalidCommand)
	}
	if d := bytes.TrimSpace(p.Definition); len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		return fmt.Errorf("%w: policy %q: definition is not a JSON object", ErrInvalidCommand, p.Name)
	}
	return validUTF8(p.Vhost, p.Name, p.Pattern, p.ApplyTo)
}

// SetPolicyCmd creates a policy or replaces the one of the same name.
type SetPolicyCmd Policy

// ClearPolicyCmd removes a policy.
type ClearPolicyCmd struct {
	Vhost string `json:"vhost"`
	Name  string `json:"name"`
}

func (c *SetPolicyCmd) validate() error { return validatePolicy((*Policy)(c)) }

func (c *SetPolicyCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := st.vhost(c.Vhost)
	return err
}

func (c *SetPolicyCmd) apply(st *State) Result {
	st.vhosts[c.Vhost].setPolicy(Policy(*c), false)
	return Result{}
}

func (c *ClearPolicyCmd) validate() error { return validUTF8(c.Vhost, c.Name) }

func (c *ClearPolicyCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	return st.checkPolicy(c.Vhost, c.Name, false)
}

func (c *ClearPolicyCmd) apply(st *State) Result {
	delete(st.vhosts[c.Vhost].policies, c.Name)
	return Result{}
}

// setPolicy stores p in v's policies, or its operator policies.
func (v *vhost) setPolicy(p Policy, operator bool) {
	m := &v.policies
	if operator {
		m = &v.opPolicies
	}
	if *m == nil {
		*m = make(map[string]Policy)
	}
	p = p.clone()
	p.Definition = nilIfEmpty(p.Definition)
	(*m)[p.Name] = p
}

// checkPolicy refuses an unknown vhost or policy.
func (st *State) checkPolicy(vhost, name string, operator bool) error {
	v, err := st.vhost(vhost)
	if err != nil {
		return err
	}
	m := v.policies
	if operator {
		m = v.opPolicies
	}
	if _, ok := m[name]; !ok {
		return fmt.Errorf("%w: %q in vhost %q", ErrUnknownPolicy, name, vhost)
	}
	return nil
}

// policies returns a vhost's policies ("": every vhost's), or its
// operator policies, sorted by vhost, then name.
func (st *State) policies(vhost string, operator bool) []Policy {
	out := []Policy{}
	for _, v := range st.vhostsFor(vhost) {
		m := v.policies
		if operator {
			m = v.opPolicies
		}
		for _, name := range slices.Sorted(maps.Keys(m)) {
			out = append(out, m[name].clone())
		}
	}
	slices.SortStableFunc(out, func(a, b Policy) int { return cmp.Compare(a.Vhost, b.Vhost) })
	return out
}

// Policies returns a vhost's policies ("": every vhost's), sorted by
// vhost, then name.
func (st *State) Policies(vhost string) []Policy { return st.policies(vhost, false) }

// OperatorPolicies returns a vhost's operator policies ("": every
// vhost's), sorted by vhost, then name.
func (st *State) OperatorPolicies(vhost string) []Policy { return st.policies(vhost, true) }

// SetPolicy creates the policy p.Name in p.Vhost (ErrUnknownVhost), or
// replaces it.
func (s *Store) SetPolicy(p Policy) error {
	_, err := s.propose(NewCommand((*SetPolicyCmd)(&p)))
	return err
}

// ClearPolicy removes a policy (ErrUnknownVhost, ErrUnknownPolicy).
func (s *Store) ClearPolicy(vhost, name string) error {
	_, err := s.propose(NewCommand(&ClearPolicyCmd{Vhost: vhost, Name: name}))
	return err
}

// Policies returns copies of a vhost's policies, or of every vhost's for
// "", sorted by vhost, then name.
func (s *Store) Policies(vhost string) []Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Policies(vhost)
}
