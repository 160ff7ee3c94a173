package queue

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// A stream queue (x-queue-type: stream) is a plain append-only log, the
// same kind of log as a Kafka partition: a message is appended once and
// stays until retention deletes the whole segment it is in. Reading does
// not consume. Every consumer has its own position (where its
// x-stream-offset asked to start) and its own goroutine reading the log
// forward; a delivery's offset is its position in the log. Acks only give
// a consumer its credit back; nothing is settled, nothing is recorded.
//
// Retention follows RabbitMQ: x-max-length-bytes and x-max-age delete
// whole old segments (storage's EnforceRetention), never the active one.
// Segments roll at x-stream-max-segment-size-bytes (RabbitMQ's default,
// 500 MB) and, when x-max-age is set, also once the segment is that old,
// so that a quiet stream still ages out.

// DefaultStreamSegmentBytes is RabbitMQ's default
// x-stream-max-segment-size-bytes.
const DefaultStreamSegmentBytes = 500_000_000

// DefaultStreamRetentionInterval is how often a stream applies retention.
const DefaultStreamRetentionInterval = time.Second

// StreamConfig is what a stream queue's x-arguments ask for.
type StreamConfig struct {
	MaxBytes     int64         // x-max-length-bytes; < 0: unlimited
	MaxAge       time.Duration // x-max-age; <= 0: unlimited
	SegmentBytes int64         // x-stream-max-segment-size-bytes; <= 0: DefaultStreamSegmentBytes
}

// StreamOptions configure a Stream.
type StreamOptions struct {
	Name    string // for logs
	Dir     string
	Storage storage.Options
	Config  StreamConfig
	Now     func() time.Time
	Logger  *slog.Logger
	// RetentionInterval is how often retention runs. Default
	// DefaultStreamRetentionInterval.
	RetentionInterval time.Duration
}

// StartKind says where a stream consumer starts reading.
type StartKind int

const (
	StartNext      StartKind = iota // only messages appended from now on (the default)
	StartFirst                      // the first message still in the log
	StartLast                       // the start of the last batch (RabbitMQ's last chunk)
	StartOffset                     // a given offset, clamped to what the log holds
	StartTimestamp                  // the first batch stored at or after a time
)

// StreamStart is a consumer's starting point (AMQP's x-stream-offset).
type StreamStart struct {
	Kind   StartKind
	Offset int64     // StartOffset
	Time   time.Time // StartTimestamp
}

// Stream is a stream queue. It implements Handle; consumers that choose
// where to start register with AddStreamConsumer.
type Stream struct {
	opts StreamOptions
	log  *storage.Log // the stream's own log; nil for a view (stream_view.go)
	// src is what readers read: log, or a view's source.
	src  StreamSource
	view *StreamViewOptions // set for a view over a log the stream does not own
	now  func() time.Time
	lg   *slog.Logger

	// cfg is the retention in force: opts.Config until SetStreamConfig.
	cfg       atomic.Pointer[StreamConfig]
	retaining bool // retain runs (under mu)

	mu        sync.Mutex
	readers   map[uint64]*streamReader
	nextID    uint64
	exclusive bool
	closed    bool
	lastUsed  time.Time

	stop chan struct{}
	wg   sync.WaitGroup

	Stats Stats
}

var _ Handle = (*Stream)(nil)

// Totals returns the stream's running totals: messages appended and
// delivered to its readers (a stream settles nothing, so the others are
// zero).
func (s *Stream) Totals() Totals {
	return Totals{Published: s.Stats.Published.Load(), Delivered: s.Stats.Delivered.Load()}
}

// OpenStream opens (creating if needed) the stream stored in opts.Dir.
func OpenStream(opts StreamOptions) (*Stream, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = DefaultStreamRetentionInterval
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	cfg := opts.Config
	so := opts.Storage
	so.Now = opts.Now
	so.SegmentBytes = cfg.SegmentBytes
	if so.SegmentBytes <= 0 {
		so.SegmentBytes = DefaultStreamSegmentBytes
	}
	so.SegmentAge = 0 // storage's default
	if cfg.MaxAge > 0 && cfg.MaxAge < storage.DefaultSegmentAge {
		so.SegmentAge = cfg.MaxAge
	}
	lg, err := storage.Open(opts.Dir+"/log", so)
	if err != nil {
		return nil, err
	}
	s := &Stream{
		opts: opts, log: lg, src: lg, now: opts.Now, lg: opts.Logger.With("queue", opts.Name),
		readers: map[uint64]*streamReader{}, lastUsed: opts.Now(), stop: make(chan struct{}),
	}
	s.cfg.Store(&cfg)
	if cfg.MaxBytes >= 0 || cfg.MaxAge > 0 {
		s.retaining = true
		s.wg.Add(1)
		go s.retain()
	}
	return s, nil
}

// Name is the stream's name.
func (s *Stream) Name() string { return s.opts.Name }

// Config is a queue Config without limits: a stream has none of a work
// queue's (its retention is StreamConfig).
func (s *Stream) Config() Config { return NoLimits() }

// StreamConfig is the stream's retention and segment configuration.
func (s *Stream) StreamConfig() StreamConfig { return *s.cfg.Load() }

// SetStreamConfig changes the stream's retention and segment size while
// it runs (a policy changed). The new segment size applies from the next
// segment; retention is enforced at once (in the background) and then
// every RetentionInterval. It does no I/O itself.
func (s *Stream) SetStreamConfig(cfg StreamConfig) {
	s.mu.Lock()
	if s.closed || s.view != nil {
		s.mu.Unlock()
		return
	}
	s.cfg.Store(&cfg)
	segBytes, segAge := cfg.SegmentBytes, time.Duration(0)
	if segBytes <= 0 {
		segBytes = DefaultStreamSegmentBytes
	}
	if cfg.MaxAge > 0 && cfg.MaxAge < storage.DefaultSegmentAge {
		segAge = cfg.MaxAge
	}
	s.log.SetSegmentOptions(segBytes, segAge)
	start := !s.retaining && (cfg.MaxBytes >= 0 || cfg.MaxAge > 0)
	if start {
		s.retaining = true
		s.wg.Add(1)
		go s.retain()
	}
	// Enforce the new retention now, off the caller's goroutine: the
	// caller may hold the broker's locks, and retention deletes files.
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if _, err := s.EnforceRetention(); err != nil && !errors.Is(err, storage.ErrClosed) {
			s.lg.Warn("stream retention failed", "err", err)
		}
	}()
}

// Log is the stream's log, for readers that speak another protocol.
func (s *Stream) Log() *storage.Log { return s.log }

// Publish appends m as one batch stamped with the broker's clock. The
// returned Appended says when it is durable; readers see it only then.
func (s *Stream) Publish(m *message.Message) (*storage.Appended, error) {
	if s.view != nil {
		return nil, ErrViewPublish
	}
	rec, err := m.Record()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrDeleted
	}
	now := s.now()
	s.lastUsed = now
	s.mu.Unlock()
	app, err := s.log.Append(storage.BuildRecordBatch(0, now.UnixMilli(), []storage.Record{rec}))
	if err != nil {
		return nil, err
	}
	s.Stats.Published.Add(1)
	return app, nil
}

// AddConsumer registers c reading from the next message on (StartNext).
func (s *Stream) AddConsumer(c Consumer, opts ConsumerOptions) (uint64, error) {
	return s.AddStreamConsumer(c, StreamStart{Kind: StartNext}, opts.Exclusive)
}

// AddStreamConsumer registers c reading from start. Every consumer gets
// every message from its start on; c's Reserve is its credit.
func (s *Stream) AddStreamConsumer(c Consumer, start StreamStart, exclusive bool) (uint64, error) {
	next, err := s.resolve(start)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrDeleted
	}
	if s.exclusive || (exclusive && len(s.readers) > 0) {
		return 0, ErrExclusiveConsumer
	}
	s.nextID++
	r := &streamReader{s: s, id: s.nextID, c: c, next: next, kick: make(chan struct{}, 1), stop: make(chan struct{}), exclusive: exclusive}
	s.readers[r.id] = r
	s.exclusive = s.exclusive || exclusive
	s.lastUsed = s.now()
	s.wg.Add(1)
	go r.run()
	return r.id, nil
}

// resolve turns a start into the first offset to read.
func (s *Stream) resolve(st StreamStart) (int64, error) {
	start, hw := s.src.StartOffset(), s.src.HighWatermark()
	switch st.Kind {
	case StartFirst:
		return start, nil
	case StartLast:
		if hw <= start {
			return start, nil
		}
		b, err := s.src.Read(hw-1, 1)
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			return s.src.StartOffset(), nil
		}
		if err != nil {
			return 0, err
		}
		h, err := storage.ParseBatchHeader(b)
		if err != nil {
			return 0, err
		}
		return max(h.BaseOffset, start), nil
	case StartOffset:
		return min(max(st.Offset, start), hw), nil
	case StartTimestamp:
		off, _, ok, err := s.src.OffsetForTimestamp(st.Time.UnixMilli())
		if err != nil {
			return 0, err
		}
		if !ok {
			return hw, nil
		}
		return max(off, start), nil
	default:
		return hw, nil
	}
}

// RemoveConsumer stops a consumer's reader. A delivery it is handing over
// at that moment may still arrive.
func (s *Stream) RemoveConsumer(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.readers[id]
	if !ok {
		return
	}
	delete(s.readers, id)
	if r.exclusive {
		s.exclusive = false
	}
	close(r.stop)
	s.lastUsed = s.now()
}

// Kick tells every reader its consumer may have credit again.
func (s *Stream) Kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.readers {
		r.poke()
	}
}

// Get is not supported on a stream (the front end refuses basic.get
// before it gets here); it never returns a message.
func (s *Stream) Get(noAck bool) (Delivery, bool) { return Delivery{}, false }

// Counts reports the messages the log holds as ready, none unacked, and
// the consumers.
func (s *Stream) Counts() (ready, unacked int64, consumers int) {
	s.mu.Lock()
	n := len(s.readers)
	s.mu.Unlock()
	return s.src.HighWatermark() - s.src.StartOffset(), 0, n
}

// Purge does nothing: a stream is not purged (the front end refuses it).
func (s *Stream) Purge() int64 { return 0 }

// LastUsed is when the stream last saw a publish or a consumer come or go.
func (s *Stream) LastUsed() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUsed, len(s.readers) > 0
}

// Touch marks the stream used.
func (s *Stream) Touch() {
	s.mu.Lock()
	s.lastUsed = s.now()
	s.mu.Unlock()
}

// retain applies retention every RetentionInterval until Close.
func (s *Stream) retain() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if _, err := s.EnforceRetention(); err != nil && !errors.Is(err, storage.ErrClosed) {
			s.lg.Warn("stream retention failed", "err", err)
		}
	}
}

// EnforceRetention deletes whole old segments past x-max-age or while
// the log is over x-max-length-bytes, and returns how many went.
func (s *Stream) EnforceRetention() (int, error) {
	if s.view != nil {
		if s.view.Retain != nil {
			return s.view.Retain()
		}
		return 0, nil // the log's owner keeps its retention
	}
	cfg := s.StreamConfig()
	age := time.Duration(-1)
	if cfg.MaxAge > 0 {
		age = cfg.MaxAge
	}
	return s.log.EnforceRetention(age, cfg.MaxBytes)
}

// Close stops every reader and closes the log, keeping the data.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for id, r := range s.readers {
		close(r.stop)
		delete(s.readers, id)
	}
	close(s.stop)
	s.mu.Unlock()
	s.wg.Wait()
	if s.view != nil {
		return nil // the log is its owner's to close
	}
	return s.log.Close()
}

// Failed returns why the stream's log refuses writes, nil if it does not.
func (s *Stream) Failed() error {
	if s.view != nil {
		return nil // the log's owner recovers it
	}
	return s.log.Failed()
}

// Delete tells the consumers the stream is gone, closes it and removes
// its data.
func (s *Stream) Delete() error {
	if s.view != nil {
		return s.Shutdown() // the data is its owner's
	}
	return errors.Join(s.Shutdown(), os.RemoveAll(s.opts.Dir))
}

// Shutdown tells the consumers the stream is gone and closes it, keeping
// its data.
func (s *Stream) Shutdown() error {
	s.mu.Lock()
	var cs []Consumer
	for _, r := range s.readers {
		cs = append(cs, r.c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Cancelled()
	}
	return s.Close()
}

// streamReader is one consumer's position in the stream. Its goroutine
// reads forward and delivers while the consumer has credit.
type streamReader struct {
	s         *Stream
	id        uint64
	c         Consumer
	exclusive bool
	kick      chan struct{}
	stop      chan struct{}

	// owned by the goroutine
	next int64          // next offset to deliver
	rd   []byte         // read-ahead: whole batches from next on
	pend []streamRecord // decoded records of the batch at the front of rd
	// held is the size of the last read-ahead buffer, for MemoryBytes.
	held atomic.Int64
}

type streamRecord struct {
	off, ts int64
	rec     storage.Record
}

func (r *streamReader) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *streamReader) run() {
	defer r.s.wg.Done()
	for {
		changed := r.s.src.Changed()
		if !r.deliver() {
			return
		}
		select {
		case <-r.stop:
			return
		case <-r.kick:
		case <-changed:
		}
	}
}

// deliver hands over messages until the reader is at the high watermark
// or the consumer has no credit; false when the reader must stop.
func (r *streamReader) deliver() bool {
	for {
		select {
		case <-r.stop:
			return false
		default:
		}
		sr, ok, err := r.peek()
		if err != nil {
			if errors.Is(err, storage.ErrClosed) {
				return false
			}
			r.s.lg.Error("stream read failed", "offset", r.next, "err", err)
			return true // try again on the next wake-up
		}
		if !ok {
			return true
		}
		m, err := r.s.decode(sr)
		if err != nil {
			// Not a message this broker wrote (a foreign record): skip it
			// rather than wedge the reader.
			r.s.lg.Warn("unreadable stream record skipped", "offset", sr.off, "err", err)
			r.advance(sr.off)
			continue
		}
		if !r.c.Reserve() {
			return true // no credit: wait for a kick
		}
		r.advance(sr.off)
		r.s.Stats.Delivered.Add(1)
		r.c.Deliver(Delivery{Offset: sr.off, Message: m})
	}
}

// advance moves past the record at off.
func (r *streamReader) advance(off int64) {
	r.next = off + 1
	if len(r.pend) > 0 && r.pend[0].off == off {
		r.pend = r.pend[1:]
	}
}

// peek returns the record at or after next, reading and decoding a batch
// when needed; ok is false at the high watermark. A position retention
// has passed moves to the log start.
func (r *streamReader) peek() (streamRecord, bool, error) {
	lg := r.s.src
	for {
		if start := lg.StartOffset(); r.next < start {
			r.next, r.rd, r.pend = start, nil, nil
		}
		for len(r.pend) > 0 && r.pend[0].off < r.next {
			r.pend = r.pend[1:]
		}
		if len(r.pend) > 0 {
			return r.pend[0], true, nil
		}
		if r.next >= lg.HighWatermark() {
			return streamRecord{}, false, nil
		}
		r.rd = dropBatchesBelow(r.rd, r.next)
		if len(r.rd) == 0 {
			b, err := lg.Read(r.next, 256<<10)
			if errors.Is(err, storage.ErrOffsetOutOfRange) {
				continue // retention moved the start meanwhile
			}
			if err != nil {
				return streamRecord{}, false, err
			}
			if len(b) == 0 {
				return streamRecord{}, false, nil
			}
			r.rd = b
			r.held.Store(int64(cap(b)))
		}
		h, err := storage.ParseBatchHeader(r.rd)
		if err != nil || h.Size() > len(r.rd) {
			r.rd = nil
			return streamRecord{}, false, storage.ErrCorruptBatch
		}
		batch := r.rd[:h.Size()]
		r.rd = r.rd[h.Size():]
		logAppend := h.Attributes&batchLogAppendTime != 0
		if _, err := storage.ReadRecords(batch, func(off, ts int64, rec storage.Record) bool {
			if logAppend {
				ts = h.MaxTimestamp // a Kafka topic's LogAppendTime stamps the batch
			}
			if off >= r.next {
				r.pend = append(r.pend, streamRecord{off: off, ts: ts, rec: rec})
			}
			return true
		}); err != nil {
			// A batch storage cannot decode (compressed, say): skip it.
			r.s.lg.Warn("undecodable stream batch skipped", "offset", h.BaseOffset, "err", err)
			r.pend = r.pend[:0]
		}
		if len(r.pend) == 0 {
			r.next = max(r.next, h.LastOffset()+1)
		}
	}
}

// batchLogAppendTime is the batch attribute of Kafka's LogAppendTime: the
// batch's MaxTimestamp is every record's timestamp.
const batchLogAppendTime = 0x08

// dropBatchesBelow drops whole batches that end below off from b.
func dropBatchesBelow(b []byte, off int64) []byte {
	for len(b) > 0 {
		h, err := storage.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			return nil
		}
		if h.LastOffset() >= off {
			return b
		}
		b = b[h.Size():]
	}
	return nil
}
