package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Topics as super streams (docs/bridge.md).
//
// A Kafka topic T with N partitions appears in the Kafka vhost
// (RouterOptions.KafkaVhost) as RabbitMQ shows a super stream: a direct
// exchange T with x-super-stream: true, and N stream queues T-0..T-(N-1)
// bound to it with the partition number as binding key and
// x-stream-partition-order. They are views, not copies, and are not
// definitions of their own: they are derived from the topic whenever it
// changes (the Broker calls topicChanged while it holds the topic's name)
// and at start, and nothing of them is written to the metadata log.
//
//   - Publishing to exchange T appends to the topic (Topic.Publish: the
//     routing key is the record key and picks the partition as Kafka's
//     default partitioner does).
//   - Queue T-n is a queue.Stream view over partition n, read up to its
//     high watermark; a publish to it (the default exchange) appends to
//     partition n.
//   - They cannot be deleted over AMQP (ACCESS_REFUSED, as for amq.*);
//     deleting the topic removes them. A redeclare with the same
//     arguments is answered as for any existing exchange or queue.
//   - A topic whose name, or one of whose partition queue names, is taken
//     by an exchange or queue of the vhost is refused (topicNameFree).

// superStreamArg marks a super stream's exchange, as RabbitMQ marks it.
const superStreamArg = "x-super-stream"

// partitionQueueName is RabbitMQ's name for a super stream's partition.
func partitionQueueName(topic string, i int) string {
	return topic + "-" + strconv.Itoa(i)
}

// startTopicViews installs the views of every topic and keeps them in step
// with the topics. Called once, at the end of NewRouter.
func (r *Router) startTopicViews() {
	if r.opts.Topics == nil {
		return
	}
	// Watched without a Kafka vhost too: stream queues declared in one
	// before are topics still.
	r.opts.Topics.watchTopics(r.topicChanged, r.topicNameFree)
	r.syncTopicViews(r.opts.KafkaVhost)
}

// topicStreamOf finds the topic-backed stream queue of topic name, in
// whichever vhost holds it (the Kafka vhost, unless it was changed since
// the queue was declared).
func (r *Router) topicStreamOf(name string) (vh string, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.vhosts {
		if qe, has := v.queues[name]; has && qe.def.Topic == name {
			return v.name, true
		}
		if isStreamQueueTopic(name) {
			for _, qe := range v.queues {
				if qe.def.Topic == name {
					return v.name, true
				}
			}
		}
	}
	return "", false
}

// dropTopicStreamOf deletes the stream queue of deleted topic name, if
// there is one.
func (r *Router) dropTopicStreamOf(name string) bool {
	vh, ok := r.topicStreamOf(name)
	if !ok {
		return false
	}
	v, err := r.lockDefs(vh)
	if err != nil {
		return true
	}
	defer v.defs.Unlock()
	r.mu.RLock()
	qe := v.queues[name]
	if isStreamQueueTopic(name) {
		for _, e := range v.queues {
			if e.def.Topic == name {
				qe = e
			}
		}
	}
	r.mu.RUnlock()
	if qe != nil && qe.def.Topic == name {
		r.dropTopicStream(v, qe)
	}
	return true
}

// syncTopicViews derives the views of every topic in vhost vh, when it is
// the Kafka vhost (at start, and when it is added).
func (r *Router) syncTopicViews(vh string) {
	if r.opts.Topics == nil || vh == "" || vh != r.opts.KafkaVhost {
		return
	}
	for _, t := range r.opts.Topics.Topics() {
		r.topicChanged(t.Name)
	}
}

// topicChanged derives topic name's views anew from what the Broker now
// holds: installs, grows or removes them.
func (r *Router) topicChanged(name string) {
	tp, ok := r.opts.Topics.Topic(name)
	if ok && isStreamQueueTopic(name) {
		r.openStreamOf(name) // its queue, declared through another node
		return
	}
	if ok && r.opts.Clustered {
		r.openStreamOf(name) // a stream queue's topic, declared through another node?
	}
	if ok && tp.IsInternal() {
		return
	}
	if !ok && r.dropTopicStreamOf(name) {
		return
	}
	if r.opts.KafkaVhost == "" {
		return
	}
	v, err := r.lockDefs(r.opts.KafkaVhost)
	if err != nil {
		return // no Kafka vhost (yet): AddVhost derives them
	}
	defer v.defs.Unlock()
	// Again under the defs, which order the derivations of one topic: a
	// caller without the topic's name reserved (AddVhost) may have raced
	// with a change.
	if tp, ok = r.opts.Topics.Topic(name); ok && tp.IsInternal() {
		return
	}
	r.mu.RLock()
	own := v.queues[name]
	r.mu.RUnlock()
	if own != nil && own.isTopicStream() {
		return // a stream queue's topic: never a super stream
	}
	var gone []queue.Handle
	r.mu.Lock()
	if x, has := v.exchanges[name]; has && x.superStream != "" && (!ok || x.superStream != name) {
		delete(v.exchanges, name)
	}
	// Partition views of the topic that are no longer (deleted, or a new
	// topic of the name) go.
	var keep []string
	for _, qn := range r.views[name] {
		qe := v.queues[qn]
		switch {
		case qe == nil || qe.view != name || qe.isTopicStream(): // not (or no longer) this vhost's view
		case !ok || qe.viewIndex >= len(tp.Partitions) || tp.Partitions[qe.viewIndex] != qe.viewPart:
			delete(v.queues, qn)
			gone = append(gone, qe.q)
		default:
			keep = append(keep, qn)
		}
	}
	if len(keep) > 0 {
		r.views[name] = keep
	} else {
		delete(r.views, name)
	}
	if ok {
		r.installTopicViewsLocked(v, tp)
	}
	r.mu.Unlock()
	for _, q := range gone {
		q.Delete() // tells the consumers (basic.cancel); keeps the data
	}
}

// installTopicViewsLocked installs the exchange and the partition queues
// of tp that v lacks. A name taken by another exchange or queue keeps it:
// the topic was refused that name (topicNameFree) unless both were made
// at once, which is logged.
func (r *Router) installTopicViewsLocked(v *vhost, tp *Topic) {
	name := tp.Name
	if r.streamTopics[name] {
		return // a stream queue's topic, being declared
	}
	if x, has := v.exchanges[name]; !has {
		args := fieldtable.Table{superStreamArg: true}
		enc, _ := encodeArgs(args)
		x, _ := newExchange(meta.Exchange{Vhost: v.name, Name: name, Type: ExchangeDirect, Durable: true, Arguments: enc})
		x.superStream = name
		v.exchanges[name] = x
	} else if x.superStream != name {
		r.log.Warn("a topic's super stream exchange name is taken by an exchange", "vhost", v.name, "topic", name)
	}
	for i, p := range tp.Partitions {
		qn := partitionQueueName(name, i)
		if qe, has := v.queues[qn]; has {
			if qe.view != name {
				r.log.Warn("a topic's partition queue name is taken by a queue", "vhost", v.name, "topic", name, "queue", qn)
			}
			continue
		}
		v.queues[qn] = r.partitionView(v.name, qn, tp.Name, i, p, nil)
		if r.views == nil {
			r.views = map[string][]string{}
		}
		r.views[name] = append(r.views[name], qn)
	}
}

// partitionView is partition p of tp as stream queue qn.
func (r *Router) partitionView(vh, qn, topic string, i int, p *Partition, retain func() (int, error)) *queueEntry {
	args := fieldtable.Table{"x-queue-type": QueueTypeStream}
	enc, _ := encodeArgs(args)
	def := meta.Queue{Vhost: vh, Name: qn, Durable: true, Arguments: enc}
	s := queue.OpenStreamView(queue.StreamViewOptions{
		Name: qn, Source: partitionSource{p}, Now: r.opts.Now, Logger: r.log.With("vhost", vh),
		Decode: func(_, ts int64, rec storage.Record) (message.Message, error) {
			return message.FromTopicRecord(rec, ts)
		},
		Retain: retain,
	})
	qe := &queueEntry{def: def, args: args, view: topic, viewIndex: i, viewPart: p,
		qa: queueArgs{cfg: queue.NoLimits(), expires: -1, queueType: QueueTypeStream, stream: queue.StreamConfig{MaxBytes: -1}}}
	qe.setQueue(s)
	qe.dest = &partitionDestination{p: p}
	return qe
}

// topicNameFree refuses a topic (created, or grown to partitions) whose
// exchange or partition queue name is taken in the Kafka vhost by an
// exchange or queue that is not one of its views.
func (r *Router) topicNameFree(name string, partitions int32) error {
	if vh, ok := r.topicStreamOf(name); ok {
		if partitions > 1 {
			return fmt.Errorf("%w: topic '%s' is stream queue '%s' of vhost '%s': one partition", ErrInvalidPartitions, name, name, vh)
		}
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[r.opts.KafkaVhost]
	if !ok || r.opts.KafkaVhost == "" {
		return nil
	}
	if r.streamTopics[name] {
		return nil // declared as a stream queue
	}
	if x, has := v.exchanges[name]; has && x.superStream != name {
		return fmt.Errorf("%w: exchange '%s' exists in vhost '%s'", ErrTopicExists, name, v.name)
	}
	if _, has := v.declaring[name]; has {
		return fmt.Errorf("%w: queue '%s' is being declared in vhost '%s'", ErrTopicExists, name, v.name)
	}
	for i := 0; i < int(partitions); i++ {
		qn := partitionQueueName(name, i)
		if qe, has := v.queues[qn]; has && qe.view != name {
			return fmt.Errorf("%w: queue '%s' exists in vhost '%s'", ErrTopicExists, qn, v.name)
		}
		if _, has := v.declaring[qn]; has {
			return fmt.Errorf("%w: queue '%s' is being declared in vhost '%s'", ErrTopicExists, qn, v.name)
		}
	}
	return nil
}

// viewRefusal refuses deleting a topic's view over AMQP.
func viewRefusal(kind, name, vh string) error {
	return fmt.Errorf("%w: %s '%s' in vhost '%s' is a view of a topic: change the topic instead", ErrAccessRefused, kind, name, vh)
}

// topicViewBindingErr refuses a binding from or to a topic's views: a
// super stream's bindings are its topic's partitions, and the views are
// no definitions a binding could name. A topic-backed stream queue is
// one, and binds as any queue.
func topicViewBindingErr(v *vhost, b meta.Binding) error {
	if x := v.exchanges[b.Source]; x != nil && x.superStream != "" {
		return viewRefusal("exchange", b.Source, v.name)
	}
	switch b.DestinationKind {
	case DestExchange:
		if x := v.exchanges[b.Destination]; x != nil && x.superStream != "" {
			return viewRefusal("exchange", b.Destination, v.name)
		}
	case DestQueue, "":
		if qe := v.queues[b.Destination]; qe != nil && qe.view != "" && !qe.isTopicStream() {
			return viewRefusal("queue", b.Destination, v.name)
		}
	}
	return nil
}

// TopicViewExchanges are the super stream exchanges of vhost vh, sorted by
// name, for listings that read definitions from the metadata store.
func (r *Router) TopicViewExchanges(vh string) []meta.Exchange {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return nil
	}
	var out []meta.Exchange
	for _, x := range v.exchanges {
		if x.superStream != "" {
			out = append(out, x.def)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TopicViewBindings are the bindings of the super stream exchanges of
// vhost vh to their partition queues, as RabbitMQ lists them: binding key
// the partition number, x-stream-partition-order its order.
func (r *Router) TopicViewBindings(vh string) []meta.Binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return nil
	}
	var out []meta.Binding
	var order []int
	for _, qe := range v.queues {
		if qe.view == "" || qe.isTopicStream() {
			continue
		}
		order = append(order, qe.viewIndex)
		args, _ := encodeArgs(fieldtable.Table{"x-stream-partition-order": int32(qe.viewIndex)})
		out = append(out, meta.Binding{Vhost: vh, Source: qe.view, Destination: qe.def.Name, DestinationKind: meta.DestQueue,
			RoutingKey: strconv.Itoa(qe.viewIndex), Arguments: args})
	}
	sort.Sort(bindingsByPartition{out, order})
	return out
}

// bindingsByPartition sorts a super stream's bindings by exchange, then
// partition number (not by name: T-10 follows T-9).
type bindingsByPartition struct {
	bs    []meta.Binding
	order []int
}

func (s bindingsByPartition) Len() int { return len(s.bs) }
func (s bindingsByPartition) Less(i, j int) bool {
	if s.bs[i].Source != s.bs[j].Source {
		return s.bs[i].Source < s.bs[j].Source
	}
	return s.order[i] < s.order[j]
}
func (s bindingsByPartition) Swap(i, j int) {
	s.bs[i], s.bs[j] = s.bs[j], s.bs[i]
	s.order[i], s.order[j] = s.order[j], s.order[i]
}

// partitionDestination is one partition as a routing destination: a
// publish to a partition view (through the default exchange) appends there.
type partitionDestination struct{ p *Partition }

func (d *partitionDestination) Publish(m *message.Message, now time.Time) (Pending, error) {
	rec, err := m.TopicRecord()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
	}
	return publishRecord(d.p, rec, now)
}

// partitionSource is a partition as a stream view's source: read up to the
// high watermark, with every batch made one a stream reader decodes.
type partitionSource struct{ p *Partition }

func (s partitionSource) StartOffset() int64 {
	start, _, _ := s.p.Offsets()
	return start
}

func (s partitionSource) HighWatermark() int64 {
	_, hw, _ := s.p.Offsets()
	return hw
}

func (s partitionSource) Changed() <-chan struct{} { return s.p.Watch() }

func (s partitionSource) OffsetForTimestamp(ts int64) (int64, int64, bool, error) {
	return s.p.OffsetForTimestamp(ts)
}

func (s partitionSource) Read(offset int64, maxBytes int) ([]byte, error) {
	b, err := s.p.Read(offset, maxBytes, ReadUncommitted)
	if err != nil {
		return nil, err
	}
	return plainBatches(b), nil
}

// plainBatches rewrites what a partition read returned so that a stream
// reader can decode every batch: a compressed batch is decompressed (its
// codec bits cleared), and a control batch (a transaction marker) or one
// that does not decode is emptied of records, so that the reader steps
// over its offsets. The CRC is not recomputed: the result is read, never
// stored or sent. It returns b itself when nothing needs rewriting.
func plainBatches(b []byte) []byte {
	rest, plain := b, true
	for len(rest) >= batchHeaderBytes {
		h, err := storage.ParseBatchHeader(rest)
		if err != nil || h.Size() > len(rest) || h.Size() < batchHeaderBytes {
			break
		}
		if h.Attributes&(batchCodecMask|controlBit) != 0 {
			plain = false
			break
		}
		rest = rest[h.Size():]
	}
	if plain {
		return b
	}
	out := make([]byte, 0, len(b))
	for len(b) >= batchHeaderBytes {
		h, err := storage.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) || h.Size() < batchHeaderBytes {
			break
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		var recs []byte
		switch {
		case h.Attributes&controlBit != 0:
		case h.Attributes&batchCodecMask != 0:
			if recs, err = decompress(h.Attributes&batchCodecMask, batch[batchHeaderBytes:], maxDecodedBatchBytes); err != nil {
				recs = nil
			}
		default:
			out = append(out, batch...)
			continue
		}
		at := len(out)
		out = append(out, batch[:batchHeaderBytes]...)
		out = append(out, recs...)
		hdr := out[at:]
		binary.BigEndian.PutUint32(hdr[8:12], uint32(batchHeaderBytes-12+len(recs)))
		binary.BigEndian.PutUint16(hdr[21:23], uint16(h.Attributes&^(batchCodecMask|controlBit)))
		if recs == nil {
			binary.BigEndian.PutUint32(hdr[57:61], 0) // no records
		}
	}
	return out
}

// Stream queues as topics.
//
// A stream queue declared over AMQP in the Kafka vhost is a one-partition
// topic of the queue's name from the start: the declaration creates the
// topic (its retention arguments as topic configs, streamTopicConfigs)
// and then records the queue with meta.Queue.Topic set, and the queue is
// a stream view over partition 0 (it has no log of its own). It is not
// also shown as a super stream. Deleting the queue deletes the topic;
// deleting the topic (over Kafka) deletes the queue. A crash between the
// topic's creation and the queue's record leaves the topic, shown as a
// super stream; a queue record whose topic is gone is dropped at start.

// isTopicStream reports whether qe is a stream queue backed by a topic of
// its name.
func (qe *queueEntry) isTopicStream() bool { return qe.def.Topic != "" }

// streamTopicConfigs maps a stream's retention arguments to the configs
// of its topic: a stream keeps everything unless told (RabbitMQ), where a
// topic's default retention is the broker's.
func streamTopicConfigs(sc queue.StreamConfig) map[string]string {
	c := map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}
	if sc.MaxAge > 0 {
		c["retention.ms"] = strconv.FormatInt(sc.MaxAge.Milliseconds(), 10)
	}
	if sc.MaxBytes >= 0 {
		c["retention.bytes"] = strconv.FormatInt(sc.MaxBytes, 10)
	}
	if sc.SegmentBytes > 0 {
		c["segment.bytes"] = strconv.FormatInt(sc.SegmentBytes, 10)
	}
	return c
}

// topicStreamsIn reports whether declarations of stream queues in vhost v
// create topics.
func (r *Router) topicStreamsIn(v *vhost) bool {
	return r.opts.Topics != nil && r.opts.KafkaVhost != "" && v.name == r.opts.KafkaVhost
}

// createTopicStream declares stream queue d of v (its name reserved in
// v.declaring) as a one-partition topic and its view.
func (r *Router) createTopicStream(v *vhost, d QueueDecl, qa queueArgs, args []byte) (QueueInfo, error) {
	r.mu.Lock()
	if r.streamTopics == nil {
		r.streamTopics = map[string]bool{}
	}
	r.streamTopics[d.Name] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.streamTopics, d.Name)
		r.mu.Unlock()
	}()
	res := r.opts.Topics.CreateTopics([]TopicSpec{{Name: d.Name, Partitions: 1, Configs: streamTopicConfigs(qa.stream),
		ReplicationFactor: r.streamReplication(d.Arguments)}}, false)[0]
	tp, err := res.Topic, res.Err
	switch {
	case errors.Is(err, ErrTopicExists):
		return QueueInfo{}, fmt.Errorf("%w: a topic or exchange named '%s' exists in vhost '%s'", ErrPreconditionFailed, d.Name, v.name)
	case errors.Is(err, ErrInvalidTopic), errors.Is(err, ErrInvalidConfig):
		return QueueInfo{}, fmt.Errorf("%w: stream '%s' cannot be a topic: %v", ErrPreconditionFailed, d.Name, err)
	case err != nil:
		return QueueInfo{}, err
	}
	def := meta.Queue{ID: meta.NewQueueID(), Vhost: v.name, Name: d.Name, Durable: true, Arguments: args, Topic: d.Name}
	if def, err = r.meta.DeclareQueue(def); err != nil {
		if derr := r.opts.Topics.DeleteTopic(d.Name); derr != nil {
			r.log.Warn("removing the topic of a failed stream declaration", "vhost", v.name, "queue", d.Name, "err", derr)
		}
		return QueueInfo{}, err
	}
	qe := r.topicStreamEntry(def, qa, tp.Partitions[0])
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.vhosts[v.name] != v {
		return QueueInfo{}, ErrClosed // defined: it comes back at the next start
	}
	v.queues[d.Name] = qe
	r.applyQueuePolicyLocked(v, qe, true)
	return QueueInfo{Name: d.Name}, nil
}

// topicStreamEntry is stream queue def shown over partition p of its
// topic. Its topic's retention is applied as often as a stream's own.
func (r *Router) topicStreamEntry(def meta.Queue, qa queueArgs, p *Partition) *queueEntry {
	topics, name := r.opts.Topics, def.Topic
	qe := r.partitionView(def.Vhost, def.Name, def.Topic, 0, p, func() (int, error) { return topics.enforceTopicRetention(name) })
	qe.def = def
	qe.args, _ = decodeArgs(def.Arguments)
	qe.qa = qa
	return qe
}

// loadTopicStreams installs the topic-backed stream queues of a vhost being
// loaded; one whose topic is gone is dropped.
func (r *Router) loadTopicStreams(v *vhost, defs []meta.Queue) error {
	for _, def := range defs {
		var tp *Topic
		ok := r.opts.Topics != nil
		if ok {
			tp, ok = r.opts.Topics.Topic(def.Topic)
		}
		args, err := decodeArgs(def.Arguments)
		var qa queueArgs
		if err == nil {
			qa, err = parseQueueArgs(args, def.Durable, def.Exclusive, def.AutoDelete)
		}
		if !ok || err != nil || len(tp.Partitions) == 0 {
			r.log.Warn("a stream queue's topic is gone: queue dropped", "vhost", v.name, "queue", def.Name, "err", err)
			if err := r.meta.DeleteQueue(v.name, def.Name); err != nil {
				return err
			}
			continue
		}
		qe := r.topicStreamEntry(def, qa, tp.Partitions[0])
		v.queues[def.Name] = qe
		r.applyQueuePolicyLocked(v, qe, true)
	}
	return nil
}

// deleteTopicStream deletes a topic-backed stream queue by deleting its
// topic: topicChanged then deletes the queue. It returns the messages the
// queue held.
func (r *Router) deleteTopicStream(vh, name string, qe *queueEntry) (int64, error) {
	ready, _, _ := qe.q.Counts()
	var err error
	if isStreamQueueTopic(qe.def.Topic) {
		err = r.opts.Topics.deleteTopic(qe.def.Topic) // the queue's own
	} else {
		err = r.opts.Topics.DeleteTopic(qe.def.Topic)
	}
	if errors.Is(err, ErrUnknownTopic) {
		// Gone already (the queue record outlived it): drop the record.
		r.topicChanged(qe.def.Topic)
		err = nil
	}
	return ready, err
}

// dropTopicStream deletes topic-backed stream queue qe of v (defs held)
// whose topic was deleted.
func (r *Router) dropTopicStream(v *vhost, qe *queueEntry) {
	if err := r.deleteQueue(v, qe); err != nil {
		r.log.Warn("deleting the stream queue of a deleted topic", "vhost", v.name, "queue", qe.def.Name, "err", err)
	}
}

// enforceTopicRetention applies topic name's retention now, as
// EnforceRetention does for every topic.
func (b *Broker) enforceTopicRetention(name string) (int, error) {
	t, ok := b.Topic(name)
	if !ok || !t.cfg.deletes {
		return 0, nil
	}
	n := 0
	for _, p := range t.Partitions {
		k, err := p.log.EnforceRetention(t.cfg.retention, t.cfg.retentionBytes)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TopicStreamQueues are the stream queues that show topic over AMQP, with
// their counts: its super stream's partition queues in the Kafka vhost,
// or the stream queue the topic is.
func (r *Router) TopicStreamQueues(topic string) []QueueStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []QueueStatus
	for _, v := range r.vhosts {
		for _, qe := range v.queues {
			if qe.isTopicStream() && qe.def.Topic == topic || !qe.isTopicStream() && qe.view == topic && v.name == r.opts.KafkaVhost {
				out = append(out, queueStatus(qe))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TopicOf reports the topic whose data an exchange or queue of vhost vh
// is (kind "exchange" or "queue"): a topic's super stream exchange, one of
// its partition stream queues, or a stream queue that is a one-partition
// topic. Authorization uses it to apply a topic's Kafka DENY ACLs to the
// AMQP view of the same data.
func (r *Router) TopicOf(vh, kind, name string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.vhosts[vh]
	if !ok {
		return "", false
	}
	switch kind {
	case "exchange":
		if e, ok := v.exchanges[name]; ok && e.superStream != "" {
			return e.superStream, true
		}
	case "queue":
		if qe, ok := v.queues[name]; ok {
			if qe.view != "" {
				return qe.view, true
			}
			if qe.def.Topic != "" {
				return qe.def.Topic, true
			}
		}
	}
	return "", false
}
