package meta

import (
	"encoding/json"
	"maps"
	"testing"
)

func init() { sinceV1["alter_broker_configs"] = true } // tested here, not in the v1 log

// Dynamic broker configs survive a restart (log replay) and a snapshot.
func TestBrokerConfigsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AlterBrokerConfigs(map[string]string{"log.retention.ms": "60000", "compression.type": "zstd"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AlterBrokerConfigs(map[string]string{"min.insync.replicas": "2"}, []string{"compression.type"}, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"log.retention.ms": "60000", "min.insync.replicas": "2"}
	if got := s.BrokerConfigs(); !maps.Equal(got, want) {
		t.Fatalf("configs %v, want %v", got, want)
	}
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.BrokerConfigs(); !maps.Equal(got, want) {
		t.Fatalf("after replay: configs %v, want %v", got, want)
	}
	s.mu.RLock()
	b, err := json.Marshal(s.state)
	s.mu.RUnlock()
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := NewState()
	if err := json.Unmarshal(b, st); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(st.brokerConfigs, want) {
		t.Fatalf("after snapshot: configs %v, want %v", st.brokerConfigs, want)
	}

	if _, err := st.Apply(NewCommand(&AlterBrokerConfigsCmd{Replace: true})); err != nil || st.brokerConfigs != nil {
		t.Fatalf("replace with nothing: %v, %v", st.brokerConfigs, err)
	}
}
