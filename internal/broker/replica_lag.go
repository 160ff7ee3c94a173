package broker

import "time"

// defaultReplicaLagTime is Kafka's default replica.lag.time.max.ms, the
// one a replica uses when ReplicationOptions.LagTime is unset.
const defaultReplicaLagTime = 30 * time.Second

// replicaLagTime is the replica.lag.time.max.ms every replicated partition
// of this broker applies, as DescribeConfigs reports it.
func (b *Broker) replicaLagTime() time.Duration {
	if d := b.opts.Replication.LagTime; d > 0 {
		return d
	}
	return defaultReplicaLagTime
}
