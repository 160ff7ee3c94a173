package broker

// Topic feeds: the records of a topic delivered into AMQP, durably.
//
// A feed reads a topic's partitions from a cursor and appends each record,
// as the message FromFedRecord makes of it, to its destination. There
// are two kinds:
//
//   - a bound queue: a binding whose source is a topic (meta.SourceTopic)
//     feeds the queue every record of the topic, or of the partitions its
//     routing keys name ("#", "" or anything not a partition number: all
//     of them; "0", "1", ...: that partition); one feed serves every
//     binding of a topic to a queue, so a record reaches the queue once;
//   - a forwarding topic: the topic configs sluice.forward.exchange and
//     sluice.forward.vhost make every record be published through that
//     exchange, with the record key as routing key.
//
// Each partition is fed by its own goroutine, which reads only what is
// durable (below the last stable offset: no record of an open
// transaction, none of an aborted one, no transaction marker), at most a
// megabyte at a time, so a feed's memory does not grow with the backlog
// its destination holds (a queue keeps that on disk). It waits while a
// bound queue is in credit flow (its consumers behind), and resumes when
// they catch up.
//
// Durability and duplicates (docs/amqp-compatibility.md, "Queues bound to
// topics"): after the appends of one read are durable the goroutine
// writes the partition's checkpoint, the next offset to feed and the
// queue's log end at that moment, to DataDir/feeds/<feed>/<partition>. A
// crash can lose the checkpoint's last update, not the appends; so on
// start a bound queue's feed scans the queue's log from the checkpoint's
// log end for messages it fed (their x-kafka-* headers name the topic,
// partition and offset) and resumes after the highest one found: a record
// durable in the queue is never appended again, and one that was not is
// fed again from the topic, where it is durable. A forwarding topic's
// checkpoint also keeps, for each queue its records were routed to, that
// queue's log end; the first read after a start routes each record again
// and skips the queues whose log (scanned from that end) holds it already.
// So each record reaches each classic or quorum queue once; a delayed
// exchange's store, priority and stream queues and topics get it at least
// once.

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/fsutil"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Topic configs of a forwarding topic.
const (
	ForwardExchangeConfig = "sluice.forward.exchange"
	ForwardVhostConfig    = "sluice.forward.vhost"
)

// forwardedHeader lists the topics a message was forwarded from, so that
// a record never goes round a loop (topic → exchange → same topic) twice.
const forwardedHeader = "x-sluice-forwarded"

// errQueueFull: a bound queue with x-overflow reject-publish is full; the
// feed waits for room.
var errQueueFull = errors.New("bound queue full")

// feedReadBytes is how much of a partition one read of a feed takes.
const feedReadBytes = 1 << 20

// feedKey names a feed: a bound queue (queueID set) or a forwarding topic.
type feedKey struct {
	topic    string
	vhost    string
	queue    string // the bound queue's name, "" for a forwarding topic
	queueID  string
	exchange string // a forwarding topic's exchange
}

// dir is the feed's checkpoint directory.
func (k feedKey) dir(dataDir string) string {
	var h [32]byte
	if k.queueID != "" {
		h = sha256.Sum256([]byte("q\x00" + k.topic + "\x00" + k.queueID))
	} else {
		h = sha256.Sum256([]byte("x\x00" + k.topic + "\x00" + k.vhost + "\x00" + k.exchange))
	}
	return filepath.Join(dataDir, "feeds", hex.EncodeToString(h[:16]))
}

// feed is a running feed.
type feed struct {
	key  feedKey
	dir  string
	r    *Router
	mu   sync.Mutex
	only []int32 // the partitions fed; nil: every one
	stop chan struct{}
	wg   sync.WaitGroup
	// parts are the partitions with a goroutine, under mu.
	parts map[int32]bool
	// next is each partition's next offset to feed, once resumed, under mu.
	next map[int32]int64
}

// topicBinding is a binding of a topic to a queue, within its vhost.
type topicBinding struct {
	Source, Destination, RoutingKey, Arguments string
}

// feedState is the Router's set of feeds.
type feedState struct {
	// syncing serializes syncFeeds; taken before Router.mu.
	syncing sync.Mutex
	mu      sync.Mutex // before a feed's mu and Broker.mu
	// binds are the bindings whose source is a topic, by vhost.
	binds map[string]map[topicBinding]struct{}
	feeds map[feedKey]*feed
}

// topicBindingFor reports whether binding b (of an exchange to a queue,
// as queue.bind sends it) names a topic in the vhost topics show in, and
// makes it a topic binding if so. A topic's name wins over an exchange's,
// except for a stream queue: a super stream's partition streams are bound
// to its exchange (named after the topic) as to any exchange.
func (r *Router) topicBindingFor(b meta.Binding) meta.Binding {
	if b.SourceKind == "" && b.DestinationKind == DestQueue && b.Vhost == r.kafkaVhost() && b.Vhost != "" && r.opts.Topics != nil {
		if _, ok := r.opts.Topics.Topic(b.Source); ok {
			r.mu.RLock()
			stream := false
			if v, ok := r.vhosts[b.Vhost]; ok {
				if qe, ok := v.queues[b.Destination]; ok {
					stream = qe.qa.queueType == QueueTypeStream
				}
			}
			r.mu.RUnlock()
			if !stream {
				b.SourceKind = meta.SourceTopic
			}
		}
	}
	return b
}

// kafkaVhost is the vhost where queue.bind names topics as exchanges; ""
// (topics shown in no vhost): none, a topic is bound to a queue through
// the management API only.
func (r *Router) kafkaVhost() string { return r.opts.KafkaVhost }

// checkTopicBindingLocked checks a topic binding under Router.mu.
func (r *Router) checkTopicBindingLocked(v *vhost, b meta.Binding, owner string) error {
	if r.opts.Topics == nil {
		return fmt.Errorf("%w: no topic '%s'", ErrNotFound, b.Source)
	}
	if tp, ok := r.opts.Topics.Topic(b.Source); !ok {
		return fmt.Errorf("%w: no topic '%s'", ErrNotFound, b.Source)
	} else if tp.IsInternal() {
		return fmt.Errorf("%w: topic '%s' is the broker's own", ErrAccessRefused, b.Source)
	}
	if b.DestinationKind != DestQueue {
		return fmt.Errorf("%w: a topic can be bound to queues only", ErrPreconditionFailed)
	}
	qe, ok := v.queues[b.Destination]
	if !ok {
		return fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, b.Destination, b.Vhost)
	}
	if qe.def.Exclusive && qe.owner != owner {
		return fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, b.Destination, b.Vhost)
	}
	if qe.qa.queueType == QueueTypeStream || qe.qa.maxPrio > 0 {
		return fmt.Errorf("%w: only classic and quorum queues without x-max-priority can be bound to topic '%s' (a stream queue reads the topic's records as a super stream partition)", ErrPreconditionFailed, b.Source)
	}
	return nil
}

// addTopicBindingLocked records a topic binding, under Router.mu.
func (r *Router) addTopicBindingLocked(b meta.Binding) {
	r.feeds.mu.Lock()
	defer r.feeds.mu.Unlock()
	if r.feeds.binds == nil {
		r.feeds.binds = map[string]map[topicBinding]struct{}{}
	}
	m := r.feeds.binds[b.Vhost]
	if m == nil {
		m = map[topicBinding]struct{}{}
		r.feeds.binds[b.Vhost] = m
	}
	m[topicBinding{b.Source, b.Destination, b.RoutingKey, string(b.Arguments)}] = struct{}{}
}

func (r *Router) removeTopicBindingLocked(b meta.Binding) {
	r.feeds.mu.Lock()
	defer r.feeds.mu.Unlock()
	delete(r.feeds.binds[b.Vhost], topicBinding{b.Source, b.Destination, b.RoutingKey, string(b.Arguments)})
}

// prepareFeed writes the first checkpoints of the bound queue feed that
// binding b is about to start, at each partition's end, unless the feed
// has some already (another binding of the topic to the queue): a queue
// bound to a topic gets the records produced from then on, as a queue
// bound to an exchange gets the messages published from then on.
func (r *Router) prepareFeed(v *vhost, b meta.Binding) error {
	r.mu.RLock()
	qe, ok := v.queues[b.Destination]
	r.mu.RUnlock()
	tp, ok2 := r.opts.Topics.Topic(b.Source)
	if !ok || !ok2 {
		return nil // the binding's check will say
	}
	dir := feedKey{topic: b.Source, vhost: b.Vhost, queue: b.Destination, queueID: qe.def.ID}.dir(r.opts.DataDir)
	return initCheckpoints(dir, tp)
}

func initCheckpoints(dir string, tp *Topic) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for _, p := range tp.Partitions {
		_, hw, _ := p.Offsets()
		if err := writeCheckpoint(tmp, p.Index, checkpoint{Next: hw, TopicID: tp.ID.String()}, true); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(dir))
}

// syncFeeds starts the feeds the bindings and topic configs call for and
// stops the others. Called without locks.
func (r *Router) syncFeeds() {
	r.feeds.syncing.Lock()
	defer r.feeds.syncing.Unlock()
	want := map[feedKey][]int32{}
	all := map[feedKey]bool{}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return
	}
	r.feeds.mu.Lock()
	for vh, bs := range r.feeds.binds {
		v, ok := r.vhosts[vh]
		if !ok {
			delete(r.feeds.binds, vh)
			continue
		}
		for b := range bs {
			qe, ok := v.queues[b.Destination]
			if !ok {
				delete(bs, b)
				continue
			}
			k := feedKey{topic: b.Source, vhost: vh, queue: b.Destination, queueID: qe.def.ID}
			if n, err := strconv.ParseInt(b.RoutingKey, 10, 32); err == nil && n >= 0 {
				want[k] = append(want[k], int32(n))
			} else {
				all[k] = true
			}
		}
	}
	r.feeds.mu.Unlock()
	r.mu.RUnlock()
	for k := range all {
		want[k] = nil
	}
	var topics []*Topic
	if r.opts.Topics != nil {
		topics = r.opts.Topics.Topics()
	}
	for _, tp := range topics {
		if x := tp.Configs[ForwardExchangeConfig]; x != "" {
			vh := cmp.Or(tp.Configs[ForwardVhostConfig], r.kafkaVhost(), "/")
			want[feedKey{topic: tp.Name, vhost: vh, exchange: x}] = nil
		}
	}
	r.feeds.mu.Lock()
	if r.feeds.feeds == nil {
		r.feeds.feeds = map[feedKey]*feed{}
	}
	var stopped []*feed
	for k, f := range r.feeds.feeds {
		if _, ok := want[k]; !ok {
			delete(r.feeds.feeds, k)
			stopped = append(stopped, f)
		}
	}
	var started []*feed
	for k, only := range want {
		slices.Sort(only)
		only = slices.Compact(only)
		f, ok := r.feeds.feeds[k]
		if !ok {
			f = &feed{key: k, dir: k.dir(r.opts.DataDir), r: r, stop: make(chan struct{}), parts: map[int32]bool{}, next: map[int32]int64{}}
			r.feeds.feeds[k] = f
			started = append(started, f)
		}
		f.mu.Lock()
		f.only = only
		f.mu.Unlock()
	}
	r.feeds.mu.Unlock()
	for _, f := range stopped {
		close(f.stop)
		f.wg.Wait()
		os.RemoveAll(f.dir)
	}
	for _, f := range started {
		if f.key.queue == "" { // a forwarding topic: from now on
			if tp, ok := r.opts.Topics.Topic(f.key.topic); ok {
				if err := initCheckpoints(f.dir, tp); err != nil {
					r.log.Warn("topic feed checkpoint", "topic", f.key.topic, "err", err)
				}
			}
		}
	}
	r.feeds.mu.Lock()
	for _, f := range r.feeds.feeds {
		f.startPartitions()
	}
	r.feeds.mu.Unlock()
}

// FeedStatus is where a queue's feed from one partition of a topic
// stands: Next is the next offset to feed, End the partition's last
// stable offset; End - Next records are still to come.
type FeedStatus struct {
	Topic     string
	Partition int32
	Next, End int64
	// Vhost and Queue (a bound queue) or Exchange (a forwarding topic)
	// name the destination.
	Vhost, Queue, Exchange string
}

// queueFeeds reports the feeds of queue name (id) of vhost vh, by topic
// and partition; partitions not yet resumed are left out.
func (r *Router) queueFeeds(vh, name, id string) []FeedStatus {
	return r.feedStatuses(func(k feedKey) bool { return k.vhost == vh && k.queue == name && k.queueID == id })
}

// Feeds reports every feed, bound queues' and forwarding topics', by
// destination, topic and partition (for metrics).
func (r *Router) Feeds() []FeedStatus {
	return r.feedStatuses(func(feedKey) bool { return true })
}

func (r *Router) feedStatuses(keep func(feedKey) bool) []FeedStatus {
	var out []FeedStatus
	r.feeds.mu.Lock()
	var fs []*feed
	for k, f := range r.feeds.feeds {
		if keep(k) {
			fs = append(fs, f)
		}
	}
	r.feeds.mu.Unlock()
	for _, f := range fs {
		tp, ok := r.opts.Topics.Topic(f.key.topic)
		f.mu.Lock()
		for i, next := range f.next {
			st := FeedStatus{Topic: f.key.topic, Partition: i, Next: next, End: next,
				Vhost: f.key.vhost, Queue: f.key.queue, Exchange: f.key.exchange}
			if ok && int(i) < len(tp.Partitions) {
				_, _, st.End = tp.Partitions[i].Offsets()
			}
			out = append(out, st)
		}
		f.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b FeedStatus) int {
		return cmp.Or(strings.Compare(a.Vhost, b.Vhost), strings.Compare(a.Queue, b.Queue), strings.Compare(a.Exchange, b.Exchange),
			strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// feedTopicChanged is the Broker's onChange: a topic's definition changed.
// Only a forwarding topic, or one with feeds, can change the feeds.
func (r *Router) feedTopicChanged(tp *Topic) {
	if tp.Configs[ForwardExchangeConfig] == "" {
		r.feeds.mu.Lock()
		fed := false
		for k := range r.feeds.feeds {
			fed = fed || k.topic == tp.Name
		}
		r.feeds.mu.Unlock()
		if !fed {
			return
		}
	}
	r.syncFeeds()
}

// removeStrayFeedDirs deletes the checkpoints of feeds that no binding or
// config calls for any more (a crash between an unbind and their
// removal), so that a later binding starts afresh. At start only, before
// any Bind can prepare a directory.
func (r *Router) removeStrayFeedDirs() {
	root := filepath.Join(r.opts.DataDir, "feeds")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	r.feeds.mu.Lock()
	for _, f := range r.feeds.feeds {
		keep[filepath.Base(f.dir)] = true
	}
	r.feeds.mu.Unlock()
	for _, e := range ents {
		if !keep[e.Name()] {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// feedLoop runs syncFeeds every second, for topics created, grown or
// deleted, and configs changed, by means that do not call it.
func (r *Router) feedLoop() {
	defer r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.syncFeeds()
		}
	}
}

// stopFeeds stops every feed (Router.Close, after closed is set: no
// syncFeeds starts one afterwards).
func (r *Router) stopFeeds() {
	r.feeds.syncing.Lock()
	defer r.feeds.syncing.Unlock()
	r.feeds.mu.Lock()
	fs := r.feeds.feeds
	r.feeds.feeds = nil
	r.feeds.mu.Unlock()
	for _, f := range fs {
		close(f.stop)
	}
	for _, f := range fs {
		f.wg.Wait()
	}
}

// startPartitions starts a goroutine for each partition of the topic
// that has none. Under feedState.mu.
func (f *feed) startPartitions() {
	tp, ok := f.r.opts.Topics.Topic(f.key.topic)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range int32(len(tp.Partitions)) {
		if f.parts[i] {
			continue
		}
		f.parts[i] = true
		f.wg.Add(1)
		go f.run(i)
	}
}

// wanted reports whether partition i is fed.
func (f *feed) wanted(i int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.only == nil || slices.Contains(f.only, i)
}

// sleep waits d or until the feed stops; false if it stopped.
func (f *feed) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.stop:
		return false
	case <-t.C:
		return true
	}
}

// run feeds partition i until the feed stops.
func (f *feed) run(i int32) {
	defer f.wg.Done()
	var cp checkpoint
	resumed := false
	fw := &forwardRead{part: i}
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		if !f.wanted(i) {
			if !f.sleep(250 * time.Millisecond) {
				return
			}
			continue
		}
		tp, ok := f.r.opts.Topics.Topic(f.key.topic)
		if !ok || int(i) >= len(tp.Partitions) {
			if !f.sleep(time.Second) {
				return
			}
			continue
		}
		p := tp.Partitions[i]
		if !resumed {
			var err error
			if cp, err = f.resume(i); err != nil {
				f.r.log.Warn("topic feed cannot resume; retrying", "topic", f.key.topic, "partition", i, "queue", f.key.queue, "exchange", f.key.exchange, "err", err)
				if !f.sleep(time.Second) {
					return
				}
				continue
			}
			resumed = true
			f.mu.Lock()
			f.next[i] = cp.Next
			f.mu.Unlock()
			// A forwarding topic: the first read after a resume may have
			// reached some of its queues before a crash.
			fw.dedupe, fw.seen = f.key.queue == "", map[string]int64{}
		}
		watch := p.Watch()
		start, hw, lso := p.Offsets()
		if id := tp.ID.String(); cp.TopicID != id {
			if cp.TopicID != "" { // the topic was deleted and created anew
				cp.Next = start
			}
			cp.TopicID = id
		}
		if cp.Next > hw { // the topic was deleted and created anew (before ids were kept)
			cp.Next = start
		}
		if cp.Next < start { // retention deleted records not fed yet
			f.r.log.Warn("topic feed skips records deleted by retention", "topic", f.key.topic, "partition", i, "from", cp.Next, "to", start)
			cp.Next = start
		}
		if cp.Next >= lso {
			select {
			case <-f.stop:
				return
			case <-watch:
			case <-time.After(time.Second): // a deleted topic's partition may never wake us
			}
			continue
		}
		if f.paused() {
			if !f.sleep(10 * time.Millisecond) {
				return
			}
			continue
		}
		if cp.Ends == nil {
			cp.Ends = map[string]int64{}
		}
		fw.ends, fw.touched = cp.Ends, map[string]*queue.Queue{}
		next, err := f.feedOnce(p, i, cp.Next, lso, fw)
		full := errors.Is(err, errQueueFull) // waits for room, after keeping what went in
		pause := 10 * time.Millisecond
		if full {
			err, pause = nil, 100*time.Millisecond
		}
		if err != nil {
			f.r.log.Warn("topic feed", "topic", f.key.topic, "partition", i, "queue", f.key.queue, "exchange", f.key.exchange, "err", err)
			if !f.sleep(time.Second) {
				return
			}
			continue
		}
		if next == cp.Next { // nothing readable below lso from here yet, or the queue is full
			if !f.sleep(pause) {
				return
			}
			continue
		}
		cp.Next = next
		fw.dedupe = false
		for name, q := range fw.touched { // durable in them: feedOnce waited
			cp.Ends[name] = q.LogEnd()
		}
		if f.key.queue != "" {
			if q := f.queue(); q != nil {
				cp.QueueEnd = q.LogEnd()
			}
		}
		f.mu.Lock()
		f.next[i] = cp.Next
		f.mu.Unlock()
		if err := writeCheckpoint(f.dir, i, cp, false); err != nil {
			f.r.log.Warn("topic feed checkpoint", "topic", f.key.topic, "partition", i, "err", err)
		}
		if full && !f.sleep(pause) {
			return
		}
	}
}

// queue is the bound queue, opened; nil if it is gone or cannot open.
func (f *feed) queue() *queue.Queue {
	f.r.mu.RLock()
	v, ok := f.r.vhosts[f.key.vhost]
	var h queue.Handle
	if ok {
		if qe, ok := v.queues[f.key.queue]; ok && qe.def.ID == f.key.queueID {
			h = qe.q
		}
	}
	f.r.mu.RUnlock()
	if l, ok := h.(*lazyQueue); ok {
		h = l.get()
	}
	q, _ := h.(*queue.Queue)
	return q
}

// paused reports whether the bound queue asks its publishers to wait.
func (f *feed) paused() bool {
	if f.key.queue == "" {
		return false
	}
	q := f.queue()
	return q != nil && q.Flow() != nil
}

// resume reads partition i's checkpoint and, for a bound queue, raises it
// past what the queue's log holds from the feed.
func (f *feed) resume(i int32) (checkpoint, error) {
	cp, err := readCheckpoint(f.dir, i)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			f.r.log.Warn("topic feed checkpoint unreadable: scanning the queue from its start", "topic", f.key.topic, "partition", i, "err", err)
		}
		cp = checkpoint{} // a partition added since the feed began: all of it
	}
	if f.key.queue == "" {
		return cp, nil
	}
	q := f.queue()
	if q == nil {
		return cp, fmt.Errorf("queue '%s' is not open", f.key.queue)
	}
	err = q.Scan(cp.QueueEnd, func(_ int64, r storage.Record) bool {
		if p, off, ok := message.TopicSource(r, f.key.topic, f.key.topic); ok && p == i && off >= cp.Next {
			cp.Next = off + 1
		}
		return true
	})
	return cp, err
}

// feedOnce appends what one read of partition p from offset next (below
// end) holds to the destination, waits until it is durable and returns
// the offset to read next.
func (f *feed) feedOnce(p *Partition, i int32, next, end int64, fw *forwardRead) (int64, error) {
	data, err := p.Read(next, feedReadBytes, ReadCommitted)
	if err != nil {
		return next, err
	}
	if len(data) == 0 {
		return next, nil
	}
	aborted := p.AbortedIn(next, data)
	var pend []Pending
	var perr error
	to := next
	var q *queue.Queue
	if f.key.queue != "" {
		if q = f.queue(); q == nil {
			return next, fmt.Errorf("queue '%s' is not open", f.key.queue)
		}
	}
	for len(data) > 0 && perr == nil {
		h, err := storage.ParseBatchHeader(data)
		if err != nil || h.Size() > len(data) {
			break
		}
		batch := data[:h.Size()]
		data = data[h.Size():]
		last := h.LastOffset()
		if last >= end {
			break
		}
		skip := h.Attributes&controlBit != 0
		for _, a := range aborted {
			if a.ProducerID == h.ProducerID && h.BaseOffset >= a.FirstOffset && h.BaseOffset <= a.LastOffset {
				skip = true
			}
		}
		if !skip {
			err := eachRecord(h, batch, func(off, ts int64, rec storage.Record) bool {
				if off < next {
					return true
				}
				m := message.FromFedRecord(f.key.topic, i, off, ts, rec)
				var pd []Pending
				if pd, perr = f.deliver(q, &m, off, fw); perr != nil {
					return false
				}
				pend = append(pend, pd...)
				to = off + 1
				return true
			})
			if err != nil && perr == nil {
				perr = err
			}
		}
		if perr == nil {
			to = last + 1
		}
	}
	for _, a := range pend {
		if err := a.Wait(); err != nil && !errors.Is(err, queue.ErrRejected) {
			return next, err
		}
	}
	if perr != nil {
		if errors.Is(perr, errQueueFull) {
			return to, perr // what went before is durable: keep it
		}
		if to > next {
			return to, nil // what went before is durable: keep it
		}
		return next, perr
	}
	return to, nil
}

// deliver appends m to the feed's destination: q, the bound queue, or
// the forwarding topic's exchange when q is nil.
func (f *feed) deliver(q *queue.Queue, m *message.Message, off int64, fw *forwardRead) ([]Pending, error) {
	if q != nil {
		a, err := q.Publish(m)
		if errors.Is(err, queue.ErrRejected) {
			if q.Config().Overflow == queue.RejectPublish {
				return nil, errQueueFull // wait for room: the topic keeps the record
			}
			return nil, nil // reject-publish-dlx: dead-lettered, durably
		}
		if err != nil {
			return nil, err
		}
		return []Pending{a}, nil
	}
	// A forwarding topic.
	var from []any
	if v, ok := m.Properties.Headers[forwardedHeader].([]any); ok {
		from = v
	}
	for _, t := range from {
		if s, _ := t.(string); s == f.key.topic {
			return nil, nil // came round a loop back to this topic
		}
	}
	m.Properties.Headers[forwardedHeader] = append(slices.Clone(from), f.key.topic)
	m.Exchange = f.key.exchange
	r := f.r
	r.mu.RLock()
	v, err := r.vhostLocked(f.key.vhost)
	var x *exchange
	if err == nil {
		if x = v.exchanges[m.Exchange]; x == nil {
			err = fmt.Errorf("%w: no exchange '%s' in vhost '%s'", ErrNotFound, m.Exchange, f.key.vhost)
		}
	}
	if err != nil || x.delayed != nil || x.def.Internal {
		// A delayed exchange holds the message in its store (no
		// destination queue to look in yet): Publish, at least once.
		r.mu.RUnlock()
		if err != nil {
			return nil, err
		}
		rt, err := r.Publish(f.key.vhost, m)
		if err != nil {
			return nil, err
		}
		var out []Pending
		rt.each(func(a Pending) bool { out = append(out, a); return true })
		return out, nil
	}
	ds := r.routeLocked(v, x, m)
	r.mu.RUnlock()
	kept := ds[:0]
	for _, d := range ds {
		if qd, ok := d.(*queueDestination); ok {
			h := qd.q
			if l, ok := h.(*lazyQueue); ok {
				h = l.get()
			}
			if q, ok := h.(*queue.Queue); ok {
				fw.touched[q.Name()] = q
				if fw.dedupe && off <= fw.holds(q, f.key.exchange, f.key.topic) {
					continue // appended before the crash
				}
			}
		}
		kept = append(kept, d)
	}
	rt, err := r.appendTo(kept, m)
	if err != nil {
		return nil, err
	}
	var out []Pending
	rt.each(func(a Pending) bool { out = append(out, a); return true })
	return out, nil
}

// forwardRead is what a forwarding topic's feed of one partition knows
// across a read: the queues its records reached, and, on the first read
// after a resume, what those queues already hold.
type forwardRead struct {
	part    int32
	dedupe  bool                    // the first read after a resume
	ends    map[string]int64        // the checkpoint's Ends
	seen    map[string]int64        // per queue: the highest offset of the partition it holds (dedupe)
	touched map[string]*queue.Queue // the queues this read reached
}

// holds returns the highest offset of the partition that queue q holds
// from the feed, -1 if none: found by scanning q's log from the end the
// checkpoint has for it (from its start if none), once per resume.
func (fw *forwardRead) holds(q *queue.Queue, exchange, topic string) int64 {
	name := q.Name()
	if n, ok := fw.seen[name]; ok {
		return n
	}
	high := int64(-1)
	q.Scan(fw.ends[name], func(_ int64, r storage.Record) bool {
		if p, off, ok := message.TopicSource(r, exchange, topic); ok && p == fw.part && off > high {
			high = off
		}
		return true
	})
	fw.seen[name] = high
	return high
}

// eachRecord decodes every record of a stored batch (header h),
// decompressing if needed, and calls fn with its offset and timestamp.
func eachRecord(h storage.BatchHeader, batch []byte, fn func(off, ts int64, r storage.Record) bool) error {
	if codec := h.Attributes & batchCodecMask; codec != 0 {
		recs, err := decompress(codec, batch[batchHeaderBytes:], maxDecodedBatchBytes)
		if err != nil {
			return err
		}
		plain := make([]byte, batchHeaderBytes, batchHeaderBytes+len(recs))
		copy(plain, batch[:batchHeaderBytes])
		plain = append(plain, recs...)
		binary.BigEndian.PutUint32(plain[8:], uint32(len(plain)-12))
		binary.BigEndian.PutUint16(plain[21:], uint16(h.Attributes&^batchCodecMask))
		batch = plain
	}
	logAppend := h.Attributes&batchLogAppendBit != 0
	_, err := storage.ReadRecords(batch, func(off, ts int64, r storage.Record) bool {
		if logAppend {
			ts = h.MaxTimestamp
		}
		return fn(off, ts, r)
	})
	return err
}

// checkpoint is a feed's durable position in one partition.
type checkpoint struct {
	Next     int64 `json:"next"`      // the next offset to feed
	QueueEnd int64 `json:"queue_end"` // a bound queue's log end when Next was durable there
	// Ends (a forwarding topic) are, for each queue its records were
	// routed to, by name, that queue's log end at a checkpoint after the
	// appends before it: a later append has an offset at or above it.
	Ends map[string]int64 `json:"ends,omitempty"`
	// TopicID is the id of the topic Next is an offset of: a topic
	// deleted and created anew under its name is fed from its start.
	TopicID string `json:"topic_id,omitempty"`
}

// A checkpoint file is the checkpoint in JSON on one line, then the
// CRC-32C of that line in hex on the next.
func writeCheckpoint(dir string, i int32, cp checkpoint, sync bool) error {
	body, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s\n%08x\n", body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	name := filepath.Join(dir, strconv.Itoa(int(i)))
	tmp := name + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(line)
	if err == nil && sync {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func readCheckpoint(dir string, i int32) (checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(int(i))))
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var cp checkpoint
	if len(lines) != 2 {
		return checkpoint{}, fmt.Errorf("%w: feed checkpoint %q", storage.ErrCorruptBatch, b)
	}
	sum, err := strconv.ParseUint(lines[1], 16, 32)
	if err != nil || uint32(sum) != crc32.Checksum([]byte(lines[0]), crc32.MakeTable(crc32.Castagnoli)) {
		return checkpoint{}, fmt.Errorf("%w: feed checkpoint %q", storage.ErrCorruptBatch, b)
	}
	if err := json.Unmarshal([]byte(lines[0]), &cp); err != nil {
		return checkpoint{}, fmt.Errorf("%w: feed checkpoint: %v", storage.ErrCorruptBatch, err)
	}
	return cp, nil
}

// TopicFeeds reports the feeds that read topic, by destination and
// partition: queues bound to it and the exchange it forwards to.
func (r *Router) TopicFeeds(topic string) []FeedStatus {
	return r.feedStatuses(func(k feedKey) bool { return k.topic == topic })
}
