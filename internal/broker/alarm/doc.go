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
// on a ticker, and samples the disk between ticks when Wrote asks. Tests
// drive Check with fake samplers and no clock.
//
// Sampling once per interval lets a fast writer overshoot the disk limit
// by up to an interval's worth of writes (50 MB/s against a 100 MB limit
// sampled each second left 53 MB free). So the log writers report every
// durable write to Wrote, which keeps an estimate — the last sample less
// the bytes written since — and, when the estimate falls below the
// limit, has Run sample the disk at once. The limit then holds at any
// write rate, give or take what is written while that sample is taken.
// The estimate only triggers a sample; it never raises or clears the
// alarm itself, because only a sample sees space freed by deleted
// segments, space used by other processes, and writes that took no new
// space. Every successful sample restarts the estimate. A file system
// whose free space lags its writes, counting them only when it commits
// them later, can still be overshot.
//
// Memory is the process's resident set size: on Linux the second field
// of /proc/self/statm times the page size (what the kernel charges the
// process, Go heap and everything else), elsewhere the Go runtime's
// mapped memory less what it has released to the OS
// (runtime/metrics). Free disk is statfs's f_bavail × f_bsize: the bytes
// an unprivileged writer may still use.
package alarm
