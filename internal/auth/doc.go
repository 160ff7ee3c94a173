// Package auth holds the pure parts of authentication and authorisation,
// shared by the AMQP and Kafka front ends: password hashes, SASL PLAIN
// responses, permission patterns and the loopback rule. It stores nothing;
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
// # Default user and loopback
//
// A fresh RabbitMQ node has the user guest, password guest, with full
// access to the virtual host "/", and lets guest connect only from a
// loopback address (loopback_users = guest). DefaultUser, DefaultPassword,
// DefaultVHost and AllowAll describe that user; LoginAllowedFrom applies a
// loopback_users list to a connection's address.
package auth
