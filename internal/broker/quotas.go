package broker

import "github.com/sluice-mq/sluice/internal/meta"

// Kafka client quotas (KIP-546), stored as metadata commands; the Kafka
// front end enforces them (internal/kafka/quota.go).
type (
	ClientQuota     = meta.ClientQuota
	QuotaEntityPart = meta.QuotaEntityPart
)

// Client quota entity types.
const (
	QuotaUser     = meta.QuotaUser
	QuotaClientID = meta.QuotaClientID
)

// QuotaKeyValid reports whether key is a client quota Sluice stores
// (producer_byte_rate, consumer_byte_rate, request_percentage).
func QuotaKeyValid(key string) bool { return meta.QuotaKeyValid(key) }

// ClientQuotas returns every entity's client quotas, sorted by entity.
func (b *Broker) ClientQuotas() []ClientQuota { return b.meta.ClientQuotas() }

// AlterClientQuotas sets then removes the quota values of one entity,
// whose parts are sorted by type.
func (b *Broker) AlterClientQuotas(entity []QuotaEntityPart, set map[string]float64, remove []string) error {
	return b.meta.AlterClientQuotas(entity, set, remove)
}
