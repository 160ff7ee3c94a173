package meta

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
)

// firstProducerID is the first id handed out. Zero is skipped so that a
// zero value never looks like an allocated producer.
const firstProducerID = 1

// maxProducerEpoch is the highest epoch a producer id is used with; Kafka
// treats 32767 as exhausted so that epoch+1 never overflows int16.
const maxProducerEpoch = math.MaxInt16 - 1

// State is the metadata state machine. It is changed only by Apply, which
// is deterministic, and is not safe for concurrent use (Store adds the
// locking). Its JSON encoding is canonical: equal states encode to equal
// bytes.
type State struct {
	topics         map[string]*Topic
	byID           map[TopicID]*Topic
	groups         map[string]map[TopicPartition]OffsetCommit
	nextProducerID int64
	producers      map[string]producer    // by transactional id
	txns           map[string]Transaction // by transactional id (transactions.go)

	vhosts   map[string]*vhost
	users    map[string]User
	perms    map[permKey]Permission
	queueIDs map[string]queueRef // every queue, by id

	brokerConfigs map[string]string                // dynamic broker configs (brokerconfigs.go)
	limits        map[limitKey]Limit               // vhost and user limits (limits.go)
	quotas        map[string]ClientQuota           // client quotas by entity (limits.go)
	acls          []auth.ACL                       // Kafka ACLs, sorted, replaced on change (acls.go)
	topicPerms    map[topicPermKey]TopicPermission // topic_permissions.go
	nodes         map[uint64]Node                  // the cluster's nodes by id (nodes.go)

	observer func(Change) // told of applied topic changes (observe.go); not state
	// amqpObserver is told of applied AMQP definition changes by vhost
	// (observe.go); not state.
	amqpObserver func(vhost string)
}

type producer struct {
	ID    int64
	Epoch int16
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		topics:         make(map[string]*Topic),
		byID:           make(map[TopicID]*Topic),
		groups:         make(map[string]map[TopicPartition]OffsetCommit),
		nextProducerID: firstProducerID,
		producers:      make(map[string]producer),
		txns:           make(map[string]Transaction),
		vhosts:         make(map[string]*vhost),
		users:          make(map[string]User),
		perms:          make(map[permKey]Permission),
		queueIDs:       make(map[string]queueRef),
		limits:         make(map[limitKey]Limit),
		quotas:         make(map[string]ClientQuota),
	}
}

// Apply applies one command. An error means the command was refused and the
// state is unchanged; refusals are deterministic too, so a refused command in
// the log is refused again on replay. Errors wrapping ErrInvalidCommand mean
// the command is malformed rather than refused.
func (st *State) Apply(cmd Command) (Result, error) {
	o, err := cmd.op()
	if err != nil {
		return Result{}, err
	}
	if err := o.check(st); err != nil {
		return Result{}, err
	}
	res := o.apply(st)
	if st.observer != nil {
		st.notify(cmd)
	}
	if st.amqpObserver != nil {
		st.notifyAMQP(cmd)
	}
	return res, nil
}

// Check reports the error Apply would return for cmd, without applying it.
func (st *State) Check(cmd Command) error {
	o, err := cmd.op()
	if err != nil {
		return err
	}
	return o.check(st)
}

func (st *State) topic(name string) (*Topic, error) {
	t, ok := st.topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return t, nil
}

// configsOrNil stores an empty config set as nil, keeping the state
// canonical.
func configsOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func (c *CreateTopicCmd) check(st *State) error {
	if c.Name == "" {
		return ErrInvalidTopicName
	}
	if c.ID.IsZero() {
		return fmt.Errorf("%w: create_topic with a zero id", ErrInvalidCommand)
	}
	if c.Partitions <= 0 {
		return fmt.Errorf("%w: %d", ErrInvalidPartitions, c.Partitions)
	}
	if _, ok := st.topics[c.Name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, c.Name)
	}
	if t, ok := st.byID[c.ID]; ok {
		return fmt.Errorf("%w: id %s is used by %q", ErrTopicExists, c.ID, t.Name)
	}
	if c.Replicas != nil {
		return checkReplicas("create_topic", c.Replicas, c.Partitions)
	}
	return nil
}

func (c *CreateTopicCmd) apply(st *State) Result {
	t := &Topic{
		Name:       c.Name,
		ID:         c.ID,
		Partitions: c.Partitions,
		Configs:    configsOrNil(maps.Clone(c.Configs)),
		CreatedMs:  c.CreatedMs,
		Replicas:   cloneReplicas(c.Replicas),
	}
	st.topics[t.Name] = t
	st.byID[t.ID] = t
	return Result{Topic: t.clone()}
}

func (c *DeleteTopicCmd) check(st *State) error {
	_, err := st.topic(c.Name)
	return err
}

func (c *DeleteTopicCmd) apply(st *State) Result {
	t := st.topics[c.Name]
	delete(st.topics, t.Name)
	delete(st.byID, t.ID)
	// The result does not depend on map order: every matching entry goes.
	for g, offsets := range st.groups {
		maps.DeleteFunc(offsets, func(tp TopicPartition, _ OffsetCommit) bool { return tp.Topic == t.Name })
		if len(offsets) == 0 {
			delete(st.groups, g)
		}
	}
	return Result{}
}

func (c *CreatePartitionsCmd) check(st *State) error {
	t, err := st.topic(c.Name)
	if err != nil {
		return err
	}
	if c.Total <= t.Partitions {
		return fmt.Errorf("%w: %q has %d partitions, asked for %d", ErrInvalidPartitions, c.Name, t.Partitions, c.Total)
	}
	// A placed topic's new partitions are placed too, and an unplaced
	// one's are not: the assignment covers every partition or none.
	if (t.Replicas == nil) != (c.Replicas == nil) {
		return fmt.Errorf("%w: create_partitions: %q: new partitions placed unlike the old", ErrInvalidCommand, c.Name)
	}
	if c.Replicas != nil {
		return checkReplicas("create_partitions", c.Replicas, c.Total-t.Partitions)
	}
	return nil
}

func (c *CreatePartitionsCmd) apply(st *State) Result {
	t := st.topics[c.Name]
	t.Partitions = c.Total
	if c.Replicas != nil {
		// A new slice: readers of the old one (Store.PartitionReplicas)
		// keep theirs.
		t.Replicas = append(cloneReplicas(t.Replicas), cloneReplicas(c.Replicas)...)
	}
	return Result{}
}

func (c *AlterTopicConfigsCmd) check(st *State) error {
	_, err := st.topic(c.Name)
	return err
}

func (c *AlterTopicConfigsCmd) apply(st *State) Result {
	t := st.topics[c.Name]
	if c.Replace {
		t.Configs = configsOrNil(maps.Clone(c.Set))
		return Result{}
	}
	m := maps.Clone(t.Configs)
	if m == nil {
		m = make(map[string]string, len(c.Set))
	}
	maps.Copy(m, c.Set)
	for _, k := range c.Remove {
		delete(m, k)
	}
	t.Configs = configsOrNil(m)
	return Result{}
}

func (c *CommitOffsetsCmd) check(st *State) error {
	for _, oc := range c.Commits {
		t, err := st.topic(oc.Topic)
		if err != nil {
			return err
		}
		if oc.Partition < 0 || oc.Partition >= t.Partitions {
			return fmt.Errorf("%w: %s-%d", ErrUnknownPartition, oc.Topic, oc.Partition)
		}
	}
	return nil
}

func (c *CommitOffsetsCmd) apply(st *State) Result {
	if len(c.Commits) == 0 {
		return Result{}
	}
	offsets := st.groups[c.Group]
	if offsets == nil {
		offsets = make(map[TopicPartition]OffsetCommit, len(c.Commits))
		st.groups[c.Group] = offsets
	}
	for _, oc := range c.Commits { // a later duplicate wins
		offsets[oc.tp()] = oc
	}
	return Result{}
}

func (c *DeleteGroupOffsetsCmd) check(*State) error { return nil }

func (c *DeleteGroupOffsetsCmd) apply(st *State) Result {
	offsets, ok := st.groups[c.Group]
	if !ok {
		return Result{}
	}
	if c.All {
		delete(st.groups, c.Group)
		return Result{}
	}
	for _, tp := range c.Partitions {
		delete(offsets, tp)
	}
	if len(offsets) == 0 {
		delete(st.groups, c.Group)
	}
	return Result{}
}

func (c *InitProducerIDCmd) check(st *State) error {
	if st.nextProducerID == math.MaxInt64 {
		return fmt.Errorf("%w: producer ids exhausted", ErrInvalidCommand)
	}
	return nil
}

func (c *InitProducerIDCmd) apply(st *State) Result {
	if c.TransactionalID != "" {
		if p, ok := st.producers[c.TransactionalID]; ok && p.Epoch < maxProducerEpoch {
			p.Epoch++
			st.producers[c.TransactionalID] = p
			return Result{ProducerID: p.ID, ProducerEpoch: p.Epoch}
		}
	}
	p := producer{ID: st.nextProducerID}
	st.nextProducerID++
	if c.TransactionalID != "" {
		st.producers[c.TransactionalID] = p
	}
	return Result{ProducerID: p.ID, ProducerEpoch: p.Epoch}
}

// Reads. Each returns copies.

// Topic returns the named topic.
func (st *State) Topic(name string) (Topic, bool) {
	t, ok := st.topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// TopicByID returns the topic with the given id.
func (st *State) TopicByID(id TopicID) (Topic, bool) {
	t, ok := st.byID[id]
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// Topics returns every topic sorted by name.
func (st *State) Topics() []Topic {
	out := make([]Topic, 0, len(st.topics))
	for _, t := range st.topics {
		out = append(out, t.clone())
	}
	slices.SortFunc(out, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// GroupOffsets returns a group's offsets sorted by topic and partition.
func (st *State) GroupOffsets(group string) []OffsetCommit {
	offsets := st.groups[group]
	out := make([]OffsetCommit, 0, len(offsets))
	for _, oc := range offsets {
		out = append(out, oc)
	}
	slices.SortFunc(out, func(a, b OffsetCommit) int { return compareTP(a.tp(), b.tp()) })
	return out
}

// GroupOffset returns one committed offset.
func (st *State) GroupOffset(group, topic string, partition int32) (OffsetCommit, bool) {
	oc, ok := st.groups[group][TopicPartition{topic, partition}]
	return oc, ok
}

// hasGroupOffsets reports whether deleting tps (nil: all) from group would
// change anything.
func (st *State) hasGroupOffsets(group string, tps []TopicPartition) bool {
	offsets := st.groups[group]
	if tps == nil {
		return len(offsets) > 0
	}
	for _, tp := range tps {
		if _, ok := offsets[tp]; ok {
			return true
		}
	}
	return false
}

// OffsetGroups returns the groups with committed offsets, sorted.
func (st *State) OffsetGroups() []string {
	return slices.Sorted(maps.Keys(st.groups))
}

// TransactionalProducer returns the producer id and epoch last handed to a
// transactional id.
func (st *State) TransactionalProducer(transactionalID string) (producerID int64, epoch int16, ok bool) {
	p, ok := st.producers[transactionalID]
	return p.ID, p.Epoch, ok
}
