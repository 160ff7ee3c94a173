package meta

import "maps"

// AlterBrokerConfigsCmd sets then removes broker configs altered at run
// time (Kafka's dynamic broker configs, by their broker names, such as
// log.retention.ms); with Replace the configs become exactly Set (Remove
// is ignored). The broker validates names and values before proposing;
// the state keeps what it is given.
type AlterBrokerConfigsCmd struct {
	Set     map[string]string `json:"set,omitempty"`
	Remove  []string          `json:"remove,omitempty"`
	Replace bool              `json:"replace,omitempty"`
}

func (c *AlterBrokerConfigsCmd) check(*State) error { return nil }

func (c *AlterBrokerConfigsCmd) apply(st *State) Result {
	if c.Replace {
		st.brokerConfigs = configsOrNil(maps.Clone(c.Set))
		return Result{}
	}
	m := maps.Clone(st.brokerConfigs)
	if m == nil {
		m = make(map[string]string, len(c.Set))
	}
	maps.Copy(m, c.Set)
	for _, k := range c.Remove {
		delete(m, k)
	}
	st.brokerConfigs = configsOrNil(m)
	return Result{}
}

// AlterBrokerConfigs changes the dynamic broker configs (see
// AlterBrokerConfigsCmd).
func (s *Store) AlterBrokerConfigs(set map[string]string, remove []string, replace bool) error {
	_, err := s.propose(NewCommand(&AlterBrokerConfigsCmd{Set: set, Remove: remove, Replace: replace}))
	return err
}

// BrokerConfigs returns a copy of the dynamic broker configs.
func (s *Store) BrokerConfigs() map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.state.brokerConfigs)
}
