package kafka

// AlterClientQuotas, versions 0-1.
//
// Sets and removes client quotas (KIP-546) per entity: user, client-id or
// both, each a name or (a null name) the type's default entity. The keys
// Sluice takes are producer_byte_rate and consumer_byte_rate (bytes per
// second, enforced: quota.go) and request_percentage (stored and
// described, not enforced yet); others, controller_mutation_rate among
// them, and the ip entity type are INVALID_REQUEST, as is a value not
// above zero or an entity type given twice. Each entry succeeds or fails
// alone; ValidateOnly checks without storing. The changes are metadata
// commands (alter_client_quotas), durable before the answer. Needs
// ALTER_CONFIGS on the cluster, as in Kafka; others get
// CLUSTER_AUTHORIZATION_FAILED on every entry.

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterClientQuotas(c *conn, req *kmsg.AlterClientQuotasRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	changed := false
	allowed := c.allowedCluster(auth.OpAlterConfigs)
	for _, entry := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, e := range entry.Entity {
			re.Entity = append(re.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: e.Type, Name: e.Name})
		}
		if !allowed {
			re.ErrorCode = errClusterAuth.Code
			re.ErrorMessage = kmsg.StringPtr("ALTER_CONFIGS on the cluster is needed to alter client quotas")
			resp.Entries = append(resp.Entries, re)
			continue
		}
		entity, set, remove, err := parseQuotaEntry(entry)
		if err == nil && !req.ValidateOnly {
			if err = c.s.broker.AlterClientQuotas(entity, set, remove); err != nil {
				re.ErrorCode = kerr.UnknownServerError.Code
				msg := err.Error()
				re.ErrorMessage = &msg
			}
			changed = true
		} else if err != nil {
			re.ErrorCode = kerr.InvalidRequest.Code
			msg := err.Error()
			re.ErrorMessage = &msg
		}
		resp.Entries = append(resp.Entries, re)
	}
	if changed {
		c.s.quotas.invalidate()
	}
	return resp, nil
}

// parseQuotaEntry checks one entry and returns its entity (parts sorted by
// type), the values to set and the keys to remove.
func parseQuotaEntry(entry kmsg.AlterClientQuotasRequestEntry) ([]broker.QuotaEntityPart, map[string]float64, []string, error) {
	var entity []broker.QuotaEntityPart
	for _, e := range entry.Entity {
		if !quotaEntityType(e.Type) {
			return nil, nil, nil, fmt.Errorf("entity type %q is not supported", e.Type)
		}
		p := broker.QuotaEntityPart{Type: e.Type, Default: e.Name == nil}
		if e.Name != nil {
			if !utf8.ValidString(*e.Name) {
				return nil, nil, nil, fmt.Errorf("entity name is not UTF-8")
			}
			p.Name = *e.Name
		}
		entity = append(entity, p)
	}
	if len(entity) == 0 {
		return nil, nil, nil, fmt.Errorf("empty entity")
	}
	slices.SortFunc(entity, func(a, b broker.QuotaEntityPart) int { return cmp.Compare(a.Type, b.Type) })
	for i := 1; i < len(entity); i++ {
		if entity[i].Type == entity[i-1].Type {
			return nil, nil, nil, fmt.Errorf("entity type %q given twice", entity[i].Type)
		}
	}
	set := map[string]float64{}
	var remove []string
	for _, op := range entry.Ops {
		if !broker.QuotaKeyValid(op.Key) {
			return nil, nil, nil, fmt.Errorf("quota %q is not supported", op.Key)
		}
		if op.Remove {
			remove = append(remove, op.Key)
			delete(set, op.Key)
			continue
		}
		if !(op.Value > 0) || op.Value > 1e18 {
			return nil, nil, nil, fmt.Errorf("quota %s = %v: must be positive", op.Key, op.Value)
		}
		set[op.Key] = op.Value
	}
	return entity, set, remove, nil
}
