package broker

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/meta"
)

// The definitions a front end hands to the core or reads from it, named
// here so that the front ends import the core and not internal/meta. They
// are the metadata records themselves (type aliases): the core passes them
// to the metadata log unchanged, so a conversion would only copy. Should
// the core's shape and the stored shape ever need to differ, these become
// structs of their own and the conversion happens here, not in the front
// ends.
type (
	// Binding is one binding of a source exchange to a queue or an
	// exchange, as Router.Bind and Router.Unbind take it.
	Binding = meta.Binding
	// User is a user of AMQP, the management API and Kafka SASL: its
	// name, password hash (auth.HashPassword's scheme), tags and SCRAM
	// credentials.
	User = meta.User
	// ScramCredential is one of a user's SCRAM credentials.
	ScramCredential = meta.ScramCredential
	// Vhost is a virtual host's definition.
	Vhost = meta.Vhost
	// Permission is a user's configure, write and read patterns in one
	// virtual host (see package auth for how they match).
	Permission = meta.Permission
)

// The kinds of a binding's destination (Binding.DestinationKind).
const (
	DestQueue    = meta.DestQueue
	DestExchange = meta.DestExchange
	DestTopic    = meta.DestTopic
)

// Accounts is where the front ends look up users, to authenticate a
// client, and a user's permissions in a virtual host, to authorise it. It
// is read-only; users and permissions are changed through the management
// API or, offline, the CLI. Both protocols use the same Accounts, so a
// user is one user everywhere. The metadata store implements it; tests
// can pass a fake.
type Accounts interface {
	// User returns the named user, false if there is none.
	User(name string) (User, bool)
	// Permission returns user's permission in vhost, false if the user
	// has none there (no access to the virtual host).
	Permission(user, vhost string) (Permission, bool)
}

var _ Accounts = (*meta.Store)(nil)

// UserWithPassword makes the user name with password and tags: the
// password's RabbitMQ hash (for AMQP PLAIN, HTTP basic auth and Kafka
// PLAIN) and a SCRAM-SHA-256 and a SCRAM-SHA-512 credential (for Kafka
// SCRAM), so that one user logs in over every protocol. Every place that
// sets a password goes through here.
func UserWithPassword(name, password string, tags []string) (User, error) {
	hash, err := auth.HashPassword(password)
	if err != nil {
		return User{}, err
	}
	creds, err := auth.NewScramCredentials(password)
	if err != nil {
		return User{}, err
	}
	u := User{Name: name, PasswordHash: hash, Tags: tags}
	for _, c := range creds {
		u.Scram = append(u.Scram, ScramCredential(c))
	}
	return u, nil
}
