package storage

import (
	"errors"
	"time"
)

// Errors returned by a Log. They carry meaning the protocol layers map to
// their own error codes.
var (
	// ErrOffsetOutOfRange: the requested offset is below the log start or
	// above the high watermark.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrClosed: the log was closed or deleted.
	ErrClosed = errors.New("storage: log closed")
	// ErrCorruptBatch: bytes handed to Append (or found on disk) are not a
	// well-formed RecordBatch v2 with a valid CRC.
	ErrCorruptBatch = errors.New("storage: corrupt record batch")
	// ErrBatchTooLarge: a batch exceeds Options.MaxBatchBytes.
	ErrBatchTooLarge = errors.New("storage: record batch too large")
)

// SyncPolicy says when written data is fsync'd.
type SyncPolicy int

const (
	// SyncAlways fsyncs before an append is reported durable (the default):
	// Appended.Wait returns only after the bytes are on disk.
	SyncAlways SyncPolicy = iota
	// SyncInterval fsyncs every Options.SyncInterval; Wait returns after the
	// write(2), before the fsync.
	SyncInterval
	// SyncNever leaves flushing to the operating system.
	SyncNever
)

// Options configure a Log. Zero values take the documented defaults.
type Options struct {
	// FS is the file layer. Default: OSFS().
	FS FS
	// SegmentBytes rolls the active segment when it would grow past this
	// many bytes. Default 1 GiB.
	SegmentBytes int64
	// SegmentAge rolls the active segment once its first batch is older
	// than this. Default 7 days.
	SegmentAge time.Duration
	// IndexIntervalBytes is the number of data bytes between sparse offset
	// and time index entries. Default 4096.
	IndexIntervalBytes int
	// MaxBatchBytes caps one appended batch. Default 8 MiB.
	MaxBatchBytes int
	// Sync is the durability policy. Default SyncAlways.
	Sync SyncPolicy
	// SyncInterval is the fsync period for SyncInterval. Default 1s.
	SyncInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Observer, if set, is told how long the writer's work takes (for
	// metrics). Default none.
	Observer Observer
	// ReadBeforeSync makes records readable (Read, ReadableEnd, Changed)
	// once they are written, while the fsync that makes them durable is
	// still under way; HighWatermark and Appended.Wait still move only
	// when the policy's fsync is done. For AMQP queues, which deliver a
	// message before its publisher is confirmed, as RabbitMQ does. Kafka
	// partitions leave it off: a fetch returns only what acks=all answered.
	ReadBeforeSync bool
	// SyncGroup, when set, takes the fsyncs of the active data file that
	// the policy asks for (SyncAlways's, Log.Sync's and SyncInterval's)
	// and shares them with the other logs of the group (syncgroup.go).
	// Nil: the log fsyncs its own file. Index files, directories and
	// recovery fsync their own files either way.
	SyncGroup *SyncGroup
	// CreateOnAppend: Open creates nothing that is missing (the log's
	// directory, its first segment's data file); the first write creates
	// them and makes their names durable (directory fsyncs) before any
	// append is acknowledged. A log never written to holds no file, so
	// opening one costs no file system change, and a broker holding many
	// idle logs holds no files for them. Default false: Open creates the
	// directory and an empty segment, durably.
	CreateOnAppend bool
}

// Observer receives timings from a log's writer goroutine. Calls are made
// once per group commit or fsync, never per record, from the writer
// goroutines of every log sharing the Observer: implementations must be
// safe for concurrent use and must not block.
type Observer interface {
	// ObserveAppend reports one group commit: the write of bytes bytes
	// holding batches batches, plus the fsync when the policy asks for
	// one, took d.
	ObserveAppend(d time.Duration, batches, bytes int)
	// ObserveFsync reports one fsync of a segment's data file.
	ObserveFsync(d time.Duration)
}

// BatchHeader is the fixed 61-byte prefix of a RecordBatch v2.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// LastOffset is the offset of the last record in the batch.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size is the full on-wire size of the batch (12 + Length).
func (h BatchHeader) Size() int { return 12 + int(h.Length) }

// Appended is the result of Log.Append. The offsets are assigned at once;
// durability is awaited with Wait.
type Appended struct {
	BaseOffset    int64 // offset of the first record appended
	LastOffset    int64 // offset of the last record appended
	LogAppendTime int64 // broker time (ms) when appended

	// filled in by the writer
	done chan struct{}
	err  error
}

// Wait blocks until the appended bytes are durable by the log's SyncPolicy
// (on disk for SyncAlways) and returns the write or fsync error if any.
// A failed fsync is never reported as success.
func (a *Appended) Wait() error { <-a.done; return a.err }

// Done is closed when Wait would not block.
func (a *Appended) Done() <-chan struct{} { return a.done }
