package amqp

// RabbitMQ's vhost and user limits (docs/security.md, "Limits and
// quotas"): a vhost's max-connections and max-queues, a user's
// max-connections and max-channels, read from Options.Limits. Each
// refusal is RabbitMQ's: connection.open over a connection limit and
// channel.open over a channel limit close the connection with 530
// NOT_ALLOWED. (A vhost's max-queues is the core's: Router.DeclareQueue.)
//
// Connections by vhost and by user are counted from connection.open-ok to
// the connection's end in Options.ConnCounts, which the Kafka front end
// shares (one user, one limit); channels by user in the server's counts
// (Server.mu).

import (
	"errors"
	"fmt"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
)

// limitCounts are the open channels the user limits count; connections
// are counted in Options.ConnCounts, shared with the Kafka front end.
type limitCounts struct {
	userChannels map[string]int
}

func (s *Server) limit(kind, name, key string) (int64, bool) {
	if s.opts.Limits == nil {
		return 0, false
	}
	return s.opts.Limits.Limit(kind, name, key)
}

// admit counts a connection opening vhost as user, or refuses it over the
// vhost's or the user's max-connections.
func (c *conn) admit(user, vhost string) error {
	s := c.s
	err := s.opts.ConnCounts.Admit(s.opts.Limits, vhost, user)
	var le *broker.ConnLimitError
	if errors.As(err, &le) {
		limitRefused(s.opts.Hooks, c.overTLS, le.Reason())
		text := fmt.Sprintf("NOT_ALLOWED - connection refused for user '%s': user connection limit (%d) is reached", user, le.Max)
		if le.Kind == broker.LimitVhost {
			text = fmt.Sprintf("NOT_ALLOWED - access to vhost '%s' refused for user '%s': connection limit (%d) is reached", vhost, user, le.Max)
		}
		return &amqpError{code: wire.NotAllowed, text: text, classID: 10, methodID: 40}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	c.admitted = true
	s.mu.Unlock()
	return nil
}

// leave uncounts a connection admit counted (once its channels are
// gone).
func (c *conn) leave() {
	s := c.s
	s.mu.Lock()
	admitted := c.admitted
	c.admitted = false
	s.mu.Unlock()
	if admitted {
		s.opts.ConnCounts.Leave(c.vhost, c.user)
	}
}

func decr(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}

// channelOpening counts a channel of the connection's user, or refuses it
// over the user's max-channels.
func (c *conn) channelOpening() error {
	s := c.s
	max, ok := s.limit(broker.LimitUser, c.user, "max-channels")
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok && int64(s.limitCounts.userChannels[c.user]) >= max {
		limitRefused(s.opts.Hooks, c.overTLS, "user_max_channels")
		return &amqpError{code: wire.NotAllowed, classID: 20, methodID: 10,
			text: fmt.Sprintf("NOT_ALLOWED - number of channels opened for user '%s' has reached the maximum allowed user limit (%d)", c.user, max)}
	}
	if s.limitCounts.userChannels == nil {
		s.limitCounts.userChannels = map[string]int{}
	}
	s.limitCounts.userChannels[c.user]++
	return nil
}

// channelGone uncounts a channel channelOpening counted.
func (c *conn) channelGone() {
	c.s.mu.Lock()
	decr(c.s.limitCounts.userChannels, c.user)
	c.s.mu.Unlock()
}
