package meta

// Operator policies are policies an operator sets to cap what users and
// applications ask for (docs/management-api.md); meta stores them apart
// from the users' policies, under the same rules.

// SetOperatorPolicyCmd creates an operator policy or replaces the one of
// the same name.
type SetOperatorPolicyCmd Policy

// ClearOperatorPolicyCmd removes an operator policy.
type ClearOperatorPolicyCmd struct {
	Vhost string `json:"vhost"`
	Name  string `json:"name"`
}

func (c *SetOperatorPolicyCmd) validate() error { return validatePolicy((*Policy)(c)) }

func (c *SetOperatorPolicyCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := st.vhost(c.Vhost)
	return err
}

func (c *SetOperatorPolicyCmd) apply(st *State) Result {
	st.vhosts[c.Vhost].setPolicy(Policy(*c), true)
	return Result{}
}

func (c *ClearOperatorPolicyCmd) validate() error { return validUTF8(c.Vhost, c.Name) }

func (c *ClearOperatorPolicyCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	return st.checkPolicy(c.Vhost, c.Name, true)
}

func (c *ClearOperatorPolicyCmd) apply(st *State) Result {
	delete(st.vhosts[c.Vhost].opPolicies, c.Name)
	return Result{}
}

// SetOperatorPolicy creates the operator policy p.Name in p.Vhost
// (ErrUnknownVhost), or replaces it.
func (s *Store) SetOperatorPolicy(p Policy) error {
	_, err := s.propose(NewCommand((*SetOperatorPolicyCmd)(&p)))
	return err
}

// ClearOperatorPolicy removes an operator policy (ErrUnknownVhost,
// ErrUnknownPolicy).
func (s *Store) ClearOperatorPolicy(vhost, name string) error {
	_, err := s.propose(NewCommand(&ClearOperatorPolicyCmd{Vhost: vhost, Name: name}))
	return err
}

// OperatorPolicies returns copies of a vhost's operator policies, or of
// every vhost's for "", sorted by vhost, then name.
func (s *Store) OperatorPolicies(vhost string) []Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.OperatorPolicies(vhost)
}
