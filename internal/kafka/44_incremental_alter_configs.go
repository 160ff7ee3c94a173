package kafka

// IncrementalAlterConfigs, versions 0-1.
//
// Changes the named configs of a topic or of the broker (as AlterConfigs
// describes them) and leaves the others: SET (a null value is
// INVALID_REQUEST), DELETE (back to the default), and, for list configs
// (cleanup.policy, the throttled replica lists), APPEND and SUBTRACT, which
// add missing items to and remove items from the current value, default
// included. As in Kafka, APPEND or SUBTRACT on a config that is not a list
// is INVALID_CONFIG, and a config named twice or an unknown operation
// INVALID_REQUEST. A GROUP resource (type 32) sets a share group's configs
// (share.go).

import (
	"slices"
	"strings"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleIncrementalAlterConfigs(c *conn, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := c.alterConfigs(rr.ResourceType, rr.ResourceName, func() error {
			return c.incrementalAlter(rr.ResourceType, rr.ResourceName, rr.Configs, req.ValidateOnly)
		})
		resp.Resources = append(resp.Resources, kmsg.IncrementalAlterConfigsResponseResource(sr))
	}
	return resp, nil
}

func (c *conn) incrementalAlter(typ kmsg.ConfigResourceType, name string, configs []kmsg.IncrementalAlterConfigsRequestResourceConfig, validateOnly bool) error {
	if dup := duplicated(configs, func(cfg kmsg.IncrementalAlterConfigsRequestResourceConfig) string { return cfg.Name }); dup != nil {
		return reqErr(kerr.InvalidRequest, "a config is named more than once")
	}
	set := make(map[string]string)
	var remove []string
	for _, cfg := range configs {
		switch op := cfg.Op; {
		case op == kmsg.IncrementalAlterConfigOpDelete:
			remove = append(remove, cfg.Name)
		case op < kmsg.IncrementalAlterConfigOpSet || op > kmsg.IncrementalAlterConfigOpSubtract:
			return reqErr(kerr.InvalidRequest, "unknown config operation %d", op)
		case cfg.Value == nil:
			return reqErr(kerr.InvalidRequest, "null value for config %q", cfg.Name)
		case op == kmsg.IncrementalAlterConfigOpSet:
			set[cfg.Name] = *cfg.Value
		case !broker.IsListConfig(cfg.Name):
			return reqErr(kerr.InvalidConfig, "config %q is not a list: it cannot be appended to or subtracted from", cfg.Name)
		default:
			current, err := c.currentConfig(typ, name, cfg.Name)
			if err != nil {
				return err
			}
			set[cfg.Name] = alterList(current, *cfg.Value, op == kmsg.IncrementalAlterConfigOpAppend)
		}
	}
	if typ == kmsg.ConfigResourceTypeGroupConfig {
		return c.shareGroupConfigs(name, set, remove, validateOnly)
	}
	if typ == kmsg.ConfigResourceTypeBroker {
		if err := checkDynamic(set, remove); err != nil {
			return err
		}
		return c.s.broker.AlterBrokerConfigs(set, remove, false, validateOnly)
	}
	return c.s.broker.AlterTopicConfigs(name, set, remove, false, validateOnly)
}

// currentConfig is one config's current value, default included.
func (c *conn) currentConfig(typ kmsg.ConfigResourceType, name, key string) (string, error) {
	entries, err := c.describeConfigs(typ, name)
	for _, e := range entries {
		if e.Key == key {
			return e.Value, nil
		}
	}
	return "", err
}

// alterList appends the items of the comma-separated list items to list
// (those not already in it), or subtracts them from it.
func alterList(list, items string, add bool) string {
	split := func(s string) []string {
		var out []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				out = append(out, it)
			}
		}
		return out
	}
	out := split(list)
	for _, it := range split(items) {
		i := slices.Index(out, it)
		switch {
		case add && i < 0:
			out = append(out, it)
		case !add && i >= 0:
			out = slices.Delete(out, i, i+1)
		}
	}
	return strings.Join(out, ",")
}
