// Package offsets keeps consumer groups' committed offsets: the latest
// offset each group committed for each topic partition, in an append-only
// log of its own, apart from the metadata log, so that an offset commit is
// one small append sharing an fsync with every concurrent commit rather
// than a definitions command.
//
// Usage: Open a directory, Commit and Delete from any goroutine, read with
// Group, Get and Groups, Close on shutdown. A Commit or Delete returns once
// its record is on disk (group commit: one writer goroutine takes every
// queued change and writes and fsyncs them together), and only then is the
// change visible to readers; a change answered with an error was never
// applied and does not survive a restart.
//
// The log is versioned and checksummed (docs/offsets-format.md). Open
// replays it and truncates a torn or corrupt tail; when the log has grown
// well past what is live, the writer rewrites it with one record per group
// (temp file, fsync, rename, directory fsync), so its size follows the
// number of live offsets, not the number of commits.
//
// Every commit gets a sequence number (Commit.Seq) that it keeps across
// restarts and rewrites, and every deleted offset a tombstone with the
// next number, kept until the next rewrite; Since, Last and Changed list
// them in that order, which is how the core shows the offsets to Kafka
// clients as the compacted topic __consumer_offsets.
//
// A failed write or fsync fails the store: every later change returns an
// error wrapping ErrFailed, the log is cut back to its last durable record,
// and Recover makes it writable again once the disk takes writes. Reads go
// on meanwhile.
//
// The store knows nothing of topics. A Commit carries a check that the
// writer calls just before writing, so that a commit racing with the
// deletion of its topic is either written before the topic's DeleteTopic
// record (and deleted by it) or refused.
//
// Lock order: the writer holds no lock while it writes or fsyncs; mu
// guards the in-memory offsets and is taken only to read or apply.
package offsets
