package kafka

// ApiVersions, versions 0-4.
//
// The answer is built from the dispatch table, so it can never disagree
// with what the broker accepts. An ApiVersions request at a version newer
// than we know is answered at v0 with UNSUPPORTED_VERSION and the list
// (KIP-511); the response header is never flexible, as in Kafka.

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

func apiVersionsResponse(code int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = code
	resp.ApiKeys = supported
	return resp
}

func handleApiVersions(c *conn, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	return apiVersionsResponse(0), nil
}

func unsupportedApiVersions() (kmsg.Response, error) {
	return apiVersionsResponse(kerr.UnsupportedVersion.Code), nil
}

func invalidApiVersions() (kmsg.Response, error) {
	return apiVersionsResponse(kerr.InvalidRequest.Code), nil
}
