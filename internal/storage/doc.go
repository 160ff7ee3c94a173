// Package storage is Sluice's log storage engine: segmented, append-only
// logs of Kafka RecordBatch v2 bytes, stored exactly as produced (with the
// BaseOffset assigned), so that a fetch is a read of whole batches from a
// file. Every Kafka partition and every AMQP queue is a Log. The package
// knows no protocol.
//
// # Using a log
//
//	l, err := storage.Open(dir, storage.Options{})   // recovers the tail
//	hs, err := storage.ValidateBatches(b, maxBytes) // untrusted input: check first
//	ap, err := l.Append(b)                          // offsets assigned now
//	err = ap.Wait()                                 // durable (fsync'd by default)
//	data, err := l.Read(offset, maxBytes)           // whole batches below the high watermark
//	r, err := l.ReadRegion(offset, maxBytes, end)   // the same, as a file region to sendfile; r.Release()
//	<-l.Changed()                                   // long poll: the high watermark moved
//	l.Close()
//
// # Layout and durability
//
// A log is a directory of segments, each a data file plus a sparse offset
// index and a sparse time index, named by the segment's base offset; a
// small checksummed checkpoint keeps the log start offset set by
// DeleteRecordsBefore. CompactSegment replaces a closed segment with a copy
// holding only the batches still needed, at their offsets (gaps read as
// the next batch); RewriteSegment does the same for a log cleaner that
// also replaces batches with copies holding fewer records. docs/storage-format.md describes the bytes.
//
// Each log has one writer goroutine doing group commit: Append assigns
// offsets under the log mutex, copies the batches into a pending buffer
// and returns; the writer takes everything pending, writes it with one
// write call (per segment touched), fsyncs once, moves the high watermark
// and wakes all those appends. Under SyncAlways (the default) the high
// watermark, and so Read, never shows data that is not on disk. A failed
// write or fsync fails the whole log: every waiter of that group and every
// later Append get the error, until the log is reopened and recovered.
// With Options.SyncGroup the writer's fsync is a request to a group shared
// by many logs (syncgroup.go): it is served by the first round that starts
// after it, one syncfs(2) for all the logs that asked meanwhile.
//
// With Options.ReadBeforeSync (queue logs) what is written is readable at
// once, and under SyncAlways the fsync then runs off the writer goroutine:
// the writer goes on to write the next group while it runs, and when it
// returns the high watermark moves to what it covered and its appends
// complete (the next fsync starts for the groups written meanwhile). A
// roll waits for the fsync under way first. So an append still completes
// only once an fsync that began after its write has returned.
//
// Open validates the tail of the active segment (framing, increasing
// offsets, CRC32C) and truncates a torn write; it never refuses to start
// because of one. Indexes are derived data, checked and rebuilt as needed.
//
// # Memory
//
// Memory does not grow with the data stored: reads go through the file
// (ReadAt, so the page cache), only the active segment's index lives in
// memory, older segments' indexes are binary-searched in their files, and
// a small per-log LRU bounds the files held open for older segments.
//
// # File systems
//
// All I/O goes through the FS interface. OSFS is the real one; MemFS is an
// in-memory twin that can simulate a power loss (Crash); FaultFS wraps
// either to inject torn writes, failing fsyncs and a full disk. The tests
// run one shared suite on OSFS and MemFS.
//
// # Lock order
//
//	Log.adminMu  serializes retention, DeleteRecordsBefore, CompactSegment, RewriteSegment and Delete
//	Log.mu       log state: offsets, pending group, segment list, high watermark
//	handleCache.mu  leaf: open files of segments, their reference counts
//
// Locks are taken in that order and never the other way. No lock is held
// during a data write or fsync: the writer goroutine owns the active
// segment's files and takes Log.mu only to swap the pending group and to
// publish what it committed. handleCache.mu may be held while opening or
// closing a file, and (with Log.mu) during the one rename that swaps in a
// compacted segment, never while reading or writing one.
package storage
