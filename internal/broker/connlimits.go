package broker

import "sync"

// ConnCounts counts the open connections that RabbitMQ's vhost and user
// max-connections limits apply to, for every front end at once: one user
// has one limit whether its connections speak AMQP or Kafka, and a Kafka
// connection is a connection to the Kafka vhost (docs/security.md,
// "Limits and quotas"). The zero value is ready, a nil one counts and
// refuses nothing; safe for concurrent use.
// Its lock is a leaf: nothing is called while it is held.
type ConnCounts struct {
	mu    sync.Mutex
	vhost map[string]int
	user  map[string]int
}

// ConnLimitError is a connection refused by a max-connections limit: Kind
// is LimitVhost or LimitUser, Name the vhost's or user's, Max the limit.
type ConnLimitError struct {
	Kind, Name string
	Max        int64
}

func (e *ConnLimitError) Error() string {
	if e.Kind == LimitVhost {
		return "connection limit of vhost '" + e.Name + "' is reached"
	}
	return "connection limit of user '" + e.Name + "' is reached"
}

// Reason is the refusal's metrics reason: vhost_max_connections or
// user_max_connections.
func (e *ConnLimitError) Reason() string {
	if e.Kind == LimitVhost {
		return "vhost_max_connections"
	}
	return "user_max_connections"
}

// Admit counts one connection in vhost and of user, or refuses it with a
// *ConnLimitError when either is at its max-connections in limits (nil
// limits: none). An empty vhost or user is not counted (nor checked): a
// Kafka connection that logs in after it was counted in its vhost counts
// only its user then.
func (cc *ConnCounts) Admit(limits Limits, vhost, user string) error {
	if cc == nil {
		return nil
	}
	var vmax, umax int64
	var vok, uok bool
	if limits != nil {
		if vhost != "" {
			vmax, vok = limits.Limit(LimitVhost, vhost, "max-connections")
		}
		if user != "" {
			umax, uok = limits.Limit(LimitUser, user, "max-connections")
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.vhost == nil {
		cc.vhost, cc.user = map[string]int{}, map[string]int{}
	}
	if vok && int64(cc.vhost[vhost]) >= vmax {
		return &ConnLimitError{Kind: LimitVhost, Name: vhost, Max: vmax}
	}
	if uok && int64(cc.user[user]) >= umax {
		return &ConnLimitError{Kind: LimitUser, Name: user, Max: umax}
	}
	if vhost != "" {
		cc.vhost[vhost]++
	}
	if user != "" {
		cc.user[user]++
	}
	return nil
}

// Leave uncounts a connection Admit counted with the same vhost and user
// ("" for one not counted).
func (cc *ConnCounts) Leave(vhost, user string) {
	if cc == nil {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if vhost != "" {
		decrCount(cc.vhost, vhost)
	}
	if user != "" {
		decrCount(cc.user, user)
	}
}

func decrCount(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}
