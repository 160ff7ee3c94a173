package kafka

// AlterConfigs, versions 0-2.
//
// Replaces a topic's whole set of configs with the given ones, as Kafka
// does (a config left out returns to its default); a null value is
// INVALID_REQUEST, an unknown or invalid config INVALID_CONFIG, an unknown
// topic UNKNOWN_TOPIC_OR_PARTITION. ValidateOnly checks without changing.
// Broker configs are static in Sluice (set in its configuration), so a
// broker resource is INVALID_REQUEST, as are other resource types.

import (
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
			return c.s.broker.AlterTopicConfigs(rr.ResourceName, set, nil, true, req.ValidateOnly)
		}))
	}
	return resp, nil
}

// alterConfigs answers one resource of AlterConfigs or
// IncrementalAlterConfigs (whose resource answers have the same shape): a
// topic is altered by alterTopic; anything else is refused.
func (c *conn) alterConfigs(typ kmsg.ConfigResourceType, name string, alterTopic func() error) kmsg.AlterConfigsResponseResource {
	sr := kmsg.NewAlterConfigsResponseResource()
	sr.ResourceType, sr.ResourceName = typ, name
	var err error
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		err = alterTopic()
	case kmsg.ConfigResourceTypeBroker:
		err = reqErr(kerr.InvalidRequest, "broker configs cannot be altered at run time: set them in Sluice's configuration")
	default:
		err = reqErr(kerr.InvalidRequest, "resource type %s (%d) is not supported", typ, int8(typ))
	}
	sr.ErrorCode, sr.ErrorMessage = codeAndMessage(err)
	return sr
}
