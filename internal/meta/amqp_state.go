package meta

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// vhost is a vhost with the definitions that live in it.
type vhost struct {
	def       Vhost
	exchanges map[string]Exchange
	queues    map[string]Queue
	bindings  map[bindingKey]struct{}
	// policies and operator policies by name (policy.go); nil until set
	policies, opPolicies map[string]Policy
}

type permKey struct{ user, vhost string }

type queueRef struct{ vhost, name string }

// All payload errors below are checked by validate, from the payload alone:
// an error wrapping ErrInvalidCommand must never depend on the state, or a
// command accepted when proposed could stop replay.

func (st *State) vhost(name string) (*vhost, error) {
	v, ok := st.vhosts[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownVhost, name)
	}
	return v, nil
}

func (st *State) user(name string) error {
	if _, ok := st.users[name]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownUser, name)
	}
	return nil
}

func (v *vhost) exchange(name string) error {
	if _, ok := v.exchanges[name]; !ok {
		return fmt.Errorf("%w: %q in vhost %q", ErrUnknownExchange, name, v.def.Name)
	}
	return nil
}

func (v *vhost) queue(name string) error {
	if _, ok := v.queues[name]; !ok {
		return fmt.Errorf("%w: %q in vhost %q", ErrUnknownQueue, name, v.def.Name)
	}
	return nil
}

// deleteQueue removes a queue and the bindings to it.
func (st *State) deleteQueue(v *vhost, name string) {
	q, ok := v.queues[name]
	if !ok {
		return
	}
	delete(v.queues, name)
	delete(st.queueIDs, q.ID)
	maps.DeleteFunc(v.bindings, func(k bindingKey, _ struct{}) bool {
		return k.DestinationKind == DestQueue && k.Destination == name
	})
}

func (c *PutVhostCmd) validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: empty vhost name", ErrInvalidCommand)
	}
	return validUTF8(append([]string{c.Name, c.Description}, c.Tags...)...)
}

func (c *PutVhostCmd) check(*State) error { return c.validate() }

func (c *PutVhostCmd) apply(st *State) Result {
	def := Vhost(*c).clone()
	if v, ok := st.vhosts[c.Name]; ok {
		v.def = def
		return Result{}
	}
	st.vhosts[c.Name] = &vhost{
		def:       def,
		exchanges: make(map[string]Exchange),
		queues:    make(map[string]Queue),
		bindings:  make(map[bindingKey]struct{}),
	}
	return Result{}
}

func (c *DeleteVhostCmd) validate() error { return validUTF8(c.Name) }

func (c *DeleteVhostCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := st.vhost(c.Name)
	return err
}

func (c *DeleteVhostCmd) apply(st *State) Result {
	for _, q := range st.vhosts[c.Name].queues {
		delete(st.queueIDs, q.ID)
	}
	delete(st.vhosts, c.Name)
	maps.DeleteFunc(st.perms, func(k permKey, _ Permission) bool { return k.vhost == c.Name })
	st.dropTopicPermissions("", c.Name)
	return Result{}
}

func (c *PutUserCmd) validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: empty user name", ErrInvalidCommand)
	}
	seen := map[string]bool{}
	for _, sc := range c.Scram {
		switch {
		case sc.Mechanism != "SCRAM-SHA-256" && sc.Mechanism != "SCRAM-SHA-512":
			return fmt.Errorf("%w: user %q: unknown SCRAM mechanism %q", ErrInvalidCommand, c.Name, sc.Mechanism)
		case seen[sc.Mechanism]:
			return fmt.Errorf("%w: user %q: two %s credentials", ErrInvalidCommand, c.Name, sc.Mechanism)
		case sc.Iterations < 1 || len(sc.Salt) == 0 || len(sc.StoredKey) == 0 || len(sc.ServerKey) == 0:
			return fmt.Errorf("%w: user %q: incomplete %s credential", ErrInvalidCommand, c.Name, sc.Mechanism)
		}
		seen[sc.Mechanism] = true
	}
	return validUTF8(append([]string{c.Name, c.PasswordHash}, c.Tags...)...)
}

func (c *PutUserCmd) check(*State) error { return c.validate() }

func (c *PutUserCmd) apply(st *State) Result {
	st.users[c.Name] = User(*c).clone()
	return Result{}
}

func (c *DeleteUserCmd) validate() error { return validUTF8(c.Name) }

func (c *DeleteUserCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	return st.user(c.Name)
}

func (c *DeleteUserCmd) apply(st *State) Result {
	delete(st.users, c.Name)
	maps.DeleteFunc(st.perms, func(k permKey, _ Permission) bool { return k.user == c.Name })
	st.dropTopicPermissions(c.Name, "")
	return Result{}
}

func (c *SetPermissionCmd) validate() error {
	return validUTF8(c.User, c.Vhost, c.Configure, c.Write, c.Read)
}

func (c *SetPermissionCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := st.user(c.User); err != nil {
		return err
	}
	_, err := st.vhost(c.Vhost)
	return err
}

func (c *SetPermissionCmd) apply(st *State) Result {
	st.perms[permKey{c.User, c.Vhost}] = Permission(*c)
	return Result{}
}

func (c *ClearPermissionCmd) validate() error { return validUTF8(c.User, c.Vhost) }

func (c *ClearPermissionCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := st.user(c.User); err != nil {
		return err
	}
	_, err := st.vhost(c.Vhost)
	return err
}

func (c *ClearPermissionCmd) apply(st *State) Result {
	delete(st.perms, permKey{c.User, c.Vhost})
	return Result{}
}

func (c *DeclareExchangeCmd) validate() error { return validUTF8(c.Vhost, c.Name, c.Type) }

func (c *DeclareExchangeCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	v, err := st.vhost(c.Vhost)
	if err != nil {
		return err
	}
	if _, ok := v.exchanges[c.Name]; ok {
		return fmt.Errorf("%w: %q in vhost %q", ErrExchangeExists, c.Name, c.Vhost)
	}
	return nil
}

func (c *DeclareExchangeCmd) apply(st *State) Result {
	st.vhosts[c.Vhost].exchanges[c.Name] = Exchange(*c).clone()
	return Result{}
}

func (c *DeleteExchangeCmd) validate() error { return validUTF8(c.Vhost, c.Name) }

func (c *DeleteExchangeCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	v, err := st.vhost(c.Vhost)
	if err != nil {
		return err
	}
	return v.exchange(c.Name)
}

func (c *DeleteExchangeCmd) apply(st *State) Result {
	v := st.vhosts[c.Vhost]
	delete(v.exchanges, c.Name)
	maps.DeleteFunc(v.bindings, func(k bindingKey, _ struct{}) bool {
		return k.Source == c.Name && k.SourceKind == "" || k.DestinationKind == DestExchange && k.Destination == c.Name
	})
	return Result{}
}

func (c *DeclareQueueCmd) validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: empty queue name", ErrInvalidCommand)
	}
	if !validQueueID(c.ID) {
		return fmt.Errorf("%w: queue id %q is not 1 to 64 lowercase hex digits", ErrInvalidCommand, c.ID)
	}
	return validUTF8(c.Vhost, c.Name)
}

func (c *DeclareQueueCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	v, err := st.vhost(c.Vhost)
	if err != nil {
		return err
	}
	if _, ok := v.queues[c.Name]; ok {
		return fmt.Errorf("%w: %q in vhost %q", ErrQueueExists, c.Name, c.Vhost)
	}
	if r, ok := st.queueIDs[c.ID]; ok {
		return fmt.Errorf("%w: id %s is used by %q in vhost %q", ErrQueueExists, c.ID, r.name, r.vhost)
	}
	return nil
}

func (c *DeclareQueueCmd) apply(st *State) Result {
	q := Queue(*c).clone()
	st.vhosts[c.Vhost].queues[c.Name] = q
	st.queueIDs[c.ID] = queueRef{c.Vhost, c.Name}
	return Result{Queue: q.clone()}
}

func (c *DeleteQueueCmd) validate() error { return validUTF8(c.Vhost, c.Name) }

func (c *DeleteQueueCmd) check(st *State) error {
	if err := c.validate(); err != nil {
		return err
	}
	v, err := st.vhost(c.Vhost)
	if err != nil {
		return err
	}
	return v.queue(c.Name)
}

func (c *DeleteQueueCmd) apply(st *State) Result {
	st.deleteQueue(st.vhosts[c.Vhost], c.Name)
	return Result{}
}

func (c *DeleteQueuesCmd) validate() error {
	return validUTF8(append([]string{c.Vhost}, c.Names...)...)
}

func (c *DeleteQueuesCmd) check(*State) error { return c.validate() }

func (c *DeleteQueuesCmd) apply(st *State) Result {
	if v, ok := st.vhosts[c.Vhost]; ok {
		for _, name := range c.Names {
			st.deleteQueue(v, name)
		}
	}
	return Result{}
}

func validateBinding(b *Binding) error {
	if b.DestinationKind != DestQueue && b.DestinationKind != DestExchange && b.DestinationKind != DestTopic {
		return fmt.Errorf("%w: binding destination kind %q", ErrInvalidCommand, b.DestinationKind)
	}
	if b.SourceKind != "" && (b.SourceKind != SourceTopic || b.DestinationKind != DestQueue) {
		return fmt.Errorf("%w: binding source kind %q to a %s", ErrInvalidCommand, b.SourceKind, b.DestinationKind)
	}
	return validUTF8(b.Vhost, b.Source, b.Destination, b.RoutingKey)
}

// checkBinding checks that b's vhost, source and destination exist.
func (st *State) checkBinding(b *Binding) error {
	if err := validateBinding(b); err != nil {
		return err
	}
	v, err := st.vhost(b.Vhost)
	if err != nil {
		return err
	}
	if b.SourceKind == SourceTopic {
		if _, ok := st.topics[b.Source]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, b.Source)
		}
	} else if err := v.exchange(b.Source); err != nil {
		return err
	}
	switch b.DestinationKind {
	case DestQueue:
		return v.queue(b.Destination)
	case DestTopic:
		if _, ok := st.topics[b.Destination]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, b.Destination)
		}
		return nil
	}
	return v.exchange(b.Destination)
}

// hasBinding reports whether the binding b exists.
func (st *State) hasBinding(b Binding) bool {
	v, ok := st.vhosts[b.Vhost]
	if !ok {
		return false
	}
	_, ok = v.bindings[b.key()]
	return ok
}

func (c *BindCmd) validate() error         { return validateBinding((*Binding)(c)) }
func (c *BindCmd) check(st *State) error   { return st.checkBinding((*Binding)(c)) }
func (c *UnbindCmd) validate() error       { return validateBinding((*Binding)(c)) }
func (c *UnbindCmd) check(st *State) error { return st.checkBinding((*Binding)(c)) }

func (c *BindCmd) apply(st *State) Result {
	st.vhosts[c.Vhost].bindings[Binding(*c).key()] = struct{}{}
	return Result{}
}

func (c *UnbindCmd) apply(st *State) Result {
	delete(st.vhosts[c.Vhost].bindings, Binding(*c).key())
	return Result{}
}

// Reads. Each returns copies, sorted as documented on the Store methods.

// Vhost returns the named vhost.
func (st *State) Vhost(name string) (Vhost, bool) {
	v, ok := st.vhosts[name]
	if !ok {
		return Vhost{}, false
	}
	return v.def.clone(), true
}

// Vhosts returns every vhost sorted by name.
func (st *State) Vhosts() []Vhost {
	out := make([]Vhost, 0, len(st.vhosts))
	for _, name := range slices.Sorted(maps.Keys(st.vhosts)) {
		out = append(out, st.vhosts[name].def.clone())
	}
	return out
}

// User returns the named user.
func (st *State) User(name string) (User, bool) {
	u, ok := st.users[name]
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

// Users returns every user sorted by name.
func (st *State) Users() []User {
	out := make([]User, 0, len(st.users))
	for _, name := range slices.Sorted(maps.Keys(st.users)) {
		out = append(out, st.users[name].clone())
	}
	return out
}

// Permission returns a user's permission in a vhost.
func (st *State) Permission(user, vhost string) (Permission, bool) {
	p, ok := st.perms[permKey{user, vhost}]
	return p, ok
}

// Permissions returns every permission sorted by user, then vhost.
func (st *State) Permissions() []Permission {
	out := slices.Collect(maps.Values(st.perms))
	slices.SortFunc(out, func(a, b Permission) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Vhost, b.Vhost))
	})
	return out
}

// vhostsFor returns the named vhost, or every vhost for "", sorted by name.
func (st *State) vhostsFor(name string) []*vhost {
	if name != "" {
		if v, ok := st.vhosts[name]; ok {
			return []*vhost{v}
		}
		return nil
	}
	out := make([]*vhost, 0, len(st.vhosts))
	for _, name := range slices.Sorted(maps.Keys(st.vhosts)) {
		out = append(out, st.vhosts[name])
	}
	return out
}

// Exchange returns one exchange.
func (st *State) Exchange(vhost, name string) (Exchange, bool) {
	v, ok := st.vhosts[vhost]
	if !ok {
		return Exchange{}, false
	}
	e, ok := v.exchanges[name]
	return e.clone(), ok
}

// Exchanges returns a vhost's exchanges ("": every vhost's), sorted by
// vhost, then name.
func (st *State) Exchanges(vhost string) []Exchange {
	out := []Exchange{}
	for _, v := range st.vhostsFor(vhost) {
		for _, name := range slices.Sorted(maps.Keys(v.exchanges)) {
			out = append(out, v.exchanges[name].clone())
		}
	}
	return out
}

// Queue returns one queue.
func (st *State) Queue(vhost, name string) (Queue, bool) {
	v, ok := st.vhosts[vhost]
	if !ok {
		return Queue{}, false
	}
	q, ok := v.queues[name]
	return q.clone(), ok
}

// Queues returns a vhost's queues ("": every vhost's), sorted by vhost,
// then name.
func (st *State) Queues(vhost string) []Queue {
	out := []Queue{}
	for _, v := range st.vhostsFor(vhost) {
		for _, name := range slices.Sorted(maps.Keys(v.queues)) {
			out = append(out, v.queues[name].clone())
		}
	}
	return out
}

// Bindings returns a vhost's bindings ("": every vhost's), sorted by vhost,
// source, destination kind, destination, routing key, then argument bytes.
func (st *State) Bindings(vhost string) []Binding {
	out := []Binding{}
	for _, v := range st.vhostsFor(vhost) {
		for k := range v.bindings {
			out = append(out, k.binding(v.def.Name))
		}
	}
	slices.SortFunc(out, compareBindings)
	return out
}
