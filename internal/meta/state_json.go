package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// stateJSON is the snapshot form of a State: sorted slices instead of maps,
// so that equal states have equal encodings.
type stateJSON struct {
	Topics         []Topic        `json:"topics,omitempty"`
	Groups         []groupJSON    `json:"groups,omitempty"`
	NextProducerID int64          `json:"next_producer_id"`
	Producers      []producerJSON `json:"producers,omitempty"`
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

	for _, g := range st.OffsetGroups() {
		j.Groups = append(j.Groups, groupJSON{Group: g, Offsets: st.GroupOffsets(g)})
	}
	for _, id := range slices.Sorted(maps.Keys(st.producers)) {
		p := st.producers[id]
		j.Producers = append(j.Producers, producerJSON{TransactionalID: id, ProducerID: p.ID, Epoch: p.Epoch})
	}
	return json.Marshal(j)
}

// UnmarshalJSON replaces the state with a decoded one, refusing encodings
// no sequence of commands could have produced (duplicates, zero ids).
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
	*st = *n
	return nil
}
