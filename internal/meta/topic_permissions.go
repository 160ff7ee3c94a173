package meta

import (
	"cmp"
	"maps"
	"slices"
)

// Topic permissions are RabbitMQ's topic authorisation: per user, vhost and
// exchange, a write and a read regular expression over routing keys, which
// the broker checks on topic exchanges (docs/security.md). Meta stores them
// like permissions: they need an existing user and vhost and go with
// either; the exchange need not exist (RabbitMQ does not require it).

// TopicPermission is a user's topic permission on one exchange of a vhost.
type TopicPermission struct {
	User     string `json:"user"`
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

type topicPermKey struct{ user, vhost, exchange string }

// SetTopicPermissionCmd sets (replaces) a user's topic permission on an
// exchange of a vhost.
type SetTopicPermissionCmd TopicPermission

// ClearTopicPermissionCmd removes a user's topic permission on Exchange in
// Vhost, or on every exchange of it when Exchange is "".
type ClearTopicPermissionCmd struct {
	User     string `json:"user"`
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange,omitempty"`
}

func (c *SetTopicPermissionCmd) validate() error {
	return validUTF8(c.User, c.Vhost, c.Exchange, c.Write, c.Read)
}

func (c *SetTopicPermissionCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := st.user(c.User); err != nil {
		return err
	}
	_, err := st.vhost(c.Vhost)
	return err
}

func (c *SetTopicPermissionCmd) apply(st *State) Result {
	if st.topicPerms == nil {
		st.topicPerms = make(map[topicPermKey]TopicPermission)
	}
	st.topicPerms[topicPermKey{c.User, c.Vhost, c.Exchange}] = TopicPermission(*c)
	return Result{}
}

func (c *ClearTopicPermissionCmd) validate() error { return validUTF8(c.User, c.Vhost, c.Exchange) }

func (c *ClearTopicPermissionCmd) check(*State) error { return c.validate() }

func (c *ClearTopicPermissionCmd) apply(st *State) Result {
	maps.DeleteFunc(st.topicPerms, func(k topicPermKey, _ TopicPermission) bool {
		return k.user == c.User && k.vhost == c.Vhost && (c.Exchange == "" || k.exchange == c.Exchange)
	})
	return Result{}
}

// dropTopicPermissions removes the topic permissions of a deleted user or
// vhost (either name may be "" to match any).
func (st *State) dropTopicPermissions(user, vhost string) {
	maps.DeleteFunc(st.topicPerms, func(k topicPermKey, _ TopicPermission) bool {
		return (user == "" || k.user == user) && (vhost == "" || k.vhost == vhost)
	})
}

// TopicPermissions returns the topic permissions of user in vhost, or all
// of them for "" and "", sorted by user, vhost, then exchange.
func (st *State) TopicPermissions(user, vhost string) []TopicPermission {
	var out []TopicPermission
	for k, p := range st.topicPerms {
		if (user == "" || k.user == user) && (vhost == "" || k.vhost == vhost) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b TopicPermission) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Vhost, b.Vhost), cmp.Compare(a.Exchange, b.Exchange))
	})
	return out
}

// SetTopicPermission sets p.User's topic permission on p.Exchange in
// p.Vhost, replacing any (ErrUnknownUser, ErrUnknownVhost).
func (s *Store) SetTopicPermission(p TopicPermission) error {
	_, err := s.propose(NewCommand((*SetTopicPermissionCmd)(&p)))
	return err
}

// ClearTopicPermission removes user's topic permission on exchange in
// vhost, or all of them in vhost for exchange "". Clearing nothing writes
// nothing.
func (s *Store) ClearTopicPermission(user, vhost, exchange string) error {
	return s.proposeUnlessNoop(NewCommand(&ClearTopicPermissionCmd{User: user, Vhost: vhost, Exchange: exchange}), func(st *State) bool {
		for k := range st.topicPerms {
			if k.user == user && k.vhost == vhost && (exchange == "" || k.exchange == exchange) {
				return false
			}
		}
		return true
	})
}

// TopicPermissions returns the topic permissions of user in vhost ("" for
// any), sorted by user, vhost, then exchange.
func (s *Store) TopicPermissions(user, vhost string) []TopicPermission {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.TopicPermissions(user, vhost)
}
