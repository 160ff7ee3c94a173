package kafka

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// certificateUser sets the connection's user from its client certificate:
// on a TLS connection whose client presented a certificate the CA
// verified, the subject's common name is the principal, as RabbitMQ's
// EXTERNAL mechanism takes it. Kafka's default principal is the whole
// distinguished name ("User:CN=alice,OU=..."); Sluice takes the common
// name so that one user store serves Kafka, AMQP and HTTP
// (docs/kafka-compatibility.md). The user must exist; a certificate
// naming no user closes the connection, as a failed SASL login does. A
// later SaslAuthenticate on the connection replaces the principal. A TLS
// connection without a verified certificate stays anonymous.
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
	if c.s.opts.Accounts == nil {
		return nil
	}
	if _, exists := c.s.opts.Accounts.User(user); !exists {
		return fmt.Errorf("client certificate names user %q, who does not exist", user)
	}
	c.user = user
	c.log.Info("kafka client authenticated by certificate", "user", user)
	return nil
}
