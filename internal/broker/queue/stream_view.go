package queue

import (
	"errors"
	"log/slog"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// A stream view is a Stream over a log it does not own: a Kafka topic's
// partition shown to AMQP clients as a stream queue (a super stream's
// partition, or a stream declared over AMQP in the Kafka vhost). Its
// consumers read, start and take credit exactly as a stream's do; what a
// view leaves to the log's owner is everything else: appends (the owner
// validates and stamps them, so Publish refuses), retention, segment
// settings, failure recovery, closing and deleting the data.

// ErrViewPublish is Publish on a stream view: its log takes appends only
// through its owner (the router routes to the owner instead).
var ErrViewPublish = errors.New("queue: a stream view is appended to through its topic")

// StreamSource is what a stream's readers read: a log's offsets, batches
// and timestamp index. A storage.Log is one; a view's owner provides
// another (a partition, which reads only up to its high watermark).
type StreamSource interface {
	StartOffset() int64
	// HighWatermark is the offset after the last record readers may see.
	HighWatermark() int64
	// Read returns whole uncompressed batches from the one holding
	// offset (see storage.Log.Read).
	Read(offset int64, maxBytes int) ([]byte, error)
	OffsetForTimestamp(ts int64) (offset, maxTimestamp int64, ok bool, err error)
	// Changed is closed the next time HighWatermark moves.
	Changed() <-chan struct{}
}

var _ StreamSource = (*storage.Log)(nil)

// StreamViewOptions configure a stream view.
type StreamViewOptions struct {
	Name   string
	Source StreamSource
	// Decode turns a record read at offset off, stamped ts (ms), into the
	// message delivered. Default message.FromRecord.
	Decode func(off, ts int64, rec storage.Record) (message.Message, error)
	Now    func() time.Time
	Logger *slog.Logger
	// Retain, when set, applies the owner's retention: the view calls it
	// every RetentionInterval (default DefaultStreamRetentionInterval), as
	// a stream applies its own.
	Retain            func() (int, error)
	RetentionInterval time.Duration
}

// OpenStreamView opens a view over opts.Source. It opens no file.
func OpenStreamView(opts StreamViewOptions) *Stream {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = DefaultStreamRetentionInterval
	}
	s := &Stream{
		opts: StreamOptions{Name: opts.Name, Now: opts.Now, Logger: opts.Logger, RetentionInterval: opts.RetentionInterval},
		src:  opts.Source, view: &opts, now: opts.Now, lg: opts.Logger.With("queue", opts.Name),
		readers: map[uint64]*streamReader{}, lastUsed: opts.Now(), stop: make(chan struct{}),
	}
	cfg := StreamConfig{MaxBytes: -1}
	s.cfg.Store(&cfg)
	if opts.Retain != nil {
		s.retaining = true
		s.wg.Add(1)
		go s.retain()
	}
	return s
}

// IsView reports whether s is a view over a log it does not own.
func (s *Stream) IsView() bool { return s.view != nil }

// decode turns a record read into the message delivered.
func (s *Stream) decode(sr streamRecord) (message.Message, error) {
	if s.view != nil && s.view.Decode != nil {
		return s.view.Decode(sr.off, sr.ts, sr.rec)
	}
	return message.FromRecord(sr.rec)
}
