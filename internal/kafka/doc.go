// Package kafka is Sluice's Kafka wire-protocol front end. It decodes
// requests with franz-go's kmsg codecs, dispatches them through one table
// (registry.go) that also drives the ApiVersions answer, and turns them
// into calls on the protocol-neutral broker core.
//
// A connection has a read loop and a write loop. The read loop decodes a
// request and runs its handler's prepare step (Produce appends there, so
// pipelined produce requests keep their order and share group commits); the
// write loop runs each request's finishing step in arrival order and writes
// the response, so a response that must wait — an fsync, a long-poll fetch,
// a rebalance — never reorders responses and never stops later requests
// from being read.
//
// Authentication (sasl.go) also runs in the read loop: SaslHandshake and
// SaslAuthenticate are prepare steps, and the bare tokens that follow a v0
// handshake are read there too, so a connection's principal (conn.user)
// and whether it may be served are settled before its next request is
// read. Users come from the one user store shared with AMQP and HTTP
// (Options.Users); the SCRAM and rate-limiting logic is in package auth.
// On a TLS listener (Server.ServeAdvertised, which also gives the
// listener's own advertised address to Metadata), a verified client
// certificate authenticates the connection as its subject's CN before
// the first request (tls.go); Fetch answers on TLS are copied, not sent
// with sendfile.
//
// Authorization (authz.go): every handler asks, per resource it names,
// whether the principal may perform the operation Kafka's authorizer would
// check (Options.Authorizer: the Kafka ACLs and the user's permission in
// the Kafka vhost, one model with AMQP's), and answers a refusal with
// Kafka's code in the field the response has for it; lists leave out what
// the principal may not describe. The anonymous principal is not checked.
// authz_test.go's coverage table names the check of every API in the
// registry, so that none is added unchecked.
//
// Errors carry their wire meaning: a Kafka error code goes in the
// response; a Go error from a handler means "close the connection".
// One file per API key (NN_name.go), each opening with the versions it
// supports and how it differs from Apache Kafka.
package kafka
