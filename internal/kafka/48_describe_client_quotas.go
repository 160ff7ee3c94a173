package kafka

// DescribeClientQuotas, versions 0-1.
//
// Lists the client quotas (KIP-546) whose entity matches every component
// of the filter: a component names an entity type (user, client-id) and
// matches a name exactly, the type's default entity, or any entity of the
// type. With Strict, an entity must have no types besides the
// components'. An unknown entity type or a type filtered twice is
// INVALID_REQUEST, as in Kafka. Quotas are the stored ones
// (alter_client_quotas, docs/meta-format.md); the keys are
// producer_byte_rate, consumer_byte_rate and request_percentage. Needs
// DESCRIBE_CONFIGS on the cluster, as in Kafka; others get
// CLUSTER_AUTHORIZATION_FAILED.

import (
	"maps"
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeClientQuotas(c *conn, req *kmsg.DescribeClientQuotasRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !c.allowedCluster(auth.OpDescribeConfigs) {
		resp.ErrorCode = errClusterAuth.Code
		resp.ErrorMessage = kmsg.StringPtr("DESCRIBE_CONFIGS on the cluster is needed to describe client quotas")
		return resp, nil
	}
	seen := map[string]bool{}
	for _, comp := range req.Components {
		if !quotaEntityType(comp.EntityType) || seen[comp.EntityType] {
			resp.ErrorCode = kerr.InvalidRequest.Code
			msg := "invalid or repeated entity type " + comp.EntityType
			resp.ErrorMessage = &msg
			return resp, nil
		}
		seen[comp.EntityType] = true
	}
	for _, q := range c.s.broker.ClientQuotas() {
		if !quotaMatches(q.Entity, req.Components, req.Strict) {
			continue
		}
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range q.Entity {
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type = p.Type
			if !p.Default {
				name := p.Name
				ent.Name = &name
			}
			e.Entity = append(e.Entity, ent)
		}
		for _, k := range slices.Sorted(maps.Keys(q.Values)) {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, q.Values[k]
			e.Values = append(e.Values, v)
		}
		resp.Entries = append(resp.Entries, e)
	}
	return resp, nil
}

// quotaEntityType reports the entity types Sluice stores quotas for.
func quotaEntityType(t string) bool { return t == broker.QuotaUser || t == broker.QuotaClientID }

// quotaMatches reports whether an entity matches every component (and,
// strict, has no other type).
func quotaMatches(entity []broker.QuotaEntityPart, comps []kmsg.DescribeClientQuotasRequestComponent, strict bool) bool {
	if strict && len(entity) != len(comps) {
		return false
	}
	for _, comp := range comps {
		var part *broker.QuotaEntityPart
		for i := range entity {
			if entity[i].Type == comp.EntityType {
				part = &entity[i]
			}
		}
		if part == nil {
			return false
		}
		switch comp.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if part.Default || comp.Match == nil || *comp.Match != part.Name {
				return false
			}
		case kmsg.QuotasMatchTypeDefault:
			if !part.Default {
				return false
			}
		case kmsg.QuotasMatchTypeAny:
		default:
			return false
		}
	}
	return true
}
