package kafka

// DescribeConfigs, versions 0-4.
//
// Topics (resource type 2) report every topic config Sluice understands,
// resolved: source DYNAMIC_TOPIC_CONFIG when set on the topic,
// DEFAULT_CONFIG otherwise (v0: IsDefault), never read-only or sensitive.
// An unknown topic is UNKNOWN_TOPIC_OR_PARTITION. The broker (type 4,
// named "1" or "" for the cluster default) reports the settings behind
// topic defaults and auto-creation under their Kafka names, read-only with
// source STATIC_BROKER_CONFIG: Sluice takes them from its configuration
// and does not change them at run time. Other resource types are
// INVALID_REQUEST. A null ConfigNames asks for every config; unknown names
// are left out. With IncludeSynonyms (v1+) each config lists itself as its
// only synonym. Config types and documentation (v3+) are not reported.

import (
	"slices"
	"strconv"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeConfigs(c *conn, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		configs, err := c.describeConfigs(rr.ResourceType, rr.ResourceName)
		sr.ErrorCode, sr.ErrorMessage = codeAndMessage(err)
		for _, sc := range configs {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, sc.Name) {
				continue
			}
			if req.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = sc.Name, sc.Value, sc.Source
				sc.ConfigSynonyms = append(sc.ConfigSynonyms, syn)
			}
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (c *conn) describeConfigs(typ kmsg.ConfigResourceType, name string) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		entries, err := c.s.broker.TopicConfigs(name)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			out = append(out, describedConfig(e.Key, e.Value, configSource(e), false))
		}
	case kmsg.ConfigResourceTypeBroker:
		if name != "" && name != strconv.Itoa(NodeID) {
			return nil, reqErr(kerr.InvalidRequest, "unexpected broker id %q: this is broker %d", name, NodeID)
		}
		for _, e := range brokerConfigs(c.s.broker.Defaults(), c.s.broker.AutoCreate()) {
			out = append(out, describedConfig(e.Key, e.Value, kmsg.ConfigSourceStaticBrokerConfig, true))
		}
	default:
		return nil, reqErr(kerr.InvalidRequest, "resource type %s (%d) is not supported", typ, int8(typ))
	}
	return out, nil
}

func describedConfig(name, value string, source kmsg.ConfigSource, readOnly bool) kmsg.DescribeConfigsResponseResourceConfig {
	sc := kmsg.NewDescribeConfigsResponseResourceConfig()
	sc.Name, sc.Value, sc.Source, sc.ReadOnly = name, kmsg.StringPtr(value), source, readOnly
	sc.IsDefault = source == kmsg.ConfigSourceDefaultConfig
	return sc
}

// brokerConfigs are the broker settings DescribeConfigs reports, under
// Kafka's names, sorted.
func brokerConfigs(d broker.Defaults, autoCreate bool) []broker.ConfigEntry {
	ms := func(ms int64) string { return strconv.FormatInt(max(ms, -1), 10) }
	return []broker.ConfigEntry{
		{Key: "auto.create.topics.enable", Value: strconv.FormatBool(autoCreate)},
		{Key: "broker.id", Value: strconv.Itoa(NodeID)},
		{Key: "default.replication.factor", Value: "1"},
		{Key: "log.retention.bytes", Value: strconv.FormatInt(d.RetentionBytes, 10)},
		{Key: "log.retention.ms", Value: ms(d.Retention.Milliseconds())},
		{Key: "log.roll.ms", Value: ms(d.SegmentAge.Milliseconds())},
		{Key: "log.segment.bytes", Value: strconv.FormatInt(d.SegmentBytes, 10)},
		{Key: "message.max.bytes", Value: strconv.Itoa(d.MaxMessageBytes)},
		{Key: "node.id", Value: strconv.Itoa(NodeID)},
		{Key: "num.partitions", Value: strconv.Itoa(int(d.Partitions))},
	}
}
