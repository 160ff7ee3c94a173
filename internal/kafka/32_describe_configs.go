package kafka

// DescribeConfigs, versions 0-4.
//
// Topics (resource type 2) report every topic config Apache Kafka 4.x
// accepts, resolved: source DYNAMIC_TOPIC_CONFIG when set on the topic,
// DYNAMIC_BROKER_CONFIG when its broker synonym was altered at run time,
// DEFAULT_CONFIG otherwise (v0: IsDefault); never read-only or sensitive.
// An unknown topic is UNKNOWN_TOPIC_OR_PARTITION. The broker (type 4,
// named "1", or "" for the cluster-wide defaults, which on one node are the
// same set) reports its read-only settings (broker.id, num.partitions,
// auto.create.topics.enable, ...) with source STATIC_BROKER_CONFIG, and the
// broker synonym of every topic config (log.retention.ms, compression.type,
// ...), alterable: DYNAMIC_BROKER_CONFIG once altered, else
// STATIC_BROKER_CONFIG for those Sluice's configuration sets
// (log.retention.ms, log.retention.bytes, log.segment.bytes, log.roll.ms,
// message.max.bytes) and DEFAULT_CONFIG for the rest. A GROUP resource
// (type 32) reports the share group configs (share.go), GROUP_CONFIG when
// set on the group, DEFAULT_CONFIG otherwise. Other resource types are
// INVALID_REQUEST. A null ConfigNames asks for every config; unknown
// names are left out. With IncludeSynonyms (v1+) each config lists where
// its value could come from, strongest first, itself included; v3+
// answers each config's type, and its documentation when
// IncludeDocumentation is set.

import (
	"slices"
	"strconv"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeConfigs(c *conn, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if err := c.configsAllowed(rr.ResourceType, rr.ResourceName, auth.OpDescribeConfigs); err != nil {
			sr.ErrorCode, sr.ErrorMessage = codeAndMessage(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
			c.describeShareGroupConfigs(&sr, rr.ConfigNames)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		entries, err := c.describeConfigs(rr.ResourceType, rr.ResourceName)
		sr.ErrorCode, sr.ErrorMessage = codeAndMessage(err)
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.Key) {
				continue
			}
			sr.Configs = append(sr.Configs, describedConfig(e, req.IncludeSynonyms, req.IncludeDocumentation))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (c *conn) describeConfigs(typ kmsg.ConfigResourceType, name string) ([]broker.ConfigEntry, error) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		return c.s.broker.TopicConfigs(name)
	case kmsg.ConfigResourceTypeBroker:
		if err := checkBrokerName(c.s.self, name); err != nil {
			return nil, err
		}
		return c.s.broker.BrokerConfigs(c.s.self), nil
	default:
		return nil, reqErr(kerr.InvalidRequest, "resource type %s (%d) is not supported", typ, int8(typ))
	}
}

// checkBrokerName accepts this broker's id and "" (the cluster default).
func checkBrokerName(self int32, name string) error {
	if name != "" && name != strconv.Itoa(int(self)) {
		return reqErr(kerr.InvalidRequest, "unexpected broker id %q: this is broker %d", name, self)
	}
	return nil
}

func describedConfig(e broker.ConfigEntry, synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	sc := kmsg.NewDescribeConfigsResponseResourceConfig()
	sc.Name, sc.Value, sc.Source, sc.ReadOnly = e.Key, kmsg.StringPtr(e.Value), configSource(e), e.ReadOnly
	sc.IsDefault = sc.Source == kmsg.ConfigSourceDefaultConfig
	sc.ConfigType = kmsg.ConfigType(e.Type)
	if docs && e.Doc != "" {
		sc.Documentation = kmsg.StringPtr(e.Doc)
	}
	if synonyms {
		for _, s := range e.Synonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = s.Key, kmsg.StringPtr(s.Value), configSource(s)
			sc.ConfigSynonyms = append(sc.ConfigSynonyms, syn)
		}
	}
	return sc
}

// configsAllowed checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config
// resource: a topic (TOPIC_AUTHORIZATION_FAILED), the broker, which is the
// cluster (CLUSTER_AUTHORIZATION_FAILED), or a group
// (GROUP_AUTHORIZATION_FAILED). Other types are left to the handler.
func (c *conn) configsAllowed(typ kmsg.ConfigResourceType, name string, op auth.Operation) error {
	var rt auth.ResourceType
	var code *kerr.Error
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		rt, code = auth.ResourceTopic, errTopicAuth
	case kmsg.ConfigResourceTypeBroker:
		rt, code, name = auth.ResourceCluster, errClusterAuth, auth.ClusterResourceName
	case kmsg.ConfigResourceTypeGroupConfig:
		rt, code = auth.ResourceGroup, errGroupAuth
	default:
		return nil
	}
	if !c.allowed(rt, name, op) {
		return reqErr(code, "%s on %s %q is not allowed", op, rt, name)
	}
	return nil
}
