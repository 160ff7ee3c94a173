package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/offsets"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Options configure a Broker.
type Options struct {
	// DataDir is where partition logs live (DataDir/topics/<topic>-<n>).
	DataDir string
	// Storage is the base for every log's options; segment settings are
	// overridden per topic from its configs.
	Storage storage.Options
	// Defaults fill topic configs a topic does not set.
	Defaults Defaults
	// AutoCreateTopics creates unknown topics on first use.
	AutoCreateTopics bool
	Logger           *slog.Logger
	Now              func() time.Time
	// WrapOffsetsLog, when set (fault-injection builds and tests only),
	// wraps the consumer offsets log's file.
	WrapOffsetsLog func(path string, f offsets.LogFile) offsets.LogFile
	// OffsetsTopicCodec, when set, shows the committed offsets as the
	// read-only internal topic __consumer_offsets in its format
	// (internal_topic.go); unset, there is no such topic.
	OffsetsTopicCodec OffsetsTopicCodec
	// Cleaner tunes the log cleaner of compacted topics (cleaner.go).
	Cleaner CleanerOptions
	// NodeID is this node's id in a cluster; 0 (a single node) holds
	// every partition and follows no one. In a cluster the broker holds
	// the partitions placed on it (partition_elsewhere.go), places the
	// topics it creates, and follows topic changes made through other
	// nodes (follow.go).
	NodeID uint64
	// Replication, in a cluster, replicates the partitions placed on more
	// than one node through Raft groups on its Host (replica.go).
	Replication ReplicationOptions
	// Balance is Kafka's automatic leader balancing (reassign.go),
	// reported by BrokerConfigs in a cluster.
	Balance BalanceOptions
}

// Broker owns every topic's partitions.
type Broker struct {
	opts    Options
	meta    *meta.Store
	offsets *offsets.Store // committed consumer offsets, in DataDir/offsets
	shares  *Shares        // share groups (KIP-932), in DataDir/share-groups
	log     *slog.Logger

	// mu guards the topics, which produce and fetch look up under it. No
	// definition change holds it across the disk: a change reserves its
	// topic's name in changing, writes the logs and the metadata without
	// the lock, and installs the result under it. The changes of one topic
	// are so made one at a time; different topics change side by side.
	mu     sync.RWMutex
	topics map[string]*Topic
	// changing holds the names of topics whose definition is being
	// changed (created, deleted, grown, reconfigured), each closed when
	// its change is answered.
	changing map[string]chan struct{}
	closed   bool

	// watch is told of every topic change while the topic's name is
	// still reserved, and nameFree may refuse a topic's name (the
	// router's super stream views, superstream.go). Set once, before use.
	watch    func(name string)
	nameFree func(name string, partitions int32) error

	txnLocks sync.Map // transactional id → *sync.Mutex (txn.go)
	cleaner  cleaner  // the log cleaner of compacted topics
	// onChange, when set, is called after a topic's definition changes
	// (the Router's syncFeeds, which starts a forwarding topic's feed).
	onChange atomic.Pointer[func(*Topic)]
	// follow, in a cluster, reconciles topics changed through other
	// nodes (follow.go); nil on a single node.
	follow *follower
}

// Topic is a topic's definition plus its open partitions.
type Topic struct {
	meta.Topic
	Partitions []*Partition
	cfg        resolvedConfig
	internal   bool // shown from a store of the broker's: read-only
}

// New opens the logs of every topic recorded in m and the consumer
// offsets store.
func New(opts Options, m *meta.Store) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Cleaner.MapBytes <= 0 {
		opts.Cleaner.MapBytes = defaultCleanerMapBytes
	}
	if opts.Cleaner.BytesPerSecond == 0 {
		opts.Cleaner.BytesPerSecond = defaultCleanerBytesPerSecond
	}
	b := &Broker{opts: opts, meta: m, log: opts.Logger, topics: make(map[string]*Topic), changing: map[string]chan struct{}{}}
	if err := os.MkdirAll(b.topicsDir(), 0o755); err != nil {
		return nil, err
	}
	if opts.NodeID != 0 {
		// Before the topics are read, so that no change falls between.
		b.startFollowing()
	}
	for _, t := range m.Topics() {
		tp, err := b.openTopic(t)
		if err != nil {
			b.Close()
			return nil, err
		}
		b.topics[t.Name] = tp
	}
	if err := b.openOffsets(); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.openShares(); err != nil {
		b.Close()
		return nil, err
	}
	if c := opts.OffsetsTopicCodec; c != nil {
		if _, ok := b.topics[OffsetsTopic]; ok {
			// Created by a client of an older Sluice: it stays a user
			// topic, and the offsets are not shown until it is deleted
			// and the broker restarted.
			b.log.Warn("a user topic holds the internal topic's name: committed offsets are not shown as " + OffsetsTopic)
		} else {
			tp, err := b.newInternalTopic(OffsetsTopic, OffsetsTopicPartitions, &offsetsView{store: b.offsets, codec: c, n: OffsetsTopicPartitions})
			if err != nil {
				b.Close()
				return nil, err
			}
			b.topics[OffsetsTopic] = tp
		}
	}
	if b.follow != nil {
		b.follow.mu.Lock()
		b.follow.started = true
		b.follow.mu.Unlock()
		go b.follow.run(b)
	}
	return b, nil
}

func (b *Broker) topicsDir() string { return filepath.Join(b.opts.DataDir, "topics") }

func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.topicsDir(), topic+"-"+strconv.Itoa(int(p)))
}

func (b *Broker) logOptions(rc resolvedConfig) storage.Options {
	o := b.opts.Storage
	o.SegmentBytes = rc.segmentBytes
	o.SegmentAge = rc.segmentAge
	o.MaxBatchBytes = max(rc.maxMessageBytes, 1<<20)
	// A partition's directory and first segment are made by its first
	// write: creating a topic, or starting with partitions never written,
	// touches no file (its metadata record is what makes it last).
	o.CreateOnAppend = true
	return o
}

// openTopic opens the logs of a defined topic.
func (b *Broker) openTopic(t meta.Topic) (*Topic, error) {
	tp := &Topic{Topic: t, cfg: b.resolve(t.Configs)}
	if err := b.openPartitions(tp, 0, t.Partitions); err != nil {
		for _, p := range tp.Partitions {
			p.log.Close()
		}
		return nil, err
	}
	return tp, nil
}

func (b *Broker) openPartitions(tp *Topic, from, to int32) error {
	for i := from; i < to; i++ {
		l, err := b.openPartitionLog(tp, i)
		if err != nil {
			return fmt.Errorf("open %s-%d: %w", tp.Name, i, err)
		}
		p, err := newPartition(tp.Name, i, l, tp.cfg.maxMessageBytes)
		if err != nil {
			l.Close()
			return fmt.Errorf("producer state %s-%d: %w", tp.Name, i, err)
		}
		p.now = b.opts.Now
		p.configure(tp.cfg)
		if err := startReplica(p, tp.ID); err != nil {
			l.Close()
			return err
		}
		tp.Partitions = append(tp.Partitions, p)
	}
	return nil
}

// ValidTopicName applies Kafka's rules for topic names.
func ValidTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return ErrInvalidTopic
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return ErrInvalidTopic
		}
	}
	return nil
}

// reserve waits until no other definition change of topic name is under
// way and reserves the name for the caller's; release ends it.
func (b *Broker) reserve(name string) (release func(), err error) {
	b.mu.Lock()
	for {
		if b.closed {
			b.mu.Unlock()
			return nil, ErrClosed
		}
		wait, busy := b.changing[name]
		if !busy {
			break
		}
		b.mu.Unlock()
		<-wait
		b.mu.Lock()
	}
	done := make(chan struct{})
	b.changing[name] = done
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.changing, name)
		b.mu.Unlock()
		close(done)
	}, nil
}

// install makes an opened topic visible; on a closed broker it closes
// the topic's logs instead and returns false.
func (b *Broker) install(tp *Topic) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		for _, p := range tp.Partitions {
			p.log.Close()
		}
		return false
	}
	b.topics[tp.Name] = tp
	b.mu.Unlock()
	if f := b.onChange.Load(); f != nil {
		(*f)(tp)
	}
	return true
}

// DeleteTopic removes a topic and its data. The topic is gone for produce
// and fetch from the start; if its deletion cannot be made durable it
// comes back with its data.
func (b *Broker) DeleteTopic(name string) error {
	if err := b.internalTopicErr(name); err != nil {
		return err
	}
	return b.deleteTopic(name)
}

// deleteTopic deletes a topic, internal or not.
func (b *Broker) deleteTopic(name string) error {
	release, err := b.reserve(name)
	if err != nil {
		return err
	}
	defer release()
	b.mu.Lock()
	tp, ok := b.topics[name]
	delete(b.topics, name)
	b.mu.Unlock()
	if !ok {
		return ErrUnknownTopic
	}
	if err := metaErr(b.meta.DeleteTopic(name)); err != nil {
		b.install(tp)
		return err
	}
	b.changed(name)
	for _, p := range tp.Partitions {
		if derr := p.log.Delete(); derr != nil && err == nil {
			err = derr
		}
	}
	// After the topic left b.topics (without b.mu: the offsets writer
	// takes it to check commits), so that no commit to it is written
	// after this record.
	if oerr := offsetsErr(b.offsets.DeleteTopic(name)); oerr != nil && err == nil {
		err = oerr
	}
	b.log.Info("topic deleted", "topic", name)
	return err
}

// CreatePartitions grows a topic to total partitions. As in CreateTopic
// the new logs are laid out before the definition is made durable.
func (b *Broker) CreatePartitions(name string, total int32, validateOnly bool) error {
	return b.CreatePartitionsAt(name, total, nil, validateOnly)
}

// CreatePartitionsAt is CreatePartitions with a client's placement of the
// new partitions (nil: the broker places them), which only a cluster
// accepts (checkAssignment).
func (b *Broker) CreatePartitionsAt(name string, total int32, replicas [][]int32, validateOnly bool) error {
	if err := b.internalTopicErr(name); err != nil {
		return err
	}
	release, err := b.reserve(name)
	if err != nil {
		return err
	}
	defer release()
	tp, ok := b.Topic(name)
	if !ok {
		return ErrUnknownTopic
	}
	if total <= tp.Topic.Partitions || total > 10000 {
		return ErrInvalidPartitions
	}
	if err := b.checkName(name, total); err != nil {
		return err
	}
	from := tp.Topic.Partitions
	if err := b.checkAssignment(replicas, total-from); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	// Copy-on-write: readers holding the old *Topic keep a consistent view.
	grown := &Topic{Topic: tp.Topic, Partitions: append([]*Partition(nil), tp.Partitions...), cfg: tp.cfg}
	grown.Topic.Partitions = total
	var added [][]int32 // the new partitions' placement, if the topic's are placed
	if tp.Replicas != nil {
		added = replicas
		if added == nil {
			added = b.placeReplicas(tp.Replicas, from, total-from, len(tp.Replicas[0]))
		}
		grown.Replicas = append(slices.Clone(tp.Replicas), added...)
	}
	drop := func() {
		for _, p := range grown.Partitions[from:] {
			p.log.Delete()
		}
		for i := from; i < total; i++ {
			if err := removeTree(b.partitionDir(name, i)); err != nil {
				b.log.Warn("removing the files of failed new partitions", "topic", name, "partition", i, "err", err)
			}
		}
	}
	for i := from; i < total; i++ {
		if err := os.RemoveAll(b.partitionDir(name, i)); err != nil {
			return fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
	if err := b.openPartitions(grown, from, total); err != nil {
		drop()
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := b.meta.CreatePartitionsPlaced(name, total, added); err != nil {
		drop()
		return metaErr(err)
	}
	if !b.install(grown) {
		return ErrClosed
	}
	b.changed(name)
	return nil
}

// watchTopics sets the hooks of the router's topic views: changed is
// called after each topic change with the name still reserved, nameFree
// before a topic gets a name or partitions. Called once, before the
// broker serves.
func (b *Broker) watchTopics(changed func(name string), nameFree func(name string, partitions int32) error) {
	b.watch, b.nameFree = changed, nameFree
}

// changed tells the watcher that topic name changed.
func (b *Broker) changed(name string) {
	if b.watch != nil {
		b.watch(name)
	}
}

// checkName asks the watcher whether a topic may take name with
// partitions.
func (b *Broker) checkName(name string, partitions int32) error {
	if b.nameFree != nil {
		return b.nameFree(name, partitions)
	}
	return nil
}

// AlterTopicConfigs sets and removes topic configs (replace: set becomes
// the whole config). Segment settings apply to open logs at once.
func (b *Broker) AlterTopicConfigs(name string, set map[string]string, remove []string, replace, validateOnly bool) error {
	if err := b.internalTopicErr(name); err != nil {
		return err
	}
	for k, v := range set {
		if err := CheckTopicConfig(k, v); err != nil {
			return err
		}
	}
	for _, k := range remove {
		if _, ok := topicConfigIndex[k]; !ok {
			return fmt.Errorf("%w: Unknown topic config name: %s", ErrInvalidConfig, k)
		}
	}
	release, err := b.reserve(name)
	if err != nil {
		return err
	}
	defer release()
	tp, ok := b.Topic(name)
	if !ok {
		return ErrUnknownTopic
	}
	if validateOnly {
		return nil
	}
	if err := b.meta.AlterTopicConfigs(name, set, remove, replace); err != nil {
		return metaErr(err)
	}
	t, _ := b.meta.Topic(name)
	updated := &Topic{Topic: t, Partitions: tp.Partitions, cfg: b.resolve(t.Configs)}
	for _, p := range updated.Partitions {
		p.configure(updated.cfg)
	}
	b.install(updated)
	return nil
}

// TopicConfigs returns every understood config of a topic, resolved.
func (b *Broker) TopicConfigs(name string) ([]ConfigEntry, error) {
	tp, ok := b.Topic(name)
	if !ok {
		return nil, ErrUnknownTopic
	}
	return b.ResolveTopicConfigs(tp.Configs), nil
}

// Topic returns a topic by name.
func (b *Broker) Topic(name string) (*Topic, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.topics[name]
	return t, ok
}

// TopicByID returns a topic by its id.
func (b *Broker) TopicByID(id TopicID) (*Topic, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, t := range b.topics {
		if t.ID == id {
			return t, true
		}
	}
	return nil, false
}

// Topics lists topics sorted by name.
func (b *Broker) Topics() []*Topic {
	b.mu.RLock()
	out := make([]*Topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	b.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AutoCreate reports whether unknown topics are created on use.
func (b *Broker) AutoCreate() bool { return b.opts.AutoCreateTopics }

// TopicOrCreate returns a topic, creating it with defaults when
// auto-creation is on.
func (b *Broker) TopicOrCreate(name string) (*Topic, error) {
	if t, ok := b.Topic(name); ok {
		return t, nil
	}
	if !b.opts.AutoCreateTopics {
		return nil, ErrUnknownTopic
	}
	t, err := b.CreateTopic(name, 0, nil, false)
	if errors.Is(err, ErrTopicExists) {
		if t, ok := b.Topic(name); ok {
			return t, nil
		}
	}
	return t, err
}

// Partition returns one partition.
func (b *Broker) Partition(topic string, p int32) (*Partition, error) {
	t, ok := b.Topic(topic)
	if !ok {
		return nil, ErrUnknownTopic
	}
	if p < 0 || int(p) >= len(t.Partitions) {
		return nil, ErrUnknownPartition
	}
	return t.Partitions[p], nil
}

// EnforceRetention applies every topic's retention once.
func (b *Broker) EnforceRetention() {
	for _, t := range b.Topics() {
		if !t.cfg.deletes {
			continue // compact-only: the cleaner (cleaner.go) keeps the log's size
		}
		for _, p := range t.Partitions {
			n, err := p.log.EnforceRetention(t.cfg.retention, t.cfg.retentionBytes)
			if err != nil {
				b.log.Warn("retention failed", "topic", t.Name, "partition", p.Index, "err", err)
			} else if n > 0 {
				b.log.Info("retention deleted segments", "topic", t.Name, "partition", p.Index, "segments", n)
			}
		}
	}
}

// RunRetention enforces retention every interval until stop is closed,
// and writes the transaction summaries of segments closed meanwhile.
func (b *Broker) RunRetention(interval time.Duration, stop <-chan struct{}) {
	every(interval, stop, func() {
		b.EnforceRetention()
		b.PersistTxnIndexes()
	})
}

// PersistTxnIndexes writes the transaction summary of every closed
// segment of every partition that has none (partition_txn_index.go).
func (b *Broker) PersistTxnIndexes() {
	for _, t := range b.Topics() {
		for _, p := range t.Partitions {
			if err := p.persistTxnIndex(); err != nil && !errors.Is(err, storage.ErrClosed) {
				b.log.Warn("transaction index not written", "topic", t.Name, "partition", p.Index, "err", err)
			}
		}
	}
}

// Close flushes and closes every log.
func (b *Broker) Close() error {
	b.stopFollowing()
	var errs []error
	if b.offsets != nil {
		// First, and without b.mu: the offsets writer checks commits
		// against the topics under it.
		if err := b.offsets.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close consumer offsets: %w", err))
		}
	}
	// The closed segments' transaction summaries, so that the next open
	// does not scan them (partition_txn_index.go); without b.mu.
	b.PersistTxnIndexes()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, t := range b.topics {
		for _, p := range t.Partitions {
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s-%d: %w", t.Name, p.Index, err))
			}
		}
	}
	return errors.Join(errs...)
}
