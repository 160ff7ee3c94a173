// Package alarm watches the resources a broker must not run out of — the
// process's memory and the free space of the data directory's file
// system — and raises an alarm when one crosses its limit, as RabbitMQ's
// memory and disk alarms do.
//
// An alarm does not drop or refuse anything by itself: the protocol front
// ends ask Blocked before accepting published data and hold publishers
// (AMQP connection.blocked, Kafka produce requests kept waiting) until
// every alarm has cleared. Consumers are never held, so they can drain
// the backlog that may be what freed the resource.
//
// The core is deterministic: Check takes one sample of each resource
// through injected Samplers and updates the state; Run only calls Check
// on a ticker. Tests drive Check with fake samplers and no clock.
//
// Memory is the process's resident set size: on Linux the second field
// of /proc/self/statm times the page size (what the kernel charges the
// process, Go heap and everything else), elsewhere the Go runtime's
// mapped memory less what it has released to the OS
// (runtime/metrics). Free disk is statfs's f_bavail × f_bsize: the bytes
// an unprivileged writer may still use.
package alarm
