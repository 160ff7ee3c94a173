package meta

import (
	"reflect"
)

// commandKinds is the one list of command kinds: each is registered once,
// with the name it has in the log and its payload type, which knows how to
// check and apply itself. A stored name must never change meaning; a new
// kind of change gets a new name, appended here.
//
// The offset kinds (commit_offsets, delete_group_offsets) are no longer
// proposed: committed offsets live in the broker's offsets store. They stay
// registered so that a log written before the move still replays, and the
// broker can carry its offsets over (docs/meta-format.md).
var commandKinds = []commandKind{
	{"create_topic", (*CreateTopicCmd)(nil)},
	{"delete_topic", (*DeleteTopicCmd)(nil)},
	{"create_partitions", (*CreatePartitionsCmd)(nil)},
	{"alter_topic_configs", (*AlterTopicConfigsCmd)(nil)},
	{"commit_offsets", (*CommitOffsetsCmd)(nil)},
	{"delete_group_offsets", (*DeleteGroupOffsetsCmd)(nil)},
	{"init_producer_id", (*InitProducerIDCmd)(nil)},
	{"alter_broker_configs", (*AlterBrokerConfigsCmd)(nil)}, // after v1: brokerconfigs.go
	{"put_transaction", (*PutTransactionCmd)(nil)},          // after v1: transactions.go
	{"end_transaction", (*EndTransactionCmd)(nil)},          // after v1: transactions.go (transaction version 2)

	{"put_vhost", (*PutVhostCmd)(nil)},
	{"delete_vhost", (*DeleteVhostCmd)(nil)},
	{"put_user", (*PutUserCmd)(nil)},
	{"delete_user", (*DeleteUserCmd)(nil)},
	{"set_permission", (*SetPermissionCmd)(nil)},
	{"clear_permission", (*ClearPermissionCmd)(nil)},
	{"declare_exchange", (*DeclareExchangeCmd)(nil)},
	{"delete_exchange", (*DeleteExchangeCmd)(nil)},
	{"declare_queue", (*DeclareQueueCmd)(nil)},
	{"delete_queue", (*DeleteQueueCmd)(nil)},
	{"delete_queues", (*DeleteQueuesCmd)(nil)},
	{"bind", (*BindCmd)(nil)},
	{"unbind", (*UnbindCmd)(nil)},

	{"set_policy", (*SetPolicyCmd)(nil)},
	{"clear_policy", (*ClearPolicyCmd)(nil)},
	{"set_operator_policy", (*SetOperatorPolicyCmd)(nil)},
	{"clear_operator_policy", (*ClearOperatorPolicyCmd)(nil)},

	{"set_limit", (*SetLimitCmd)(nil)},                    // limits.go
	{"clear_limit", (*ClearLimitCmd)(nil)},                // limits.go
	{"alter_client_quotas", (*AlterClientQuotasCmd)(nil)}, // limits.go
	{"create_acls", (*CreateACLsCmd)(nil)},                // acls.go
	{"delete_acls", (*DeleteACLsCmd)(nil)},
	{"set_topic_permission", (*SetTopicPermissionCmd)(nil)}, // topic_permissions.go
	{"clear_topic_permission", (*ClearTopicPermissionCmd)(nil)},
	{"register_node", (*RegisterNodeCmd)(nil)},                    // nodes.go
	{"unregister_node", (*UnregisterNodeCmd)(nil)},                // nodes.go
	{"reassign_partitions", (*ReassignPartitionsCmd)(nil)},        // reassign.go
	{"complete_reassignment", (*CompleteReassignmentCmd)(nil)},    // reassign.go
	{"elect_preferred_leaders", (*ElectPreferredLeadersCmd)(nil)}, // reassign.go
	{"record_leaders", (*RecordLeadersCmd)(nil)},                  // leaders.go
}

// commandKind is one registered kind: its log name and a nil pointer of
// its payload type.
type commandKind struct {
	name    string
	payload Payload
}

// newPayload returns a fresh zero payload of k's type, to decode into.
func (k *commandKind) newPayload() Payload {
	return reflect.New(reflect.TypeOf(k.payload).Elem()).Interface().(Payload)
}

// The registry's two indexes, built from commandKinds.
var (
	kindsByName = make(map[string]*commandKind, len(commandKinds))
	kindsByType = make(map[reflect.Type]*commandKind, len(commandKinds))
)

func init() {
	for i := range commandKinds {
		k := &commandKinds[i]
		t := reflect.TypeOf(k.payload)
		if _, dup := kindsByName[k.name]; dup {
			panic("meta: command " + k.name + " registered twice")
		}
		if _, dup := kindsByType[t]; dup {
			panic("meta: payload type " + t.String() + " registered twice")
		}
		kindsByName[k.name] = k
		kindsByType[t] = k
	}
}

// kindNamed returns the kind registered under name.
func kindNamed(name string) (*commandKind, bool) {
	k, ok := kindsByName[name]
	return k, ok
}

// kindOf returns the kind whose payload type p has.
func kindOf(p Payload) (*commandKind, bool) {
	if p == nil {
		return nil, false
	}
	k, ok := kindsByType[reflect.TypeOf(p)]
	return k, ok
}

// isNil reports whether p is nil or a nil pointer.
func isNil(p Payload) bool {
	if p == nil {
		return true
	}
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// CommandNames returns the name of every registered command kind, in
// registration order.
func CommandNames() []string {
	out := make([]string, len(commandKinds))
	for i, k := range commandKinds {
		out[i] = k.name
	}
	return out
}
