package kafka

// ApiVersions, versions 0-4.
//
// The answer is built from the dispatch table, so it can never disagree
// with what the broker accepts. An ApiVersions request at a version newer
// than we know is answered at v0 with UNSUPPORTED_VERSION and, as Kafka
// does (KIP-511), only ApiVersions' own version range, so that the client
// asks again at a version it shares with us: answered with the whole
// list, franz-go (which asks at v5 first) would take that v0 answer as
// final and never see the features below. The response header is never
// flexible, as in Kafka.
//
// From v3 the answer carries the feature flags (KIP-584) as Kafka 4.x
// does: transaction.version is supported from 0 to 2 and finalized at
// Options.TransactionVersion (2 by default), which is what makes franz-go
// and the Java client run KIP-890 part 2 transactions; share.version is
// supported from 0 to 1 and finalized at 1 (share groups, KIP-932). The
// finalized features' epoch is fixed, since the levels only change with a
// restart.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// supported is the ApiVersions key list, built from the table at init
// (the table refers to this file's handler, so it cannot be a var
// initializer).
var supported []kmsg.ApiVersionsResponseApiKey

func init() {
	for _, a := range apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		supported = append(supported, k)
	}
}

// feature is a feature flag the broker supports (KIP-584).
type feature struct {
	name     string
	min, max int16
	// level is the level the server finalizes it at.
	level func(*Server) int16
}

var features = []feature{
	{name: "transaction.version", min: 0, max: 2, level: func(s *Server) int16 { return s.opts.TransactionVersion }},
	// Share groups (KIP-932) are served: finalized at 1, as Kafka 4.2
	// enables them.
	{name: "share.version", min: 0, max: 1, level: func(*Server) int16 { return 1 }},
}

// finalizedFeaturesEpoch is the epoch of the finalized levels; Kafka's
// is the metadata offset that last changed them, ours never change while
// the broker runs.
const finalizedFeaturesEpoch = 1

func apiVersionsResponse(code int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = code
	resp.ApiKeys = supported
	return resp
}

func handleApiVersions(c *conn, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := apiVersionsResponse(0)
	if req.Version < 3 {
		return resp, nil
	}
	resp.FinalizedFeaturesEpoch = finalizedFeaturesEpoch
	for _, f := range features {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = f.name, f.min, f.max
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		if level := f.level(c.s); level > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = f.name, level, level
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		}
	}
	return resp, nil
}

func unsupportedApiVersions() (kmsg.Response, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	for _, k := range supported {
		if k.ApiKey == apiVersionsKey {
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
	}
	return resp, nil
}

func invalidApiVersions() (kmsg.Response, error) {
	return apiVersionsResponse(kerr.InvalidRequest.Code), nil
}
