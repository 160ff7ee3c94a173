package meta

// Store methods for AMQP definitions. Writes that would change nothing (an
// identical Bind, an Unbind or ClearPermission of nothing, DeleteQueues of
// queues that are gone) are answered from the state without writing to the
// log, but are still refused where the command would be.

// proposeUnlessNoop proposes cmd unless it is refused, or noop reports that
// applying it would change nothing.
func (s *Store) proposeUnlessNoop(cmd Command, noop func(st *State) bool) error {
	s.mu.RLock()
	err := s.state.Check(cmd)
	skip := err == nil && noop(s.state)
	s.mu.RUnlock()
	if err != nil || skip {
		return err
	}
	_, err = s.propose(cmd)
	return err
}

// PutVhost creates the vhost v.Name, or replaces an existing one's
// description and tags, keeping what lives in it.
func (s *Store) PutVhost(v Vhost) error {
	_, err := s.propose(NewCommand((*PutVhostCmd)(&v)))
	return err
}

// DeleteVhost deletes a vhost with every exchange, queue, binding and
// permission in it (ErrUnknownVhost if there is none).
func (s *Store) DeleteVhost(name string) error {
	_, err := s.propose(NewCommand(&DeleteVhostCmd{Name: name}))
	return err
}

// Vhost returns a copy of the named vhost.
func (s *Store) Vhost(name string) (Vhost, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Vhost(name)
}

// Vhosts returns copies of every vhost, sorted by name.
func (s *Store) Vhosts() []Vhost {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Vhosts()
}

// PutUser creates the user u.Name, or replaces an existing one's password
// hash and tags, keeping its permissions.
func (s *Store) PutUser(u User) error {
	_, err := s.propose(NewCommand((*PutUserCmd)(&u)))
	return err
}

// DeleteUser deletes a user and its permissions (ErrUnknownUser if there is
// none).
func (s *Store) DeleteUser(name string) error {
	_, err := s.propose(NewCommand(&DeleteUserCmd{Name: name}))
	return err
}

// User returns a copy of the named user.
func (s *Store) User(name string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.User(name)
}

// Users returns copies of every user, sorted by name.
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Users()
}

// SetPermission sets p.User's permission in p.Vhost, replacing any. The
// user and the vhost must exist (ErrUnknownUser, ErrUnknownVhost).
func (s *Store) SetPermission(p Permission) error {
	_, err := s.propose(NewCommand((*SetPermissionCmd)(&p)))
	return err
}

// ClearPermission removes user's permission in vhost. The user and the
// vhost must exist (ErrUnknownUser, ErrUnknownVhost); clearing a permission
// that is not set succeeds.
func (s *Store) ClearPermission(user, vhost string) error {
	return s.proposeUnlessNoop(NewCommand(&ClearPermissionCmd{User: user, Vhost: vhost}),
		func(st *State) bool { _, ok := st.Permission(user, vhost); return !ok })
}

// Permission returns user's permission in vhost.
func (s *Store) Permission(user, vhost string) (Permission, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Permission(user, vhost)
}

// Permissions returns every permission, sorted by user, then vhost.
func (s *Store) Permissions() []Permission {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Permissions()
}

// DeclareExchange creates an exchange in an existing vhost
// (ErrUnknownVhost). It is refused if the name exists (ErrExchangeExists):
// the broker checks a re-declaration for equivalence before proposing.
func (s *Store) DeclareExchange(e Exchange) error {
	_, err := s.propose(NewCommand((*DeclareExchangeCmd)(&e)))
	return err
}

// DeleteExchange deletes an exchange (ErrUnknownVhost, ErrUnknownExchange)
// and every binding whose source or destination it is.
func (s *Store) DeleteExchange(vhost, name string) error {
	_, err := s.propose(NewCommand(&DeleteExchangeCmd{Vhost: vhost, Name: name}))
	return err
}

// Exchange returns a copy of one exchange.
func (s *Store) Exchange(vhost, name string) (Exchange, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Exchange(vhost, name)
}

// Exchanges returns copies of a vhost's exchanges, or of every vhost's for
// "", sorted by vhost, then name.
func (s *Store) Exchanges(vhost string) []Exchange {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Exchanges(vhost)
}

// DeclareQueue creates a queue in an existing vhost (ErrUnknownVhost) and
// returns it as stored. An empty q.ID is filled with a fresh random id and a
// zero q.CreatedMs with the store's clock. It is refused if the name or the
// id is taken (ErrQueueExists): the broker checks a re-declaration for
// equivalence before proposing.
func (s *Store) DeclareQueue(q Queue) (Queue, error) {
	if q.ID == "" {
		q.ID = NewQueueID()
	}
	if q.CreatedMs == 0 {
		q.CreatedMs = s.opts.Now().UnixMilli()
	}
	res, err := s.propose(NewCommand((*DeclareQueueCmd)(&q)))
	return res.Queue, err
}

// DeleteQueue deletes a queue (ErrUnknownVhost, ErrUnknownQueue) and every
// binding to it.
func (s *Store) DeleteQueue(vhost, name string) error {
	_, err := s.propose(NewCommand(&DeleteQueueCmd{Vhost: vhost, Name: name}))
	return err
}

// deleteQueuesChunk bounds the names in one delete_queues command, keeping
// it far below MaxRecordSize.
const deleteQueuesChunk = 1024

// DeleteQueues deletes those of the named queues of vhost that exist, with
// their bindings; names that do not exist are skipped, and an unknown vhost
// has nothing to delete. It is for bulk cleanup, such as dropping transient
// queues at start: each chunk of names is one command, so a failure part way
// leaves the earlier chunks deleted.
func (s *Store) DeleteQueues(vhost string, names []string) error {
	if err := validUTF8(append([]string{vhost}, names...)...); err != nil {
		return err
	}
	s.mu.RLock()
	var present []string
	if v, ok := s.state.vhosts[vhost]; ok {
		for _, name := range names {
			if _, ok := v.queues[name]; ok {
				present = append(present, name)
			}
		}
	}
	s.mu.RUnlock()
	for len(present) > 0 {
		n := min(len(present), deleteQueuesChunk)
		if _, err := s.propose(NewCommand(&DeleteQueuesCmd{Vhost: vhost, Names: present[:n]})); err != nil {
			return err
		}
		present = present[n:]
	}
	return nil
}

// Queue returns a copy of one queue.
func (s *Store) Queue(vhost, name string) (Queue, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Queue(vhost, name)
}

// Queues returns copies of a vhost's queues, or of every vhost's for "",
// sorted by vhost, then name.
func (s *Store) Queues(vhost string) []Queue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Queues(vhost)
}

// Bind adds a binding. The vhost, the source exchange and the destination
// queue or exchange must exist (ErrUnknownVhost, ErrUnknownExchange,
// ErrUnknownQueue). Binding what is already bound — same vhost, source,
// destination kind, destination, routing key and argument bytes — succeeds
// and changes nothing.
func (s *Store) Bind(b Binding) error {
	return s.proposeUnlessNoop(NewCommand((*BindCmd)(&b)),
		func(st *State) bool { return st.hasBinding(b) })
}

// Unbind removes a binding. As in RabbitMQ, a missing source or destination
// is refused as for Bind, and a missing binding between existing ones
// succeeds.
func (s *Store) Unbind(b Binding) error {
	return s.proposeUnlessNoop(NewCommand((*UnbindCmd)(&b)),
		func(st *State) bool { return !st.hasBinding(b) })
}

// Bindings returns copies of a vhost's bindings, or of every vhost's for "",
// sorted by vhost, source, destination kind, destination, routing key, then
// argument bytes.
func (s *Store) Bindings(vhost string) []Binding {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Bindings(vhost)
}
