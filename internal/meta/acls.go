package meta

import (
	"cmp"
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
)

// Kafka ACLs (auth.ACL): stored as they are created, independent of users
// (a principal may be a certificate's name that is no user). The state
// keeps them as one sorted, duplicate-free slice that is replaced, never
// changed in place, so that a reader may keep the slice it was given
// (Store.ACLs) without a copy.

// CreateACLsCmd adds ACLs; one already stored is kept once.
type CreateACLsCmd struct {
	ACLs []auth.ACL `json:"acls"`
}

// DeleteACLsCmd removes the listed ACLs that are stored and ignores the
// others. The proposer resolves Kafka's filters into the ACLs they select
// (Store.DeleteACLs), so that the command says exactly what it removes.
type DeleteACLsCmd struct {
	ACLs []auth.ACL `json:"acls"`
}

func validateACLs(acls []auth.ACL) error {
	for _, a := range acls {
		if err := validUTF8(a.ResourceName, a.Principal, a.Host); err != nil {
			return err
		}
		if err := a.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c *CreateACLsCmd) validate() error { return validateACLs(c.ACLs) }
func (c *DeleteACLsCmd) validate() error { return validateACLs(c.ACLs) }

func (c *CreateACLsCmd) check(*State) error { return c.validate() }
func (c *DeleteACLsCmd) check(*State) error { return c.validate() }

func (c *CreateACLsCmd) apply(st *State) Result {
	next := slices.Concat(st.acls, c.ACLs)
	slices.SortFunc(next, compareACL)
	st.acls = nilIfEmpty(slices.Compact(next))
	return Result{}
}

func (c *DeleteACLsCmd) apply(st *State) Result {
	next := slices.Clone(st.acls)
	next = slices.DeleteFunc(next, func(a auth.ACL) bool { return slices.Contains(c.ACLs, a) })
	st.acls = nilIfEmpty(next)
	return Result{}
}

// compareACL orders ACLs by resource type, name, pattern type, principal,
// host, operation, then permission: the snapshot's order.
func compareACL(a, b auth.ACL) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType),
		cmp.Compare(a.Principal, b.Principal),
		cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// CreateACLs stores acls, all or none: an error wrapping
// auth.ErrInvalidACL if one is malformed.
func (s *Store) CreateACLs(acls []auth.ACL) error {
	_, err := s.propose(NewCommand(&CreateACLsCmd{ACLs: acls}))
	return err
}

// DeleteACLs removes the stored ACLs each filter selects and returns them,
// per filter (an ACL selected by two filters is listed under both). When
// nothing matches, nothing is written.
func (s *Store) DeleteACLs(filters []auth.ACLFilter) ([][]auth.ACL, error) {
	s.mu.RLock()
	out := make([][]auth.ACL, len(filters))
	var all []auth.ACL
	for i, f := range filters {
		for _, a := range s.state.acls {
			if f.Matches(a) {
				out[i] = append(out[i], a)
				if !slices.Contains(all, a) {
					all = append(all, a)
				}
			}
		}
	}
	s.mu.RUnlock()
	if len(all) == 0 {
		return out, nil
	}
	if _, err := s.propose(NewCommand(&DeleteACLsCmd{ACLs: all})); err != nil {
		return nil, err
	}
	return out, nil
}

// ACLs returns the stored ACLs, sorted. The slice is shared: callers must
// not change it.
func (s *Store) ACLs() []auth.ACL {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.acls
}

// ACLs returns the state's ACLs, sorted (shared, read-only).
func (st *State) ACLs() []auth.ACL { return st.acls }
