package kafka

// AlterConfigs, versions 0-2.
//
// Replaces a resource's whole set of configs with the given ones, as Kafka
// does (a config left out returns to its default); a null value is
// INVALID_REQUEST, an unknown or invalid config INVALID_CONFIG, an unknown
// topic UNKNOWN_TOPIC_OR_PARTITION. ValidateOnly checks without changing.
// A broker (named "1", or "" for the cluster-wide defaults: on one node the
// same set) takes the broker synonyms of topic configs (log.retention.ms,
// compression.type, ...), which become the default of every topic that
// does not set its own and persist; a read-only broker config
// (num.partitions, broker.id, ...) is INVALID_REQUEST, as in Kafka. Other
// resource types are INVALID_REQUEST.

import (
	"sort"
	"strings"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterConfigs(c *conn, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		resp.Resources = append(resp.Resources, c.alterConfigs(rr.ResourceType, rr.ResourceName, func() error {
			set := make(map[string]string, len(rr.Configs))
			for _, cfg := range rr.Configs {
				if cfg.Value == nil {
					return reqErr(kerr.InvalidRequest, "null value for config %q", cfg.Name)
				}
				set[cfg.Name] = *cfg.Value
			}
			if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
				var others []string // replaced: back to their defaults
				for _, k := range share.ConfigNames() {
					if _, ok := set[k]; !ok {
						others = append(others, k)
					}
				}
				return c.shareGroupConfigs(rr.ResourceName, set, others, req.ValidateOnly)
			}
			if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
				if err := checkDynamic(set, nil); err != nil {
					return err
				}
				return c.s.broker.AlterBrokerConfigs(set, nil, true, req.ValidateOnly)
			}
			return c.s.broker.AlterTopicConfigs(rr.ResourceName, set, nil, true, req.ValidateOnly)
		}))
	}
	return resp, nil
}

// alterConfigs answers one resource of AlterConfigs or
// IncrementalAlterConfigs (whose resource answers have the same shape): a
// topic or this broker is altered by alter; anything else is refused.
func (c *conn) alterConfigs(typ kmsg.ConfigResourceType, name string, alter func() error) kmsg.AlterConfigsResponseResource {
	sr := kmsg.NewAlterConfigsResponseResource()
	sr.ResourceType, sr.ResourceName = typ, name
	err := c.configsAllowed(typ, name, auth.OpAlterConfigs)
	switch {
	case err != nil:
	case typ == kmsg.ConfigResourceTypeTopic:
		err = alter()
	case typ == kmsg.ConfigResourceTypeBroker:
		if err = checkBrokerName(c.s.self, name); err == nil {
			err = alter()
		}
	case typ == kmsg.ConfigResourceTypeGroupConfig:
		err = alter() // share group configs (shareGroupConfigs)
	default:
		err = reqErr(kerr.InvalidRequest, "resource type %s (%d) is not supported", typ, int8(typ))
	}
	sr.ErrorCode, sr.ErrorMessage = codeAndMessage(err)
	return sr
}

// checkDynamic refuses, with Kafka's INVALID_REQUEST, changes of broker
// configs that exist but cannot change at run time. Unknown names are
// left to the broker (INVALID_CONFIG).
func checkDynamic(set map[string]string, remove []string) error {
	var fixed []string
	for _, k := range append(keysOf(set), remove...) {
		if broker.IsReadOnlyBrokerConfig(k) {
			fixed = append(fixed, k)
		}
	}
	if len(fixed) > 0 {
		sort.Strings(fixed)
		return reqErr(kerr.InvalidRequest, "Cannot update these configs dynamically: %s", strings.Join(fixed, ", "))
	}
	return nil
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
