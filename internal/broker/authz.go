package broker

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/meta"
)

// ACLStore is where the ACLs and the users' grants live: the metadata
// store implements it; tests can pass a fake.
type ACLStore interface {
	Accounts
	// ACLs returns the stored ACLs (shared, read-only).
	ACLs() []auth.ACL
	// CreateACLs stores ACLs, all or none.
	CreateACLs([]auth.ACL) error
	// DeleteACLs removes what each filter selects, returning it per filter.
	DeleteACLs([]auth.ACLFilter) ([][]auth.ACL, error)
}

var _ ACLStore = (*meta.Store)(nil)

// Authorizer is the one authorization model of both protocols: the Kafka
// ACLs and the users' permissions in the Kafka vhost, combined by
// auth.Checker.Authorize (a DENY ACL refuses; an ALLOW ACL or the vhost
// permission allows). It reads the store on every question, so a change
// applies to the next request of every connection. Safe for concurrent
// use.
type Authorizer struct {
	store   ACLStore
	vhost   string
	checker *auth.Checker
}

// NewAuthorizer returns an authorizer over store, mapping permissions in
// kafkaVhost (the vhost where topics appear as super streams).
func NewAuthorizer(store ACLStore, kafkaVhost string) *Authorizer {
	return &Authorizer{store: store, vhost: kafkaVhost, checker: auth.NewChecker(0)}
}

// Authorize decides whether user (a user name, not "") may perform op on
// the resource rt/name from host (the client's IP address as text).
func (a *Authorizer) Authorize(user, host string, rt auth.ResourceType, name string, op auth.Operation) auth.Decision {
	var g auth.Grants
	if u, ok := a.store.User(user); ok {
		g.Tags = u.Tags
		if p, ok := a.store.Permission(user, a.vhost); ok && a.vhost != "" {
			g.HasPermission = true
			g.Permission = auth.Permission{Configure: p.Configure, Write: p.Write, Read: p.Read}
		}
	}
	return a.checker.Authorize(auth.Request{User: user, Host: host, Type: rt, Name: name, Op: op}, a.store.ACLs(), g)
}

// Denied reports whether a DENY ACL refuses user op on rt/name from host,
// ignoring ALLOW ACLs and permissions: what the AMQP side honours, which
// has its own permission check.
func (a *Authorizer) Denied(user, host string, rt auth.ResourceType, name string, op auth.Operation) bool {
	d := a.checker.Authorize(auth.Request{User: user, Host: host, Type: rt, Name: name, Op: op}, a.store.ACLs(), auth.Grants{})
	return !d.Allowed && d.Reason != auth.ReasonNoGrant
}

// KafkaVhost is the vhost whose permissions apply to Kafka access.
func (a *Authorizer) KafkaVhost() string { return a.vhost }

// ACLs returns the stored ACLs (shared, read-only).
func (a *Authorizer) ACLs() []auth.ACL { return a.store.ACLs() }

// CreateACLs stores ACLs, all or none.
func (a *Authorizer) CreateACLs(acls []auth.ACL) error { return a.store.CreateACLs(acls) }

// DeleteACLs removes what each filter selects, returning it per filter.
func (a *Authorizer) DeleteACLs(filters []auth.ACLFilter) ([][]auth.ACL, error) {
	return a.store.DeleteACLs(filters)
}

// TopicPermission is a user's RabbitMQ topic permission on one exchange
// of a vhost: write and read patterns over routing keys.
type TopicPermission = meta.TopicPermission

// TopicPermissionSource is where a front end finds a user's topic
// permissions; the metadata store implements it.
type TopicPermissionSource interface {
	// TopicPermissions returns user's topic permissions in vhost.
	TopicPermissions(user, vhost string) []TopicPermission
}

var _ TopicPermissionSource = (*meta.Store)(nil)

// ExchangeType returns the type of an exchange of vhost vh, "" if there is
// no such exchange.
func (r *Router) ExchangeType(vh, name string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if v, ok := r.vhosts[vh]; ok {
		if x, ok := v.exchanges[name]; ok {
			return x.def.Type
		}
	}
	return ""
}
