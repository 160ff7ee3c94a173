package meta

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func init() {
	for _, k := range []string{"set_limit", "clear_limit", "alter_client_quotas"} {
		sinceV1[k] = true
	}
}

// The log encoding of the limit and quota commands: it must never change.
func TestLimitCommandEncoding(t *testing.T) {
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{NewCommand(&SetLimitCmd{Kind: "vhost", Name: "/", Key: "max-queues", Value: 10}),
			`{"type":"set_limit","set_limit":{"kind":"vhost","name":"/","key":"max-queues","value":10}}`},
		{NewCommand(&ClearLimitCmd{Kind: "user", Name: "bob", Key: "max-channels"}),
			`{"type":"clear_limit","clear_limit":{"kind":"user","name":"bob","key":"max-channels"}}`},
		{NewCommand(&AlterClientQuotasCmd{Entity: []QuotaEntityPart{{Type: "client-id", Name: "app"}, {Type: "user", Default: true}}, Set: map[string]float64{"producer_byte_rate": 1024}, Remove: []string{"request_percentage"}}),
			`{"type":"alter_client_quotas","alter_client_quotas":{"entity":[{"type":"client-id","name":"app"},{"type":"user","default":true}],"set":{"producer_byte_rate":1024},"remove":["request_percentage"]}}`},
	} {
		b, err := encodeCommand(&tc.cmd)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s: got %s, %v\nwant %s", tc.cmd.Type, b, err, tc.want)
		}
	}
}

// Limits and quotas are refused when malformed, go with their vhost or
// user, and survive replay and snapshots.
func TestLimitsAndQuotasDurable(t *testing.T) {
	for _, every := range []int{1000, 2} {
		t.Run(fmt.Sprint("snapshot every ", every), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, testOptions(every))
			if err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := s.SetLimit(Limit{Kind: LimitVhost, Name: "nope", Key: "max-queues", Value: 1}); !errors.Is(err, ErrUnknownVhost) {
				t.Errorf("limit of a missing vhost: %v", err)
			}
			must(s.PutVhost(Vhost{Name: "/"}))
			must(s.PutVhost(Vhost{Name: "gone"}))
			must(s.PutUser(User{Name: "bob", PasswordHash: "h"}))
			if err := s.SetLimit(Limit{Kind: LimitVhost, Name: "/", Key: "max-channels", Value: 1}); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("a user key as a vhost limit: %v", err)
			}
			must(s.SetLimit(Limit{Kind: LimitVhost, Name: "/", Key: "max-queues", Value: 3}))
			must(s.SetLimit(Limit{Kind: LimitVhost, Name: "/", Key: "max-connections", Value: -1}))
			must(s.SetLimit(Limit{Kind: LimitVhost, Name: "gone", Key: "max-queues", Value: 3}))
			must(s.SetLimit(Limit{Kind: LimitUser, Name: "bob", Key: "max-channels", Value: 2}))
			must(s.DeleteVhost("gone"))
			if err := s.AlterClientQuotas([]QuotaEntityPart{{Type: "user", Name: "x"}, {Type: "client-id", Name: "y"}}, map[string]float64{"producer_byte_rate": 1}, nil); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("unsorted entity: %v", err)
			}
			if err := s.AlterClientQuotas([]QuotaEntityPart{{Type: "user", Name: "x"}}, map[string]float64{"controller_mutation_rate": 1}, nil); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("an unsupported key: %v", err)
			}
			must(s.AlterClientQuotas([]QuotaEntityPart{{Type: "client-id", Name: "app"}}, map[string]float64{"producer_byte_rate": 100, "consumer_byte_rate": 200}, nil))
			must(s.AlterClientQuotas([]QuotaEntityPart{{Type: "client-id", Name: "app"}}, nil, []string{"consumer_byte_rate"}))
			must(s.AlterClientQuotas([]QuotaEntityPart{{Type: "user", Default: true}}, map[string]float64{"request_percentage": 50}, nil))
			must(s.AlterClientQuotas([]QuotaEntityPart{{Type: "user", Name: "tmp"}}, map[string]float64{"request_percentage": 50}, nil))
			must(s.AlterClientQuotas([]QuotaEntityPart{{Type: "user", Name: "tmp"}}, nil, []string{"request_percentage"}))
			check := func(s *Store) {
				t.Helper()
				if v, ok := s.Limit(LimitVhost, "/", "max-queues"); !ok || v != 3 {
					t.Errorf("max-queues of /: %d %v", v, ok)
				}
				if _, ok := s.Limit(LimitVhost, "/", "max-connections"); ok {
					t.Error("a -1 limit reads as a limit")
				}
				if ls := s.Limits(LimitVhost); len(ls) != 2 {
					t.Errorf("vhost limits (the deleted vhost's gone): %+v", ls)
				}
				if v, ok := s.Limit(LimitUser, "bob", "max-channels"); !ok || v != 2 {
					t.Errorf("bob's max-channels: %d %v", v, ok)
				}
				qs := s.ClientQuotas()
				if len(qs) != 2 || qs[0].Entity[0].Name != "app" || len(qs[0].Values) != 1 || qs[0].Values["producer_byte_rate"] != 100 || !qs[1].Entity[0].Default {
					t.Errorf("quotas: %+v", qs)
				}
			}
			check(s)
			must(s.Close())
			if _, err := os.Stat(filepath.Join(dir, snapshotName)); (err == nil) != (every == 2) {
				t.Fatalf("snapshot file with every %d: %v", every, err)
			}
			s, err = Open(dir, testOptions(every)) // replay, from a snapshot with every 2
			must(err)
			defer s.Close()
			check(s)
			must(s.DeleteUser("bob"))
			if _, ok := s.Limit(LimitUser, "bob", "max-channels"); ok {
				t.Error("a deleted user's limit remains")
			}
			if err := s.SetLimit(Limit{Kind: LimitUser, Name: "nobody", Key: "max-channels", Value: 2}); !errors.Is(err, ErrUnknownUser) {
				t.Errorf("limit of an unknown user: %v", err)
			}
		})
	}
}
