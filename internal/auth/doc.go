// Package auth holds the pure parts of authentication and authorisation,
// shared by the AMQP and Kafka front ends: password hashes, SASL PLAIN
// responses, SCRAM exchanges and credentials, the failed-login limiter,
// permission patterns and the loopback rule. It stores nothing;
// users, their hashes and permissions live in internal/meta, and the
// protocol packages decide which reply code a refusal becomes.
//
// # Passwords
//
// Hashes use RabbitMQ's default scheme, rabbit_password_hashing_sha256:
// base64(salt || SHA-256(salt || password)) with a 4-byte random salt, so
// hashes move both ways between Sluice and RabbitMQ definitions files (the
// "password_hash" field, "hashing_algorithm":
// "rabbit_password_hashing_sha256"). The SHA-512 and legacy MD5 schemes are
// not supported: their hashes have other lengths and never verify. As in
// RabbitMQ's internal backend, a blank password never verifies, and a user
// whose hash is "" cannot log in with a password at all.
//
// # SASL PLAIN
//
// ParsePlain splits a PLAIN response (RFC 4616) into user and password.
// RabbitMQ refuses any authorisation identity; ParsePlain also accepts
// one that equals the authentication identity, which is what some clients
// send, and refuses any other. Bytes are passed through as sent: no UTF-8
// check, no SASLprep, as in RabbitMQ.
//
// # SCRAM
//
// ScramServer runs the server side of SCRAM-SHA-256 and SCRAM-SHA-512
// (RFC 5802, RFC 7677) as Kafka uses them: no channel binding, Kafka's
// extensions parsed and passed on, librdkafka's repeated client nonce
// accepted as Kafka accepts it. Credentials (ScramCredential) hold the
// salt, iteration count, StoredKey and ServerKey, never the password;
// NewScramCredentials derives both mechanisms' from a password. An
// unknown user gets a stable made-up salt and fails at the proof, like a
// wrong password.
//
// # Failed logins
//
// FailureLimiter slows repeated failed logins from one address, for every
// protocol, by delaying their answers; it never refuses a correct
// password.
//
// # Permissions
//
// A user's permissions in a virtual host are three regular expressions,
// configure, write and read, as in RabbitMQ (see rabbitmq.com/docs/access-control).
// An operation on a resource is allowed when the resource's name matches
// the relevant expression anywhere (unanchored: "foo" allows "xfooy"; write
// "^foo$" to mean exactly foo). Specifics:
//
//   - The empty pattern allows nothing. RabbitMQ treats "" as "^$", which
//     matches only the empty name, and no checked resource has an empty
//     name: the default exchange, named "" on the wire, is checked under the
//     name "amq.default" (ExchangeResource). So "" and "^$" both deny.
//   - Server-named queues ("amq.gen-...") are checked like any other name.
//   - Patterns are Go (RE2) regular expressions, RabbitMQ's are PCRE. The
//     usual patterns (".*", "^prefix\\.", "^(a|b)$") mean the same in both.
//     PCRE-only syntax (look-around, back-references) does not compile here,
//     and a pattern that does not compile allows nothing. "$" matches only at
//     the end of the name, where PCRE also accepts it before a final newline.
//
// Checker compiles each pattern once and keeps a bounded cache; it is safe
// for concurrent use, so one Checker can serve every connection.
//
// # Kafka ACLs and the one decision
//
// ACL (acl.go) is a Kafka access control entry, with Kafka's numeric codes
// for resource types, pattern types, operations and permissions, and
// ACLFilter selects ACLs as DescribeAcls and DeleteAcls do. Checker's
// Authorize is the one authorization decision of both protocols: a
// matching DENY ACL refuses; otherwise a matching ALLOW ACL, or the user's
// RabbitMQ permission in the Kafka vhost mapped by VhostAccess (produce is
// write on the topic, fetch read, create and delete configure, describe
// any of the three; cluster operations go by the administrator and
// monitoring tags), allows. It is pure: the stored rules come in as
// arguments (internal/broker's Authorizer reads them from the metadata
// store). docs/security.md has the mapping table.
//
// # Default user and loopback
//
// A fresh RabbitMQ node has the user guest, password guest, with full
// access to the virtual host "/", and lets guest connect only from a
// loopback address (loopback_users = guest). DefaultUser, DefaultPassword,
// DefaultVHost and AllowAll describe that user; LoginAllowedFrom applies a
// loopback_users list to a connection's address.
package auth
