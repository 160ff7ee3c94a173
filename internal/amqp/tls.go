package amqp

import (
	"crypto/tls"
	"fmt"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// AMQPS: a connection accepted on a TLS listener is a *tls.Conn. Its
// handshake is done before the AMQP protocol header is read (already by
// tlsconf's listener, or here under the handshake deadline). A client
// certificate the CA verified names a user, its subject's common name,
// and the connection then offers the EXTERNAL mechanism, with which that
// user logs in without a password, as RabbitMQ's
// rabbitmq_auth_mechanism_ssl plugin does: the user must exist, the
// loopback rule applies, and the vhost must grant it access as for any
// login.

// mechanismExternal is SASL EXTERNAL (RFC 4422, appendix A).
const mechanismExternal = "EXTERNAL"

// tlsHandshake completes a TLS connection's handshake; nothing for a
// plain one.
func (c *conn) tlsHandshake() error {
	if tc, ok := c.nc.(*tls.Conn); ok {
		return tc.Handshake() // the handshake deadline is set
	}
	return nil
}

// mechanisms are the SASL mechanisms connection.start offers: EXTERNAL
// too when the client presented a verified certificate.
func (c *conn) mechanisms() string {
	if _, ok := tlsconf.PeerUser(c.nc); ok {
		return "PLAIN AMQPLAIN " + mechanismExternal
	}
	return "PLAIN AMQPLAIN"
}

// authenticateExternal logs in the user the client certificate names. The
// client's response (an authorization identity, which RabbitMQ ignores
// too) is not read.
func (c *conn) authenticateExternal() error {
	refused := &amqpError{code: wire.AccessRefused, classID: 10, methodID: 11}
	if h, ok := c.s.opts.Hooks.(AuthHooks); ok {
		defer func() {
			if c.user == "" {
				h.AuthFailed(mechanismExternal)
			}
		}()
	}
	user, ok := tlsconf.PeerUser(c.nc)
	if !ok {
		refused.text = "ACCESS_REFUSED - EXTERNAL needs a verified client certificate (TLS with a client certificate)"
		c.log.Info("login refused: EXTERNAL without a verified client certificate")
		return refused
	}
	if _, exists := c.s.accts.User(user); !exists {
		c.log.Info("login refused: the client certificate names no user", "user", user, "mechanism", mechanismExternal)
		refused.text = fmt.Sprintf("ACCESS_REFUSED - Login was refused using authentication mechanism %s. For details see the broker logfile.", mechanismExternal)
		return refused
	}
	if !auth.LoginAllowedFrom(user, c.nc.RemoteAddr(), c.s.opts.LoopbackUsers) {
		c.log.Info("login refused: user may only connect from loopback", "user", user)
		refused.text = fmt.Sprintf("ACCESS_REFUSED - user '%s' can only connect via localhost", user)
		return refused
	}
	c.user = user
	return nil
}

// tlsInfo describes a TLS connection for the management API; nil for a
// plain one.
func (c *conn) tlsInfo() *broker.ConnTLS {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	info := &broker.ConnTLS{Version: tls.VersionName(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite)}
	if len(cs.PeerCertificates) > 0 {
		info.PeerSubject = cs.PeerCertificates[0].Subject.String()
		info.PeerIssuer = cs.PeerCertificates[0].Issuer.String()
	}
	return info
}
