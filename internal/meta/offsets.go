package meta

// CommitOffsets commits a group's offsets as one command: all are committed
// or, if any names an unknown topic (ErrUnknownTopic) or partition
// (ErrUnknownPartition), none. A zero CommitMs is set to the store's clock.
// A later entry for the same partition wins.
func (s *Store) CommitOffsets(group string, commits []OffsetCommit) error {
	if len(commits) == 0 {
		return nil
	}
	now := s.opts.Now().UnixMilli()
	cs := make([]OffsetCommit, len(commits))
	for i, c := range commits {
		if c.CommitMs == 0 {
			c.CommitMs = now
		}
		cs[i] = c
	}
	_, err := s.propose(NewCommand(&CommitOffsetsCmd{Group: group, Commits: cs}))
	return err
}

// GroupOffsets returns a group's committed offsets sorted by topic and
// partition.
func (s *Store) GroupOffsets(group string) []OffsetCommit {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.GroupOffsets(group)
}

// GroupOffset returns one committed offset.
func (s *Store) GroupOffset(group, topic string, partition int32) (OffsetCommit, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.GroupOffset(group, topic, partition)
}

// DeleteGroupOffsets deletes a group's offsets in tps, or all of them when
// tps is nil. Deleting offsets that do not exist is not an error and writes
// nothing.
func (s *Store) DeleteGroupOffsets(group string, tps []TopicPartition) error {
	s.mu.RLock()
	found := s.state.hasGroupOffsets(group, tps)
	s.mu.RUnlock()
	if !found {
		return nil
	}
	_, err := s.propose(NewCommand(&DeleteGroupOffsetsCmd{
		Group: group, Partitions: tps, All: tps == nil,
	}))
	return err
}

// OffsetGroups returns the groups that have committed offsets, sorted.
func (s *Store) OffsetGroups() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.OffsetGroups()
}
