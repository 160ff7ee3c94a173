package meta

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"unicode/utf8"
)

// AMQP definitions: vhosts, users, permissions, exchanges, queues and
// bindings. Meta stores them and keeps them referentially consistent (an
// exchange lives in an existing vhost, a binding joins existing exchanges and
// queues, deleting one removes what depends on it); AMQP's own rules —
// equivalence of re-declarations, reserved "amq." names, exchange types —
// are the broker's to enforce.

// Vhost is a virtual host.
type Vhost struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// User is an AMQP and management user.
type User struct {
	Name string `json:"name"`
	// PasswordHash is opaque to meta (RabbitMQ's salted SHA-256, base64);
	// "" means the user cannot log in with a password.
	PasswordHash string   `json:"password_hash,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// Scram are the user's SCRAM credentials for Kafka SASL, at most one
	// per mechanism, derived from the password when it is set (package
	// auth): salted, never the password. Meta only checks their shape.
	Scram []ScramCredential `json:"scram,omitempty"`
}

// ScramCredential is one SCRAM credential (RFC 5802): the mechanism
// ("SCRAM-SHA-256" or "SCRAM-SHA-512"), salt, iteration count, StoredKey
// and ServerKey. Byte fields are base64 in JSON.
type ScramCredential struct {
	Mechanism  string `json:"mechanism"`
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// Permission is a user's access to one vhost: three regular expressions
// over resource names, as in RabbitMQ. Meta does not compile them.
type Permission struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// Exchange is an exchange's definition. The name "" (the default exchange)
// is allowed; whether to store it is the broker's choice.
type Exchange struct {
	Vhost      string `json:"vhost"`
	Name       string `json:"name"`
	Type       string `json:"type"` // "direct", "fanout", "topic", "headers", ...; not checked by meta
	Durable    bool   `json:"durable"`
	AutoDelete bool   `json:"auto_delete"`
	Internal   bool   `json:"internal"`
	// Arguments is an AMQP field table in its binary encoding, opaque to
	// meta; nil means none (an empty slice is stored as nil).
	Arguments []byte `json:"arguments,omitempty"`
}

// Queue is a queue's definition.
type Queue struct {
	Vhost string `json:"vhost"`
	Name  string `json:"name"`
	// ID is the queue's permanent identity: 1 to 64 lowercase hex digits,
	// random, generated when DeclareQueue is proposed. The broker uses it as
	// the queue's directory name; a queue deleted and re-declared under the
	// same name gets a new id. No two queues share an id.
	ID         string `json:"id"`
	Durable    bool   `json:"durable"`
	Exclusive  bool   `json:"exclusive"`
	AutoDelete bool   `json:"auto_delete"`
	Arguments  []byte `json:"arguments,omitempty"` // as Exchange.Arguments
	CreatedMs  int64  `json:"created_ms"`
	// Topic, when set, names the one-partition Kafka topic this stream
	// queue is a view of (declared in the Kafka vhost): its messages are
	// the topic's, and the queue has no directory of its own.
	Topic string `json:"topic,omitempty"`
	// Node, in a cluster, is the id of the node the queue lives on (its
	// home node: the one that declared it); 0 on a single node, and for
	// queues declared on a cluster before queues had a home, which every
	// node opens a copy of.
	Node uint64 `json:"node,omitempty"`
	// Quorum marks a quorum queue replicated through Raft on a cluster:
	// its messages and acks are the log of a one-partition topic (named
	// by the broker from ID) placed on the queue's members; no home node.
	Quorum bool `json:"quorum,omitempty"`
}

// Binding destination kinds.
const (
	DestQueue    = "queue"
	DestExchange = "exchange"
	// DestTopic: the binding feeds a topic (any vhost's exchanges may;
	// topics are not in a vhost). The topic must exist when the binding
	// is made; a binding outlives its topic and routes again to a topic
	// created anew under the name.
	DestTopic = "topic"
)

// SourceTopic is Binding.SourceKind for a binding whose source is a topic
// (not an exchange): the destination queue is fed every record of the
// topic, or of the partitions the routing key names (broker feed.go).
const SourceTopic = "topic"

// Binding routes from the Source exchange to a queue or exchange in the
// same vhost. Two bindings are the same binding when every field is equal,
// Arguments compared as bytes (nil equals empty).
type Binding struct {
	Vhost           string `json:"vhost"`
	Source          string `json:"source"`
	DestinationKind string `json:"destination_kind"` // DestQueue, DestExchange or DestTopic
	Destination     string `json:"destination"`
	RoutingKey      string `json:"routing_key"`
	Arguments       []byte `json:"arguments,omitempty"` // as Exchange.Arguments
	// SourceKind is "" when Source is an exchange, SourceTopic when it is
	// a topic (whose destination must then be a queue).
	SourceKind string `json:"source_kind,omitempty"`
}

// Copies handed to callers share nothing with the state. Empty slices are
// nil, as in the state.

func (v Vhost) clone() Vhost {
	v.Tags = slices.Clone(nilIfEmpty(v.Tags))
	return v
}

func (u User) clone() User {
	u.Tags = slices.Clone(nilIfEmpty(u.Tags))
	u.Scram = slices.Clone(nilIfEmpty(u.Scram))
	for i := range u.Scram {
		c := &u.Scram[i]
		c.Salt, c.StoredKey, c.ServerKey = bytes.Clone(c.Salt), bytes.Clone(c.StoredKey), bytes.Clone(c.ServerKey)
	}
	return u
}

func (e Exchange) clone() Exchange {
	e.Arguments = bytes.Clone(nilIfEmpty(e.Arguments))
	return e
}

func (q Queue) clone() Queue {
	q.Arguments = bytes.Clone(nilIfEmpty(q.Arguments))
	return q
}

// nilIfEmpty stores an empty slice as nil, keeping the state canonical.
func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// bindingKey is a binding within its vhost, comparable so that it can key a
// map; Arguments holds the argument bytes.
type bindingKey struct {
	Source          string
	DestinationKind string
	Destination     string
	RoutingKey      string
	Arguments       string
	SourceKind      string
}

func (b Binding) key() bindingKey {
	return bindingKey{b.Source, b.DestinationKind, b.Destination, b.RoutingKey, string(b.Arguments), b.SourceKind}
}

func (k bindingKey) binding(vhost string) Binding {
	return Binding{
		Vhost:           vhost,
		Source:          k.Source,
		DestinationKind: k.DestinationKind,
		Destination:     k.Destination,
		RoutingKey:      k.RoutingKey,
		Arguments:       nilIfEmpty([]byte(k.Arguments)),
		SourceKind:      k.SourceKind,
	}
}

// compareBindings orders by vhost, source, destination kind, destination,
// routing key, then argument bytes.
func compareBindings(a, b Binding) int {
	return cmp.Or(
		cmp.Compare(a.Vhost, b.Vhost),
		cmp.Compare(a.Source, b.Source),
		cmp.Compare(a.DestinationKind, b.DestinationKind),
		cmp.Compare(a.Destination, b.Destination),
		cmp.Compare(a.RoutingKey, b.RoutingKey),
		bytes.Compare(a.Arguments, b.Arguments),
		cmp.Compare(a.SourceKind, b.SourceKind),
	)
}

// NewQueueID returns a fresh queue id (16 random bytes in hex), for a
// caller that lays out a queue's storage before declaring it.
func NewQueueID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// validQueueID reports whether id is 1 to 64 lowercase hex digits, which
// is safe as a directory name on every file system.
func validQueueID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validUTF8 refuses strings that are not valid UTF-8. The log's JSON
// encoding would replace the bad bytes with U+FFFD, so the stored name would
// silently differ from the one the client used; refusing is better.
func validUTF8(ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: invalid UTF-8 in %q", ErrInvalidCommand, s)
		}
	}
	return nil
}
