package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake, v0-1: the client names a mechanism (PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512). After v0 the SASL tokens follow as
// bare length-prefixed frames (what kafka-python 2.0 sends); after v1 they
// come in SaslAuthenticate requests. An unsupported mechanism is answered
// UNSUPPORTED_SASL_MECHANISM with the list, a handshake in the middle of
// an exchange ILLEGAL_SASL_STATE, and then, as in Kafka, the connection
// closes. A handshake after a successful login starts a
// re-authentication (KIP-368), which needs v1.
//
// Runs in the read loop: the next frame is read knowing the outcome.

const saslHandshakeKey = 17

func prepareSaslHandshake(c *conn, r kmsg.Request) func() (kmsg.Response, error) {
	req := r.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = saslMechanisms
	st := &c.sasl
	switch {
	case st.mechanism != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
		st.closeAfter = "SaslHandshake during a SASL exchange"
	case !slices.Contains(saslMechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		st.closeAfter = "unsupported SASL mechanism " + req.Mechanism
		c.authFailed("", req.Mechanism, "unsupported mechanism; enabled: "+enabledMechanisms())
	case st.principal != "" && req.Version == 0:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		st.closeAfter = "re-authentication needs SaslHandshake v1"
	default:
		st.mechanism, st.raw, st.scram = req.Mechanism, req.Version == 0, nil
	}
	return func() (kmsg.Response, error) { return resp, nil }
}
