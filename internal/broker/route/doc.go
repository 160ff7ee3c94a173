// Package route decides which destinations a published message goes to.
//
// The broker core keeps one Matcher per exchange, fills it with bindings
// (Add / Remove) as queue.bind and exchange.bind arrive, and asks it for
// the destinations of each message (Match). A destination is any
// comparable value the caller chooses: a queue pointer, an exchange name,
// an index. The package knows nothing about queues, wire formats or I/O,
// and never reads the clock.
//
// The four AMQP 0-9-1 exchange types are implemented with RabbitMQ's
// semantics:
//
//   - direct: the routing key must equal the binding key.
//   - fanout: every bound destination, whatever the routing key.
//   - topic: binding keys are patterns of '.'-separated words in which
//     "*" matches exactly one word and "#" matches zero or more. Keys are
//     split as RabbitMQ splits them: "" is zero words, and "a..b" and "a."
//     contain an empty word, which "*" matches. So "#" matches every key
//     including "", "a.#" matches "a", "*" does not match "", and the
//     binding key "" matches only the routing key "". Patterns live in a
//     trie of words, so the cost of Match depends on the routing key and
//     on the patterns that (partly) match it, not on the number of
//     bindings; Remove prunes nodes that no longer lead to a binding.
//   - headers: the binding arguments are compared with the message
//     headers; see NewHeaders for the exact rules, including those for a
//     binding that has no arguments to compare.
//
// A binding is identified by its key, its argument table and its
// destination, as in RabbitMQ: binding the same queue twice with different
// arguments makes two bindings, and Match still visits the queue once.
//
// Concurrency: a Matcher is not locked. Add and Remove need exclusive
// access; Match only reads, so any number of Match calls may run at once
// (under the exchange's read lock, say). Match visits destinations in no
// particular order.
package route
