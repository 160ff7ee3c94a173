package meta

// CreateTopic creates a topic with a fresh random id. partitions must be
// positive (ErrInvalidPartitions); configs holds only explicitly set
// configs.
func (s *Store) CreateTopic(name string, partitions int32, configs map[string]string) (Topic, error) {
	res, err := s.propose(NewCommand(&CreateTopicCmd{
		Name:       name,
		ID:         newTopicID(),
		Partitions: partitions,
		Configs:    configs,
		CreatedMs:  s.opts.Now().UnixMilli(),
	}))
	return res.Topic, err
}

// TopicSpec is one topic of a CreateTopics.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
	// Replicas, in a cluster, places each partition (placement.go); nil
	// on a single node.
	Replicas [][]int32
}

// CreateTopics creates the topics of specs together: their commands share
// one write and one fsync of the log, where CreateTopic for each would
// take an fsync each. Each topic is created or refused on its own, as by
// CreateTopic: topics[i] and errs[i] answer specs[i].
func (s *Store) CreateTopics(specs []TopicSpec) (topics []Topic, errs []error) {
	cmds := make([]Command, len(specs))
	now := s.opts.Now().UnixMilli()
	for i, sp := range specs {
		cmds[i] = NewCommand(&CreateTopicCmd{
			Name:       sp.Name,
			ID:         newTopicID(),
			Partitions: sp.Partitions,
			Configs:    sp.Configs,
			CreatedMs:  now,
			Replicas:   sp.Replicas,
		})
	}
	res, errs := s.proposeAll(cmds)
	topics = make([]Topic, len(specs))
	for i, r := range res {
		topics[i] = r.Topic
	}
	return topics, errs
}

// DeleteTopic deletes a topic and every group's committed offsets in it.
func (s *Store) DeleteTopic(name string) error {
	_, err := s.propose(NewCommand(&DeleteTopicCmd{Name: name}))
	return err
}

// CreatePartitions grows a topic to total partitions; total must exceed the
// current count (ErrInvalidPartitions).
func (s *Store) CreatePartitions(name string, total int32) error {
	_, err := s.propose(NewCommand(&CreatePartitionsCmd{Name: name, Total: total}))
	return err
}

// CreatePartitionsPlaced is CreatePartitions for a placed topic:
// replicas places each new partition.
func (s *Store) CreatePartitionsPlaced(name string, total int32, replicas [][]int32) error {
	_, err := s.propose(NewCommand(&CreatePartitionsCmd{Name: name, Total: total, Replicas: replicas}))
	return err
}

// AlterTopicConfigs sets the configs in set, then removes those in remove.
// With replace the configs become exactly set and remove is ignored.
func (s *Store) AlterTopicConfigs(name string, set map[string]string, remove []string, replace bool) error {
	_, err := s.propose(NewCommand(&AlterTopicConfigsCmd{
		Name: name, Set: set, Remove: remove, Replace: replace,
	}))
	return err
}

// Topic returns a copy of the named topic.
func (s *Store) Topic(name string) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Topic(name)
}

// TopicByID returns a copy of the topic with the given id.
func (s *Store) TopicByID(id TopicID) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.TopicByID(id)
}

// Topics returns copies of every topic, sorted by name.
func (s *Store) Topics() []Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Topics()
}
