package kafka

// RabbitMQ's max-connections limits of a vhost and a user, applied to
// Kafka connections too (docs/security.md, "Limits and quotas"): a Kafka
// connection is a connection to the Kafka vhost (Options.Vhost) as its
// principal, counted in Options.ConnCounts with the AMQP connections, so
// that one user has one limit over both protocols. It is counted once it
// is served: at its first request other than ApiVersions and the SASL
// ones when the listener lets it in without a login (anonymous from
// loopback, or a client certificate), else at its first SASL login; a
// connection opened and abandoned is not counted. A
// SASL login over a limit is answered SASL_AUTHENTICATION_FAILED saying
// so, and the connection closes, as after any failed login; a connection
// let in without a login over its vhost's or certificate user's limit is
// closed unanswered at its first request (Kafka's own refusal of a
// connection over a per-address limit is closing it).

import (
	"errors"
	"fmt"

	"github.com/sluice-mq/sluice/internal/broker"
)

// connCounted is read-loop state: what the connection is counted as.
type connCounted struct {
	vhost, user string // "" for not counted
	counted     bool
}

// countConn counts the connection in its vhost and as user ("" for the
// anonymous principal, which no user limit applies to), or, when it was
// counted already (in its vhost, perhaps as another principal), moves its
// user count to user. The error names the limit reached; it is logged
// and counted here.
func (c *conn) countConn(user string) error {
	s := c.s
	cc := &c.counted
	if cc.counted && cc.user == user {
		return nil
	}
	vhost := s.opts.Vhost
	if cc.counted {
		vhost = "" // counted there already
	}
	err := s.opts.ConnCounts.Admit(s.opts.Limits, vhost, user)
	var le *broker.ConnLimitError
	if errors.As(err, &le) {
		limitRefused(s.opts.Hooks, c.overTLS, le.Reason())
		c.log.Warn("kafka connection refused", "reason", le.Reason(), "user", user, "vhost", s.opts.Vhost, "max", le.Max)
		if le.Kind == broker.LimitVhost {
			return fmt.Errorf("access to vhost '%s' refused for user '%s': connection limit (%d) is reached", s.opts.Vhost, user, le.Max)
		}
		return fmt.Errorf("connection refused for user '%s': user connection limit (%d) is reached", user, le.Max)
	}
	if err != nil {
		return err
	}
	if cc.counted {
		s.opts.ConnCounts.Leave("", cc.user)
	} else {
		cc.vhost, cc.counted = vhost, true
	}
	cc.user = user
	return nil
}

// uncountConn uncounts the connection at its end.
func (c *conn) uncountConn() {
	cc := &c.counted
	if cc.counted {
		c.s.opts.ConnCounts.Leave(cc.vhost, cc.user)
		*cc = connCounted{}
	}
}

// countServed counts a connection served without a login at its first
// request with key other than ApiVersions, SaslHandshake and
// SaslAuthenticate (so that a client logging in is counted as its user,
// and told why when refused); the error closes the connection.
func (c *conn) countServed(key int16) error {
	switch key {
	case apiVersionsKey, saslHandshakeKey, saslAuthenticateKey:
		return nil
	}
	if err := c.countConn(c.user); err != nil {
		return fmt.Errorf("%w: %v", errDropConn, err)
	}
	return nil
}
