package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// An ApiVersions at a version we do not know is answered with
// ApiVersions' own range only (KIP-511, as Kafka), so the client retries
// at a version that carries the features.
func TestApiVersionsUnsupportedNamesOwnRange(t *testing.T) {
	r, _ := unsupportedApiVersions()
	resp := r.(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != apiVersionsKey || resp.ApiKeys[0].MaxVersion != lookup(apiVersionsKey).max {
		t.Fatalf("answer: %+v", resp)
	}
}

// From v3 the answer carries transaction.version, finalized at the
// server's level, and share.version, finalized at 1; before v3 there is
// no room for them.
func TestApiVersionsFeatures(t *testing.T) {
	for _, tc := range []struct {
		version, level, want int16
	}{
		{3, 2, 2}, {4, 2, 2}, {4, 1, 1}, {2, 2, -1},
	} {
		c := &conn{s: &Server{opts: Options{TransactionVersion: tc.level}}}
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = tc.version
		r, err := handleApiVersions(c, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*kmsg.ApiVersionsResponse)
		got, shareLevel := int16(-1), int16(-1)
		for _, f := range resp.FinalizedFeatures {
			switch f.Name {
			case "transaction.version":
				got = f.MaxVersionLevel
			case "share.version":
				shareLevel = f.MaxVersionLevel
			}
		}
		if tc.version >= 3 && shareLevel != 1 {
			t.Errorf("v%d: share.version finalized at %d, want 1", tc.version, shareLevel)
		}
		if got != tc.want || tc.want > 0 && (resp.FinalizedFeaturesEpoch < 0 || len(resp.SupportedFeatures) != 2) {
			t.Errorf("v%d at level %d: finalized %d (epoch %d, supported %+v), want %d", tc.version, tc.level, got, resp.FinalizedFeaturesEpoch, resp.SupportedFeatures, tc.want)
		}
	}
}
