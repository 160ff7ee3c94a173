package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate, v0-2: one SASL token of the exchange a v1
// SaslHandshake started (sasl.go). PLAIN takes one round, SCRAM two. A
// failed login is answered SASL_AUTHENTICATION_FAILED with Kafka's
// message ("Authentication failed: Invalid username or password") and
// the connection closes; a token without a handshake before it is
// ILLEGAL_SASL_STATE, and the connection closes. v1+ answers carry
// session_lifetime_ms (Options.SASLSessionLifetime; 0 = no expiry), after
// which the client must re-authenticate (KIP-368) before any other
// request, or the connection closes.
//
// Runs in the read loop, like SaslHandshake.

const saslAuthenticateKey = 36

func prepareSaslAuthenticate(c *conn, r kmsg.Request) func() (kmsg.Response, error) {
	req := r.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	answer := func() (kmsg.Response, error) { return resp, nil }
	st := &c.sasl
	if st.mechanism == "" || st.raw {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake v1 before it"
		resp.ErrorMessage = &msg
		st.closeAfter = msg
		return answer
	}
	mech := st.mechanism
	out, done, err := c.saslStep(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		st.closeAfter = "SASL " + mech + " login failed"
		return answer
	}
	resp.SASLAuthBytes = out
	if done && !st.expires.IsZero() {
		resp.SessionLifetimeMillis = c.s.opts.SASLSessionLifetime.Milliseconds()
	}
	return answer
}
