package config

import (
	"strings"
	"testing"
	"time"
)

// TestReplicaLagTimeMax: replica_lag_time_max defaults to Kafka's 30 s,
// is read from the environment like every key, and a cluster node
// refuses a value that is not positive.
func TestReplicaLagTimeMax(t *testing.T) {
	if d := Default().ReplicaLagTimeMax; d != 30*time.Second {
		t.Fatalf("default %v, want 30s", d)
	}
	c := Default()
	if err := c.LoadEnv([]string{"SLUICE_REPLICA_LAG_TIME_MAX=2s"}); err != nil {
		t.Fatal(err)
	}
	if c.ReplicaLagTimeMax != 2*time.Second || FlagName("replica_lag_time_max") != "replica-lag-time-max" {
		t.Fatalf("from the environment: %v", c.ReplicaLagTimeMax)
	}
	set := map[string]string{
		"node_id": "1", "cluster_peers": "1=127.0.0.1:9190,2=127.0.0.1:9191",
		"cluster_id": "blue", "cluster_secret_file": secretFile(t, "s"),
	}
	c = clusterConfig(t, set)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.ReplicaLagTimeMax = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "replica_lag_time_max") {
		t.Fatalf("a zero lag time: %v", err)
	}
}
