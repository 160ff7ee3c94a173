// Package mgmt is Sluice's HTTP side: the RabbitMQ-compatible management
// API under /api, the Kafka view under /api/kafka, and the unauthenticated
// health probes /healthz and /readyz. It is the only package that speaks
// HTTP; other packages expose plain Go methods it calls.
//
// Every change made through the API goes through the same path as the
// protocol front ends: definitions through broker.Router (which writes the
// metadata log first), users, permissions and vhost metadata through
// meta.Store, topics through broker.Broker. A queue declared here is usable
// from AMQP at once. Connections, channels and consumers are read from,
// and connections closed through, the core's registry (broker.Connections),
// whichever front end serves them; mgmt imports no front end.
//
// # Authentication
//
// HTTP basic auth against the users in meta. As in RabbitMQ, the user's
// tags decide what the user may do:
//
//   - administrator: everything.
//   - monitoring: read everything (all vhosts, all connections, nodes,
//     the Kafka view); changes need vhost permissions as for management.
//   - management (and policymaker): objects in the vhosts the user has
//     permissions in, and the user's own connections. Declares, deletes,
//     publish, get and purge are checked against the user's configure /
//     write / read patterns, as the AMQP front end checks them.
//   - no management tag: 401 "Not management user".
//
// Users listed in Options.LoopbackUsers (guest by default) may log in
// only from a loopback address, as over AMQP.
//
// # Errors
//
// Errors are JSON bodies {"error": ..., "reason": ...} with RabbitMQ's
// status codes: 400 bad request (and inequivalent redeclaration), 401 bad
// credentials or missing tag, 403 refused by a permission pattern, 404
// unknown object. docs/management-api.md lists every endpoint.
//
// # Message rates
//
// message_stats come from running totals the core keeps as atomic counters
// (broker.MessageStats per AMQP channel, connection and vhost; exchange
// and queue totals); the sampler (sampler.go) records them every 5 s, with
// an injected clock, and rates are differences between samples
// (msgstats.go names the fields). API.Run drives the sampler; without it a
// request that finds the last sample stale takes one.
//
// Extra handlers (Prometheus /metrics) are mounted with API.Handle.
package mgmt
