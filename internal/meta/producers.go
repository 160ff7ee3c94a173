package meta

// InitProducerID hands out a producer id for a Kafka idempotent or
// transactional producer. With transactionalID "" it allocates a fresh id at
// epoch 0. Otherwise the transactional id keeps its producer id and the
// epoch is bumped, fencing older instances; once the epoch would pass 32766
// a new id is allocated at epoch 0. Ids start at 1 and are never reused.
func (s *Store) InitProducerID(transactionalID string) (producerID int64, epoch int16, err error) {
	res, err := s.propose(NewCommand(&InitProducerIDCmd{TransactionalID: transactionalID}))
	if err != nil {
		return -1, -1, err
	}
	return res.ProducerID, res.ProducerEpoch, nil
}

// TransactionalProducer returns the producer id and epoch last handed to a
// transactional id, for fencing checks.
func (s *Store) TransactionalProducer(transactionalID string) (producerID int64, epoch int16, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.TransactionalProducer(transactionalID)
}
