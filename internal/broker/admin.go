package broker

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// Read-only views for the admin APIs of the front ends, and the broker
// configs they may alter.

// Defaults returns the broker-wide values behind every topic config a topic
// has not set.
func (b *Broker) Defaults() Defaults { return b.opts.Defaults }

// resolve is a topic's effective settings given its own configs.
func (b *Broker) resolve(set map[string]string) resolvedConfig {
	return resolve(b.opts.Defaults, b.meta.BrokerConfigs(), set)
}

// ResolveTopicConfigs returns every accepted topic config as a topic with
// the explicit configs set would see them, sorted by key: the set value
// (SourceTopic), a dynamic broker config, or the default, each with its
// synonyms, type and documentation. CreateTopics answers with it,
// including under validate-only, when no topic exists to ask TopicConfigs
// about.
func (b *Broker) ResolveTopicConfigs(set map[string]string) []ConfigEntry {
	dynamic := b.meta.BrokerConfigs()
	out := make([]ConfigEntry, 0, len(topicConfigs))
	for i := range topicConfigs {
		c := &topicConfigs[i]
		v, syn := resolveValue(b.opts.Defaults, dynamic, set, c)
		for j := range syn {
			syn[j].Type, syn[j].Doc = c.typ, c.doc
		}
		e := syn[0]
		e.Key, e.Value, e.Synonyms = c.name, v, syn
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ConfigEntry) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// staticBrokerConfigs are the broker configs whose value Sluice's
// configuration gives (Defaults); the others default to Kafka's values.
var staticBrokerConfigs = map[string]bool{
	"log.retention.ms": true, "log.retention.bytes": true, "log.segment.bytes": true,
	"log.roll.ms": true, "message.max.bytes": true,
}

// BrokerConfigs returns the broker's configs, sorted by name: the
// read-only ones Sluice takes from its configuration, and the broker
// synonym of every topic config (the default of topics that do not set
// it), which AlterBrokerConfigs may change at run time.
func (b *Broker) BrokerConfigs(nodeID int32) []ConfigEntry {
	d := b.opts.Defaults
	ro := func(k, v string, t ConfigType, doc string) ConfigEntry {
		e := ConfigEntry{Key: k, Value: v, Source: SourceStaticBroker, ReadOnly: true, Type: t, Doc: doc}
		e.Synonyms = []ConfigEntry{{Key: k, Value: v, Source: SourceStaticBroker, Type: t, Doc: doc}}
		return e
	}
	id := strconv.Itoa(int(nodeID))
	out := []ConfigEntry{
		ro("auto.create.topics.enable", strconv.FormatBool(b.opts.AutoCreateTopics), TypeBoolean, "Create a topic on first use by a producer or consumer."),
		ro("broker.id", id, TypeInt, "This broker's id."),
		ro("default.replication.factor", "1", TypeInt, "Replication factor of auto-created topics; one node."),
		ro("node.id", id, TypeInt, "This node's id."),
		ro("num.partitions", strconv.Itoa(int(d.Partitions)), TypeInt, "Partitions of a topic created without a count."),
	}
	if b.opts.Replication.Host != nil {
		out = append(out, ro("replica.lag.time.max.ms", strconv.FormatInt(b.replicaLagTime().Milliseconds(), 10), TypeLong,
			"How long a follower may go without catching up with the leader before it leaves the ISR."))
		out = append(out, b.balanceConfigs(ro)...)
	}
	dynamic := b.meta.BrokerConfigs()
	for name, c := range brokerSynonyms {
		def := ConfigEntry{Key: name, Value: c.def(d), Source: SourceDefault, IsDefault: true, Type: c.typ, Doc: c.doc}
		if staticBrokerConfigs[name] {
			def.Source, def.IsDefault = SourceStaticBroker, false
		}
		syn := []ConfigEntry{def}
		if v, ok := dynamic[name]; ok {
			syn = append([]ConfigEntry{{Key: name, Value: v, Source: SourceDynamicBroker, Type: c.typ, Doc: c.doc}}, syn...)
		}
		e := syn[0]
		e.Synonyms = syn
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ConfigEntry) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// IsReadOnlyBrokerConfig reports whether a broker config is one
// BrokerConfigs reports but that cannot change at run time.
func IsReadOnlyBrokerConfig(name string) bool {
	switch name {
	case "auto.create.topics.enable", "broker.id", "default.replication.factor", "node.id", "num.partitions", "replica.lag.time.max.ms",
		"auto.leader.rebalance.enable", "leader.imbalance.check.interval.seconds", "leader.imbalance.per.broker.percentage":
		return true
	}
	return false
}

// AlterBrokerConfigs sets and removes dynamic broker configs (replace: set
// becomes the whole of them), validated as the topic configs they are the
// defaults of, and applies them at once to every topic that does not set
// its own. They persist as a metadata command.
func (b *Broker) AlterBrokerConfigs(set map[string]string, remove []string, replace, validateOnly bool) error {
	for k, v := range set {
		c, ok := brokerSynonyms[k]
		if !ok {
			return fmt.Errorf("%w: Unknown or read-only broker config name: %s", ErrInvalidConfig, k)
		}
		if err := c.validate(k, v); err != nil {
			return err
		}
	}
	for _, k := range remove {
		if _, ok := brokerSynonyms[k]; !ok {
			return fmt.Errorf("%w: Unknown or read-only broker config name: %s", ErrInvalidConfig, k)
		}
	}
	if validateOnly {
		return nil
	}
	// Topic changes reserve their names; this one reserves a name no
	// topic can have, so that broker changes take turns, and applies the
	// result to each topic under its own reservation.
	release, err := b.reserve("")
	if err != nil {
		return err
	}
	defer release()
	if err := b.meta.AlterBrokerConfigs(set, remove, replace); err != nil {
		return metaErr(err)
	}
	// Every topic, and every name being changed (a topic being created
	// may have resolved its settings before the change): reconfigure
	// waits for such a change to end, so none keeps the old defaults.
	b.mu.RLock()
	names := make([]string, 0, len(b.topics)+len(b.changing))
	for name := range b.topics {
		names = append(names, name)
	}
	for name := range b.changing {
		if _, ok := b.topics[name]; !ok && name != "" {
			names = append(names, name)
		}
	}
	b.mu.RUnlock()
	for _, name := range names {
		b.reconfigure(name)
	}
	return nil
}

// reconfigure re-resolves a topic's settings after a broker config
// changed and applies them to its partitions.
func (b *Broker) reconfigure(name string) {
	release, err := b.reserve(name)
	if err != nil {
		return
	}
	defer release()
	tp, ok := b.Topic(name)
	if !ok {
		return
	}
	updated := &Topic{Topic: tp.Topic, Partitions: tp.Partitions, cfg: b.resolve(tp.Configs)}
	for _, p := range updated.Partitions {
		p.configure(updated.cfg)
	}
	b.install(updated)
}
