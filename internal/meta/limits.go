package meta

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Limits and client quotas (docs/security.md, "Limits and quotas").
//
// A Limit is one of RabbitMQ's vhost or user limits: a vhost's
// max-connections and max-queues, a user's max-connections and
// max-channels. A negative value is RabbitMQ's -1, no limit; a limit
// never set is none. A vhost's or user's limits go with it when it is
// deleted.
//
// A client quota is one of Kafka's client quotas (KIP-546): rates per
// user, client id or both, each part a name or the default entity, with
// the keys producer_byte_rate, consumer_byte_rate and request_percentage.

// Limit kinds and keys.
const (
	LimitVhost = "vhost"
	LimitUser  = "user"
)

// limitKeys are the keys each kind of limit takes.
var limitKeys = map[string][]string{
	LimitVhost: {"max-connections", "max-queues"},
	LimitUser:  {"max-connections", "max-channels"},
}

// Limit is one limit on a vhost or user.
type Limit struct {
	Kind  string `json:"kind"` // LimitVhost or LimitUser
	Name  string `json:"name"` // the vhost's or user's
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

type limitKey struct{ kind, name, key string }

func (l *Limit) key() limitKey { return limitKey{l.Kind, l.Name, l.Key} }

// SetLimitCmd sets one limit. Refused for an unknown vhost or user or a
// key its kind does not take.
type SetLimitCmd Limit

func (c *SetLimitCmd) check(st *State) error {
	if !slices.Contains(limitKeys[c.Kind], c.Key) {
		return fmt.Errorf("%w: no %s limit %q", ErrInvalidCommand, c.Kind, c.Key)
	}
	if err := validUTF8(c.Name); err != nil {
		return err
	}
	return st.limitTarget(c.Kind, c.Name)
}

func (c *SetLimitCmd) apply(st *State) Result {
	l := Limit(*c)
	st.limits[l.key()] = l
	return Result{}
}

// ClearLimitCmd removes one limit (none set: nothing happens).
type ClearLimitCmd struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Key  string `json:"key"`
}

func (c *ClearLimitCmd) check(st *State) error {
	if _, ok := limitKeys[c.Kind]; !ok {
		return fmt.Errorf("%w: no limit kind %q", ErrInvalidCommand, c.Kind)
	}
	return nil
}

func (c *ClearLimitCmd) apply(st *State) Result {
	delete(st.limits, limitKey{c.Kind, c.Name, c.Key})
	return Result{}
}

// limitTarget reports whether the vhost or user a limit is for exists.
func (st *State) limitTarget(kind, name string) error {
	if kind == LimitVhost {
		if _, ok := st.vhosts[name]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownVhost, name)
		}
		return nil
	}
	return st.user(name)
}

// dropLimits forgets the limits of a deleted vhost or user.
func (st *State) dropLimits(kind, name string) {
	maps.DeleteFunc(st.limits, func(k limitKey, _ Limit) bool { return k.kind == kind && k.name == name })
}

// listLimits returns the limits of kind (all kinds for ""), sorted.
func (st *State) listLimits(kind string) []Limit {
	var out []Limit
	for k, l := range st.limits {
		if kind == "" || k.kind == kind {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Limit) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// SetLimit sets a vhost or user limit (see SetLimitCmd).
func (s *Store) SetLimit(l Limit) error {
	c := SetLimitCmd(l)
	_, err := s.propose(NewCommand(&c))
	return err
}

// ClearLimit removes a vhost or user limit.
func (s *Store) ClearLimit(kind, name, key string) error {
	_, err := s.propose(NewCommand(&ClearLimitCmd{Kind: kind, Name: name, Key: key}))
	return err
}

// Limits returns the limits of kind (every kind for ""), sorted by kind,
// name and key.
func (s *Store) Limits(kind string) []Limit {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.listLimits(kind)
}

// Limit returns the value of one limit; ok is false when it is not set
// or negative (no limit).
func (s *Store) Limit(kind, name, key string) (value int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.state.limits[limitKey{kind, name, key}]
	return l.Value, ok && l.Value >= 0
}

// Client quota entity types and keys (Kafka's names).
const (
	QuotaUser     = "user"
	QuotaClientID = "client-id"
)

// quotaKeys are the quota keys Sluice enforces.
var quotaKeys = []string{"producer_byte_rate", "consumer_byte_rate", "request_percentage"}

// QuotaKeyValid reports whether key is a client quota Sluice stores.
func QuotaKeyValid(key string) bool { return slices.Contains(quotaKeys, key) }

// QuotaEntityPart is one part of a client quota's entity: a type (user,
// client-id) with a name, or the type's default entity.
type QuotaEntityPart struct {
	Type    string `json:"type"`
	Name    string `json:"name,omitempty"`
	Default bool   `json:"default,omitempty"`
}

// ClientQuota is the quotas of one entity.
type ClientQuota struct {
	Entity []QuotaEntityPart  `json:"entity"` // sorted by type, each type once
	Values map[string]float64 `json:"values"`
}

// quotaEntityKey is an entity's map key: its parts in order.
func quotaEntityKey(e []QuotaEntityPart) string {
	var b strings.Builder
	for _, p := range e {
		fmt.Fprintf(&b, "%s\x00%t\x00%s\x00", p.Type, p.Default, p.Name)
	}
	return b.String()
}

// AlterClientQuotasCmd sets then removes quota values of one entity; an
// entity left with none disappears.
type AlterClientQuotasCmd struct {
	Entity []QuotaEntityPart  `json:"entity"`
	Set    map[string]float64 `json:"set,omitempty"`
	Remove []string           `json:"remove,omitempty"`
}

func (c *AlterClientQuotasCmd) check(*State) error {
	if len(c.Entity) == 0 {
		return fmt.Errorf("%w: empty quota entity", ErrInvalidCommand)
	}
	for i, p := range c.Entity {
		if p.Type != QuotaUser && p.Type != QuotaClientID {
			return fmt.Errorf("%w: quota entity type %q", ErrInvalidCommand, p.Type)
		}
		if i > 0 && c.Entity[i-1].Type >= p.Type {
			return fmt.Errorf("%w: quota entity types unsorted or repeated", ErrInvalidCommand)
		}
		if p.Default && p.Name != "" {
			return fmt.Errorf("%w: a default quota entity has no name", ErrInvalidCommand)
		}
		if err := validUTF8(p.Name); err != nil {
			return err
		}
	}
	for k, v := range c.Set {
		if !QuotaKeyValid(k) || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("%w: quota %s = %v", ErrInvalidCommand, k, v)
		}
	}
	return nil
}

func (c *AlterClientQuotasCmd) apply(st *State) Result {
	key := quotaEntityKey(c.Entity)
	q, ok := st.quotas[key]
	if !ok {
		q = ClientQuota{Entity: slices.Clone(c.Entity)}
	}
	values := maps.Clone(q.Values)
	if values == nil {
		values = make(map[string]float64, len(c.Set))
	}
	maps.Copy(values, c.Set)
	for _, k := range c.Remove {
		delete(values, k)
	}
	if len(values) == 0 {
		delete(st.quotas, key)
		return Result{}
	}
	q.Values = values
	st.quotas[key] = q
	return Result{}
}

// listQuotas returns every entity's quotas, sorted by entity.
func (st *State) listQuotas() []ClientQuota {
	keys := slices.Sorted(maps.Keys(st.quotas))
	out := make([]ClientQuota, 0, len(keys))
	for _, k := range keys {
		q := st.quotas[k]
		out = append(out, ClientQuota{Entity: slices.Clone(q.Entity), Values: maps.Clone(q.Values)})
	}
	return out
}

// AlterClientQuotas changes one entity's client quotas (see
// AlterClientQuotasCmd).
func (s *Store) AlterClientQuotas(entity []QuotaEntityPart, set map[string]float64, remove []string) error {
	_, err := s.propose(NewCommand(&AlterClientQuotasCmd{Entity: entity, Set: set, Remove: remove}))
	return err
}

// ClientQuotas returns every entity's client quotas, sorted by entity.
func (s *Store) ClientQuotas() []ClientQuota {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.listQuotas()
}

// loadLimits adds the limits and quotas of a snapshot by applying the
// commands that set them, whose checks refuse what no log could hold.
func (st *State) loadLimits(j *stateJSON) error {
	for _, l := range j.Limits {
		c := SetLimitCmd(l)
		if _, dup := st.limits[l.key()]; dup {
			return fmt.Errorf("meta: state: duplicate %s limit %s of %q", l.Kind, l.Key, l.Name)
		}
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: limit: %w", err)
		}
		c.apply(st)
	}
	for _, q := range j.ClientQuotas {
		c := AlterClientQuotasCmd{Entity: q.Entity, Set: q.Values}
		if _, dup := st.quotas[quotaEntityKey(q.Entity)]; dup || len(q.Values) == 0 {
			return fmt.Errorf("meta: state: duplicate or empty client quota entity")
		}
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: client quota: %w", err)
		}
		c.apply(st)
	}
	return nil
}
