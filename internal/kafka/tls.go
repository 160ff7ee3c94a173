package kafka

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// mechanismCertificate names a login by client certificate in logs and
// the failed-login count, as AMQP's EXTERNAL mechanism.
const mechanismCertificate = "EXTERNAL"

// certificateUser sets the connection's user from its client certificate:
// on a TLS connection whose client presented a certificate the CA
// verified, the subject's common name is the principal, as RabbitMQ's
// EXTERNAL mechanism takes it. Kafka's default principal is the whole
// distinguished name ("User:CN=alice,OU=..."); Sluice takes the common
// name so that one user store serves Kafka, AMQP and HTTP
// (docs/kafka-compatibility.md). The user must exist (Options.Users) and
// the loopback rule applies; otherwise the connection is closed, as after
// a failed SASL login. A TLS connection without a verified certificate
// stays as the listener leaves it (anonymous where allowed, else SASL).
//
// The certificate authenticates the connection without being its SASL
// login: a client that also logs in with SASL (Kafka's SASL_SSL with a
// client certificate) acts as the SASL user, as in Kafka, where the SASL
// principal wins on such a listener.
func (c *conn) certificateUser() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	// Done already when the listener is tlsconf's; a tls.Listener's
	// connections handshake here.
	ctx, cancel := context.WithTimeout(c.ctx, tlsconf.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	user, ok := tlsconf.PeerUser(tc)
	if !ok {
		return nil
	}
	if c.s.opts.Users == nil {
		c.authFailed(user, mechanismCertificate, "no user store")
		return fmt.Errorf("client certificate names user %q: no user store", user)
	}
	if _, exists := c.s.opts.Users.User(user); !exists {
		c.authFailed(user, mechanismCertificate, "the client certificate names no user")
		return fmt.Errorf("client certificate names user %q, who does not exist", user)
	}
	if !auth.LoginAllowedFrom(user, c.nc.RemoteAddr(), c.s.opts.LoopbackUsers) {
		c.authFailed(user, mechanismCertificate, "user may only connect from loopback")
		return fmt.Errorf("client certificate names user %q, who may only connect from loopback", user)
	}
	c.user, c.sasl.authenticated = user, true
	c.log.Info("kafka client authenticated by certificate", "user", user)
	return nil
}
