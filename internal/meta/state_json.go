package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
)

// stateJSON is the snapshot form of a State: sorted slices instead of maps,
// so that equal states have equal encodings. New lists are added with
// omitempty, so that older snapshots still decode.
type stateJSON struct {
	BrokerConfigs map[string]string `json:"broker_configs,omitempty"` // dynamic broker configs

	Topics         []Topic           `json:"topics,omitempty"`
	Groups         []groupJSON       `json:"groups,omitempty"`
	NextProducerID int64             `json:"next_producer_id"`
	Producers      []producerJSON    `json:"producers,omitempty"`
	Transactions   []Transaction     `json:"transactions,omitempty"`
	Vhosts         []Vhost           `json:"vhosts,omitempty"`
	Users          []User            `json:"users,omitempty"`
	Permissions    []Permission      `json:"permissions,omitempty"`
	Exchanges      []Exchange        `json:"exchanges,omitempty"`
	Queues         []Queue           `json:"queues,omitempty"`
	Bindings       []Binding         `json:"bindings,omitempty"`
	Policies       []Policy          `json:"policies,omitempty"`
	OperatorPols   []Policy          `json:"operator_policies,omitempty"`
	ACLs           []auth.ACL        `json:"acls,omitempty"`
	TopicPerms     []TopicPermission `json:"topic_permissions,omitempty"`
	Limits         []Limit           `json:"limits,omitempty"`
	ClientQuotas   []ClientQuota     `json:"client_quotas,omitempty"`
	Nodes          []Node            `json:"nodes,omitempty"` // nodes.go
}

type groupJSON struct {
	Group   string         `json:"group"`
	Offsets []OffsetCommit `json:"offsets"`
}

type producerJSON struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	Epoch           int16  `json:"epoch"`
}

// MarshalJSON encodes the state canonically.
func (st *State) MarshalJSON() ([]byte, error) {
	j := stateJSON{NextProducerID: st.nextProducerID}
	j.Topics = st.Topics() // empty Configs are omitted
	j.BrokerConfigs = st.brokerConfigs

	for _, g := range st.OffsetGroups() {
		j.Groups = append(j.Groups, groupJSON{Group: g, Offsets: st.GroupOffsets(g)})
	}
	for _, id := range slices.Sorted(maps.Keys(st.producers)) {
		p := st.producers[id]
		j.Producers = append(j.Producers, producerJSON{TransactionalID: id, ProducerID: p.ID, Epoch: p.Epoch})
	}
	j.Transactions = nilIfEmpty(st.transactions())
	j.Vhosts = st.Vhosts()
	j.Users = st.Users()
	j.Permissions = st.Permissions()
	j.Exchanges = st.Exchanges("")
	j.Queues = st.Queues("")
	j.Bindings = st.Bindings("")
	j.Policies = nilIfEmpty(st.Policies(""))
	j.OperatorPols = nilIfEmpty(st.OperatorPolicies(""))
	j.Limits = nilIfEmpty(st.listLimits(""))
	j.ClientQuotas = nilIfEmpty(st.listQuotas())
	j.ACLs = st.acls
	j.TopicPerms = nilIfEmpty(st.TopicPermissions("", ""))
	j.Nodes = nilIfEmpty(st.Nodes())
	return json.Marshal(j)
}

// UnmarshalJSON replaces the state with a decoded one, refusing encodings
// no sequence of commands could have produced (duplicates, zero ids,
// dangling references). A snapshot written before a kind of definition
// existed simply lacks its list and loads as having none.
func (st *State) UnmarshalJSON(b []byte) error {
	var j stateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	n := NewState()
	n.nextProducerID = j.NextProducerID
	if n.nextProducerID < firstProducerID {
		return fmt.Errorf("meta: state: next producer id %d", n.nextProducerID)
	}
	for i := range j.Topics {
		t := &j.Topics[i]
		switch {
		case t.Name == "" || t.ID.IsZero() || t.Partitions <= 0:
			return fmt.Errorf("meta: state: invalid topic %q", t.Name)
		case n.topics[t.Name] != nil || n.byID[t.ID] != nil:
			return fmt.Errorf("meta: state: duplicate topic %q", t.Name)
		case t.Replicas != nil && checkReplicas("topic", t.Replicas, t.Partitions) != nil:
			return fmt.Errorf("meta: state: topic %q: %w", t.Name, checkReplicas("topic", t.Replicas, t.Partitions))
		}
		t.Configs = configsOrNil(t.Configs)
		n.topics[t.Name] = t
		n.byID[t.ID] = t
	}
	for _, g := range j.Groups {
		if _, dup := n.groups[g.Group]; dup || len(g.Offsets) == 0 {
			return fmt.Errorf("meta: state: duplicate or empty group %q", g.Group)
		}
		offsets := make(map[TopicPartition]OffsetCommit, len(g.Offsets))
		for _, oc := range g.Offsets {
			if _, dup := offsets[oc.tp()]; dup {
				return fmt.Errorf("meta: state: group %q: duplicate offset for %s-%d", g.Group, oc.Topic, oc.Partition)
			}
			offsets[oc.tp()] = oc
		}
		n.groups[g.Group] = offsets
	}
	for _, p := range j.Producers {
		if _, dup := n.producers[p.TransactionalID]; dup || p.TransactionalID == "" {
			return fmt.Errorf("meta: state: duplicate or empty transactional id %q", p.TransactionalID)
		}
		n.producers[p.TransactionalID] = producer{ID: p.ProducerID, Epoch: p.Epoch}
	}
	for _, t := range j.Transactions {
		_, ok := n.producers[t.TransactionalID]
		if _, dup := n.txns[t.TransactionalID]; dup || !ok {
			return fmt.Errorf("meta: state: duplicate or unknown transactional id %q", t.TransactionalID)
		}
		n.txns[t.TransactionalID] = t
	}
	n.brokerConfigs = configsOrNil(j.BrokerConfigs)
	if err := validateACLs(j.ACLs); err != nil {
		return fmt.Errorf("meta: state: %w", err)
	}
	if !slices.IsSortedFunc(j.ACLs, compareACL) || len(slices.CompactFunc(slices.Clone(j.ACLs), func(a, b auth.ACL) bool { return a == b })) != len(j.ACLs) {
		return fmt.Errorf("meta: state: ACLs not sorted or duplicated")
	}
	n.acls = nilIfEmpty(j.ACLs)
	if err := n.loadAMQP(&j); err != nil {
		return err
	}
	if err := n.loadLimits(&j); err != nil {
		return err
	}
	if err := n.loadNodes(j.Nodes); err != nil {
		return err
	}
	*st = *n
	return nil
}

// loadAMQP adds the AMQP definitions of j to the empty definitions of st,
// by applying the commands that create them: their checks refuse dangling
// references and invalid names, and duplicates are refused here.
func (st *State) loadAMQP(j *stateJSON) error {
	for i := range j.Vhosts {
		c := (*PutVhostCmd)(&j.Vhosts[i])
		if _, dup := st.vhosts[c.Name]; dup {
			return fmt.Errorf("meta: state: duplicate vhost %q", c.Name)
		}
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: vhost: %w", err)
		}
		c.apply(st)
	}
	for i := range j.Users {
		c := (*PutUserCmd)(&j.Users[i])
		if _, dup := st.users[c.Name]; dup {
			return fmt.Errorf("meta: state: duplicate user %q", c.Name)
		}
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: user: %w", err)
		}
		c.apply(st)
	}
	for i := range j.Permissions {
		c := (*SetPermissionCmd)(&j.Permissions[i])
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: permission: %w", err)
		}
		if _, dup := st.perms[permKey{c.User, c.Vhost}]; dup {
			return fmt.Errorf("meta: state: duplicate permission for %q in %q", c.User, c.Vhost)
		}
		c.apply(st)
	}
	for i := range j.Exchanges {
		c := (*DeclareExchangeCmd)(&j.Exchanges[i])
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: exchange: %w", err)
		}
		c.apply(st)
	}
	for i := range j.Queues {
		c := (*DeclareQueueCmd)(&j.Queues[i])
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: queue: %w", err)
		}
		c.apply(st)
	}
	for i := range j.Bindings {
		c := (*BindCmd)(&j.Bindings[i])
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: binding: %w", err)
		}
		if st.hasBinding(j.Bindings[i]) {
			return fmt.Errorf("meta: state: duplicate binding %+v", j.Bindings[i])
		}
		c.apply(st)
	}
	for i := range j.TopicPerms {
		c := (*SetTopicPermissionCmd)(&j.TopicPerms[i])
		if err := c.check(st); err != nil {
			return fmt.Errorf("meta: state: topic permission: %w", err)
		}
		if _, dup := st.topicPerms[topicPermKey{c.User, c.Vhost, c.Exchange}]; dup {
			return fmt.Errorf("meta: state: duplicate topic permission for %q in %q on %q", c.User, c.Vhost, c.Exchange)
		}
		c.apply(st)
	}
	for _, list := range []struct {
		ps       []Policy
		operator bool
	}{{j.Policies, false}, {j.OperatorPols, true}} {
		for i := range list.ps {
			p := &list.ps[i]
			if err := validatePolicy(p); err != nil {
				return fmt.Errorf("meta: state: policy: %w", err)
			}
			v, err := st.vhost(p.Vhost)
			if err != nil {
				return fmt.Errorf("meta: state: policy: %w", err)
			}
			if st.checkPolicy(p.Vhost, p.Name, list.operator) == nil {
				return fmt.Errorf("meta: state: duplicate policy %q in %q", p.Name, p.Vhost)
			}
			v.setPolicy(*p, list.operator)
		}
	}
	return nil
}
