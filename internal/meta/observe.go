package meta

// Observing applied changes: in a cluster, a node's broker must follow
// topic changes made through other nodes, which reach it only as applied
// metadata commands. The broker sets an observer, and every applied
// topic command (whoever proposed it) is passed to it. A single node sets
// none: its broker makes every change itself, and Apply pays one nil
// check.

// Change is a topic change as applied: the command's kind
// ("create_topic", "delete_topic", "create_partitions",
// "alter_topic_configs") and the topic it changed; or ChangeSnapshot,
// with no topic, when the whole state was replaced (a snapshot from the
// metadata group's leader) and any topic may have changed.
type Change struct {
	Kind  string
	Topic string
	// Partitions are the partitions an elect_preferred_leaders command
	// names (reassign.go); nil for other kinds.
	Partitions []int32
}

// ChangeSnapshot is the Kind of a Change that replaced the whole state.
const ChangeSnapshot = "snapshot"

// Observe sets f to be called after every topic command is applied (nil:
// none). f runs inside Apply, with the store's lock held: it must not
// call the store and must return quickly (queue the change and act on
// it elsewhere). Changes made before Observe, and a state replaced
// the observer's owner reconciles everything once after setting it. A
// state replaced wholesale (a snapshot installed from the leader) keeps
// the observer and reports one ChangeSnapshot.
func (s *Store) Observe(f func(Change)) {
	s.mu.Lock()
	s.state.observer = f
	s.mu.Unlock()
}

// handOver passes st's observer on to next, the state replacing st
// wholesale, and reports the replacement to it.
func (st *State) handOver(next *State) {
	if st.amqpObserver != nil {
		next.amqpObserver = st.amqpObserver
		next.amqpObserver("")
	}
	if st.observer == nil {
		return
	}
	next.observer = st.observer
	next.observer(Change{Kind: ChangeSnapshot})
}

// ObserveAMQP sets f to be called after every command that changes a
// vhost's AMQP definitions (the vhost itself, its exchanges, queues,
// bindings, policies and operator policies) is applied, with the vhost's
// name; "" when a snapshot replaced the whole state. Nil: none. As for
// Observe, f runs inside Apply with the store's lock held: it must only
// queue the change.
func (s *Store) ObserveAMQP(f func(vhost string)) {
	s.mu.Lock()
	s.state.amqpObserver = f
	s.mu.Unlock()
}

// notifyAMQP reports an applied command to the AMQP observer, if it
// changes a vhost's definitions.
func (st *State) notifyAMQP(cmd Command) {
	var vhost string
	switch p := cmd.Payload.(type) {
	case *PutVhostCmd:
		vhost = p.Name
	case *DeleteVhostCmd:
		vhost = p.Name
	case *DeclareExchangeCmd:
		vhost = p.Vhost
	case *DeleteExchangeCmd:
		vhost = p.Vhost
	case *DeclareQueueCmd:
		vhost = p.Vhost
	case *DeleteQueueCmd:
		vhost = p.Vhost
	case *DeleteQueuesCmd:
		vhost = p.Vhost
	case *BindCmd:
		vhost = p.Vhost
	case *UnbindCmd:
		vhost = p.Vhost
	case *SetPolicyCmd:
		vhost = p.Vhost
	case *ClearPolicyCmd:
		vhost = p.Vhost
	case *SetOperatorPolicyCmd:
		vhost = p.Vhost
	case *ClearOperatorPolicyCmd:
		vhost = p.Vhost
	default:
		return
	}
	st.amqpObserver(vhost)
}

// notify reports an applied command to the observer, if it is a topic
// change.
func (st *State) notify(cmd Command) {
	var name string
	switch p := cmd.Payload.(type) {
	case *CreateTopicCmd:
		name = p.Name
	case *DeleteTopicCmd:
		name = p.Name
	case *CreatePartitionsCmd:
		name = p.Name
	case *AlterTopicConfigsCmd:
		name = p.Name
	case *ReassignPartitionsCmd:
		name = p.Name
	case *CompleteReassignmentCmd:
		name = p.Name
	case *ElectPreferredLeadersCmd:
		st.observer(Change{Kind: cmd.Type, Topic: p.Name, Partitions: p.Partitions})
		return
	default:
		return
	}
	st.observer(Change{Kind: cmd.Type, Topic: name})
}
