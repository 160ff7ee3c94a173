package broker

// Read-only views for the admin APIs of the front ends.

// Defaults returns the broker-wide values behind every topic config a topic
// has not set.
func (b *Broker) Defaults() Defaults { return b.opts.Defaults }

// ResolveTopicConfigs returns every understood topic config as a topic with
// the explicit configs set would see them, sorted by key: the set value, or
// the broker default (IsDefault). CreateTopics answers with it, including
// under validate-only, when no topic exists to ask TopicConfigs about.
func (b *Broker) ResolveTopicConfigs(set map[string]string) []ConfigEntry {
	keys := TopicConfigKeys()
	out := make([]ConfigEntry, 0, len(keys))
	for _, k := range keys {
		if v, ok := set[k]; ok {
			out = append(out, ConfigEntry{Key: k, Value: v})
		} else {
			out = append(out, ConfigEntry{Key: k, Value: topicConfigKeys[k].def(b.opts.Defaults), IsDefault: true})
		}
	}
	return out
}
