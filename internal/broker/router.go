package broker

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/broker/route"
	"github.com/sluice-mq/sluice/internal/cluster/rpc"
	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Exchange types.
const (
	ExchangeDirect  = "direct"
	ExchangeFanout  = "fanout"
	ExchangeTopic   = "topic"
	ExchangeHeaders = "headers"
	ExchangeDelayed = "x-delayed-message"
)

// RouterOptions configure a Router.
type RouterOptions struct {
	// DataDir holds queue logs in DataDir/queues/<queue id>.
	DataDir string
	// Storage is the base for every queue log's options.
	Storage storage.Options
	Logger  *slog.Logger
	Now     func() time.Time
	// Topics, when set, are the topics bindings can lead to (an
	// exchange feeding a topic).
	Topics *Broker
	// KafkaVhost is the vhost where topics appear as super streams
	// (superstream.go); "" shows them nowhere.
	KafkaVhost string
	// FlowBacklog and FlowBacklogBytes are the queues' credit-flow
	// bounds (queue.Options): 0 the default, negative off.
	FlowBacklog, FlowBacklogBytes int64
	// Clustered: the metadata is shared with other nodes (a cluster), so
	// at start the router neither deletes the transient exchanges and
	// queues it finds (they may be other nodes' clients') nor fails when
	// another node declared a predeclared exchange first.
	Clustered bool
	// NodeID is this node's id in a cluster (0: a single node): the home
	// recorded in the queues it declares (router_cluster.go).
	NodeID uint64
	// Forward, in a cluster, carries messages routed through this node to
	// queues living on other nodes, and brings theirs to this node's
	// queues (router_forward.go). Nil: such messages are refused.
	Forward *rpc.Mux

	// noWarmUp (tests) leaves the queues loaded lazily unopened until used.
	noWarmUp bool
}

// Router is the messaging core: vhosts, exchanges, bindings and queues,
// and routing a published message to the queues it belongs in. Every
// definition change goes through the metadata store first; the in-memory
// structures mirror it.
//
// A definition change is checked, made durable in the metadata store, and
// only then installed under mu, which publishes take (read) to route: no
// publish waits for a definition's fsync. The changes of one vhost are
// made one at a time under its defs lock (a queue declaration instead
// reserves its name, so declarations run side by side); vhosts are added
// and deleted one at a time under vhostDefs.
//
// Lock order: Router.vhostDefs, then a vhost's defs, then Router.mu, then
// a queue's lock (inside queue methods). Only the first two are ever held
// across an fsync, and no publish or delivery takes them.
type Router struct {
	opts RouterOptions
	meta *meta.Store
	log  *slog.Logger

	vhostDefs sync.Mutex // serializes AddVhost and DeleteVhost
	mu        sync.RWMutex
	vhosts    map[string]*vhost
	closed    bool
	stop      chan struct{}
	wg        sync.WaitGroup
	// nodeInfo answers other nodes' questions (router_nodeinfo.go).
	nodeInfo atomic.Pointer[NodeInfo]
	// leftover are directories of failed declarations the janitor still
	// has to remove (removeLater).
	leftoverMu sync.Mutex
	leftover   []string
	// feeds are the topic feeds: queues bound to topics, forwarding
	// topics (feed.go).
	feeds feedState
	// warm are the queues loaded lazily while NewRouter runs, for its
	// warm-up (router_lazy.go).
	warm []*lazyQueue
	// streamTopics are the stream queues of the Kafka vhost whose topics
	// are being created (superstream.go), under mu.
	streamTopics map[string]bool
	// views names the partition queues shown for each topic in the Kafka
	// vhost (superstream.go), under mu.
	views map[string][]string
	// remoteSt: consuming from queues on other nodes, and other nodes'
	// consuming from ours (router_remote.go).
	remoteSt remoteState
	// quorums are the quorum queues' handles, for quorumWatch
	// (router_quorum.go).
	quorumMu sync.Mutex
	quorums  map[*quorumHandle]bool
}

type vhost struct {
	// defs serializes the vhost's definition changes other than queue
	// declarations: exchanges, bindings, queue deletions. Held across the
	// metadata fsync; the maps below change only with it (queues: or a
	// declaration's reservation) and Router.mu both held.
	defs      sync.Mutex
	name      string
	exchanges map[string]*exchange
	queues    map[string]*queueEntry
	// declaring holds the names of queues being created (DeclareQueue),
	// closed when the declaration is answered.
	declaring map[string]chan struct{}
	// remote are the vhost's queues that live on other nodes of the
	// cluster (router_cluster.go), by name; changed under defs and mu.
	remote map[string]*remoteQueue
	// pols are the vhost's policies (policy.go), replaced under defs and
	// mu both held.
	pols policySet
	// stats are the vhost's message totals (VhostStats).
	stats MessageStats
}

// dest is where a binding leads: a queue, an exchange (whose own
// bindings are followed) or a topic.
type dest struct {
	kind destKind
	name string
}

type destKind uint8

const (
	toQueue destKind = iota
	toExchange
	toTopic
)

func destOf(b meta.Binding) dest {
	switch b.DestinationKind {
	case DestExchange:
		return dest{toExchange, b.Destination}
	case DestTopic:
		return dest{toTopic, b.Destination}
	}
	return dest{toQueue, b.Destination}
}

type exchange struct {
	def      meta.Exchange
	args     fieldtable.Table
	matcher  route.Matcher[dest]
	bindings int
	// sig is the XOR of the bindings' hashes (bindingHash): a cluster's
	// reconciling (router_cluster.go) compares it with the store's.
	sig       uint64
	alternate string // alternate-exchange, "" if none: its argument's, else its policy's
	hasAlt    bool
	applied   appliedPolicy // the policy applied (router_policy.go)
	delayed   delayedStore  // x-delayed-message: messages waiting for x-delay (router_delayed.go)
	stats     exchangeStats
	// superStream names the topic this exchange is the super stream of
	// (superstream.go): publishing appends to it. "" for a defined exchange.
	superStream string
}

type queueEntry struct {
	def     meta.Queue
	args    fieldtable.Table
	qa      queueArgs // from args with the policies applied (router_policy.go)
	applied appliedPolicy
	q       queue.Handle
	dest    Destination // q as a routing destination (setQueue)
	owner   string      // connection owning an exclusive queue
	// consumers ever attached, for auto-delete
	hadConsumer bool
	// view names the topic whose partition viewIndex (viewPart) this
	// stream queue shows (superstream.go); "" for a defined queue.
	view      string
	viewIndex int
	viewPart  *Partition
}

// predeclared are the exchanges every vhost has, as in RabbitMQ.
var predeclared = []meta.Exchange{
	{Name: "", Type: ExchangeDirect, Durable: true},
	{Name: "amq.direct", Type: ExchangeDirect, Durable: true},
	{Name: "amq.fanout", Type: ExchangeFanout, Durable: true},
	{Name: "amq.topic", Type: ExchangeTopic, Durable: true},
	{Name: "amq.headers", Type: ExchangeHeaders, Durable: true},
	{Name: "amq.match", Type: ExchangeHeaders, Durable: true},
}

// NewRouter loads the definitions in m: transient queues and exchanges
// (and exclusive queues) from before a restart are deleted, as RabbitMQ
// does; durable queues are kept with their messages, most opened on first
// use or by a warm-up in the background (router_lazy.go).
func NewRouter(opts RouterOptions, m *meta.Store) (*Router, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Router{opts: opts, meta: m, log: opts.Logger, vhosts: map[string]*vhost{}, stop: make(chan struct{})}
	if err := os.MkdirAll(r.queuesDir(), 0o755); err != nil {
		return nil, err
	}
	for _, v := range m.Vhosts() {
		vh, err := r.loadVhost(v.Name)
		if vh != nil {
			// Under mu: a delayed exchange's store, open already,
			// may release a message due while the broker was down.
			r.mu.Lock()
			r.vhosts[v.Name] = vh
			r.mu.Unlock()
		}
		if err != nil {
			r.Close()
			return nil, err
		}
	}
	if err := r.removeStrayQueueDirs(); err != nil {
		r.log.Warn("cleaning queue directories", "err", err)
	}
	r.wg.Add(3)
	go r.janitor()
	go r.feedLoop()
	if opts.Topics != nil {
		changed := r.feedTopicChanged
		opts.Topics.onChange.Store(&changed)
	}
	r.syncFeeds()
	r.removeStrayFeedDirs()
	if opts.noWarmUp {
		r.warm = nil
	}
	go r.warmUp(r.warm)
	r.warm = nil
	r.startTopicViews()
	if opts.Clustered {
		r.followDefinitions()
	}
	if opts.Forward != nil {
		opts.Forward.Handle(methodPublish, r.servePublish)
		r.serveRemote()
	}
	return r, nil
}

func (r *Router) queuesDir() string { return filepath.Join(r.opts.DataDir, "queues") }

// loadVhost opens vhost name from its definitions, making the
// predeclared exchanges durable if they are not yet. The vhost returned
// (with what opened, also on error, so that Close closes it) is not
// installed yet.
func (r *Router) loadVhost(name string) (*vhost, error) {
	v := &vhost{name: name, exchanges: map[string]*exchange{}, queues: map[string]*queueEntry{}, remote: map[string]*remoteQueue{}}
	v.pols = r.loadPolicies(name)
	for _, e := range predeclared {
		e.Vhost = name
		// Recorded in the metadata too, so that bindings can name them.
		if _, ok := r.meta.Exchange(name, e.Name); !ok {
			if err := r.meta.DeclareExchange(e); err != nil && !(r.opts.Clustered && errors.Is(err, meta.ErrExchangeExists)) {
				return v, err
			}
		}
		x, err := newExchange(e)
		if err != nil {
			return v, err
		}
		v.exchanges[e.Name] = x
	}
	for _, e := range r.meta.Exchanges(name) {
		if !e.Durable && !r.opts.Clustered {
			if err := r.meta.DeleteExchange(name, e.Name); err != nil {
				return v, err
			}
			continue
		}
		x, err := r.openExchange(e)
		var bad errBadExchange
		if errors.As(err, &bad) {
			r.log.Warn("exchange not loaded", "vhost", name, "exchange", e.Name, "err", err)
			continue
		}
		if err != nil {
			return v, err
		}
		v.exchanges[e.Name] = x
		r.applyExchangePolicyLocked(v, x)
	}
	var durable, topicStreams []meta.Queue
	for _, q := range r.meta.Queues(name) {
		if q.Topic != "" {
			topicStreams = append(topicStreams, q)
			continue
		}
		if r.livesElsewhere(q) {
			v.remote[q.Name] = r.newRemoteQueue(q)
			continue
		}
		if (!q.Durable || q.Exclusive) && r.opts.Clustered && q.Node == 0 {
			continue // another node's, perhaps: not opened here
		}
		if !q.Durable || q.Exclusive {
			if err := r.meta.DeleteQueue(name, q.Name); err != nil {
				return v, err
			}
			os.RemoveAll(r.queueDir(q.ID))
			continue
		}
		durable = append(durable, q)
	}
	lazy, err := r.openQueues(v, durable)
	r.warm = append(r.warm, lazy...)
	if err != nil {
		return v, err
	}
	if err := r.loadTopicStreams(v, topicStreams); err != nil {
		return v, err
	}
	for _, b := range r.meta.Bindings(name) {
		r.addBindingLocked(v, b)
	}
	return v, nil
}

// removeStrayQueueDirs deletes queue directories no definition names (a
// queue deleted just before a crash).
func (r *Router) removeStrayQueueDirs() error {
	ents, err := os.ReadDir(r.queuesDir())
	if err != nil {
		return err
	}
	known := map[string]bool{}
	r.mu.RLock()
	for _, v := range r.vhosts {
		for _, q := range v.queues {
			known[q.def.ID] = true
		}
	}
	r.mu.RUnlock()
	for _, e := range ents {
		if !known[e.Name()] {
			os.RemoveAll(filepath.Join(r.queuesDir(), e.Name()))
		}
	}
	return nil
}

func (r *Router) queueDir(id string) string { return filepath.Join(r.queuesDir(), id) }

func decodeArgs(b []byte) (fieldtable.Table, error) {
	if len(b) == 0 {
		return fieldtable.Table{}, nil
	}
	t, _, err := fieldtable.Read(b)
	return t, err
}

func encodeArgs(t fieldtable.Table) ([]byte, error) {
	if len(t) == 0 {
		return nil, nil
	}
	return fieldtable.Append(nil, t)
}

// errBadExchange is a stored exchange definition that cannot be loaded
// (an unknown type, unreadable arguments): skipped with a warning.
type errBadExchange struct{ error }

// openExchange makes exchange e from its definition and opens its
// delayed-message store if it has one.
func (r *Router) openExchange(e meta.Exchange) (*exchange, error) {
	x, err := newExchange(e)
	if err != nil {
		return nil, errBadExchange{err}
	}
	if err := r.openDelayed(x); err != nil {
		return nil, fmt.Errorf("open delayed exchange %q: %w", e.Name, err)
	}
	return x, nil
}

func newExchange(e meta.Exchange) (*exchange, error) {
	args, err := decodeArgs(e.Arguments)
	if err != nil {
		return nil, err
	}
	typ := e.Type
	if typ == ExchangeDelayed {
		t, _ := stringArg(args["x-delayed-type"])
		typ = t
	}
	m, ok := route.New[dest](typ)
	if !ok {
		return nil, fmt.Errorf("%w: unknown exchange type '%s'", ErrCommandInvalid, e.Type)
	}
	x := &exchange{def: e, args: args, matcher: m}
	if alt, ok := stringArg(args["alternate-exchange"]); ok {
		x.alternate, x.hasAlt = alt, true
	}
	return x, nil
}

// queueOpeners is how many queues are opened at once (streams and queues
// with x-expires at start, the queues a listing needs): opening is mostly
// waiting for the disk (reading ack records, checking logs' tails), so
// more than the cores.
const queueOpeners = 16

// openQueues installs the durable queues of v being loaded in v.queues (v
// is not yet shared): classic and priority queues without x-expires as
// lazyQueues (router_lazy.go), returned for the warm-up to open; the
// others opened now, side by side. On an error the queues installed stay
// in v.queues, for v.close.
func (r *Router) openQueues(v *vhost, defs []meta.Queue) ([]*lazyQueue, error) {
	var lazy []*lazyQueue
	var eager []int
	qes := make([]*queueEntry, len(defs))
	opens := make([]func(queue.Config) (queue.Handle, error), len(defs))
	errs := make([]error, len(defs))
	now := r.opts.Now()
	for i, def := range defs {
		qes[i], opens[i], errs[i] = r.newQueueEntry(v, def, v.pols)
		switch qe := qes[i]; {
		case errs[i] != nil:
		case qe.qa.queueType == QueueTypeStream || qe.qa.expires >= 0 || def.Quorum:
			eager = append(eager, i)
		default:
			l := newLazyQueue(def.Name, r.queueDir(def.ID), qe.qa.cfg, now, opens[i])
			qe.setQueue(l)
			lazy = append(lazy, l)
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(queueOpeners, len(eager)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var q queue.Handle
				if q, errs[i] = opens[i](qes[i].qa.cfg); errs[i] == nil {
					qes[i].setQueue(q)
				}
			}
		}()
	}
	for _, i := range eager {
		next <- i
	}
	close(next)
	wg.Wait()
	var first error
	for i, qe := range qes {
		if errs[i] != nil {
			if first == nil {
				first = fmt.Errorf("open queue %q: %w", defs[i].Name, errs[i])
			}
			continue
		}
		v.queues[defs[i].Name] = qe
	}
	return lazy, first
}

// openQueue opens a queue with the policies pols applied to it.
func (r *Router) openQueue(v *vhost, def meta.Queue, pols policySet) (*queueEntry, error) {
	qe, open, err := r.newQueueEntry(v, def, pols)
	if err != nil {
		return nil, err
	}
	q, err := open(qe.qa.cfg)
	if err != nil {
		return nil, err
	}
	qe.setQueue(q)
	return qe, nil
}

// newQueueEntry makes the entry of a queue with the policies pols
// applied to it, without its queue, and the function that opens the
// queue with a configuration (qe.qa.cfg, or what a policy set since).
func (r *Router) newQueueEntry(v *vhost, def meta.Queue, pols policySet) (*queueEntry, func(queue.Config) (queue.Handle, error), error) {
	args, err := decodeArgs(def.Arguments)
	if err != nil {
		return nil, nil, err
	}
	qa, err := parseQueueArgs(args, def.Durable, def.Exclusive, def.AutoDelete)
	if err != nil {
		return nil, nil, err
	}
	qe := &queueEntry{def: def, args: args, qa: qa}
	qe.qa, qe.applied = r.queuePolicy(v.name, qe, pols)
	qa = qe.qa
	vname, qname := v.name, def.Name
	open := func(cfg queue.Config) (queue.Handle, error) {
		if def.Quorum {
			return r.openQuorum(def, cfg), nil
		}
		if qa.queueType == QueueTypeStream {
			return queue.OpenStream(queue.StreamOptions{
				Name: qname, Dir: r.queueDir(def.ID), Storage: r.opts.Storage, Config: qa.stream,
				Now: r.opts.Now, Logger: r.log.With("vhost", vname),
			})
		}
		so := r.opts.Storage
		so.SegmentBytes = queueSegmentBytes
		so.SegmentAge = time.Hour
		qo := queue.Options{
			Name: qname, Dir: r.queueDir(def.ID), Storage: so, Config: cfg, Now: r.opts.Now,
			Logger:      r.log.With("vhost", vname),
			FlowBacklog: r.opts.FlowBacklog, FlowBacklogBytes: r.opts.FlowBacklogBytes,
			DeadLetter: func(q *queue.Queue, dead []queue.Dead) error {
				return r.deadLetter(vname, qname, q.Config(), dead)
			},
		}
		if qa.maxPrio > 0 {
			return queue.OpenPriority(qo, qa.maxPrio)
		}
		return queue.Open(qo)
	}
	return qe, open, nil
}

// queueSegmentBytes is the segment size of queue logs: small enough that
// acked messages give their space back soon.
const queueSegmentBytes = 64 << 20

// Vhost reports whether vhost exists.
func (r *Router) VhostExists(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.vhosts[name]
	return ok
}

// AddVhost creates a vhost (with its predeclared exchanges).
func (r *Router) AddVhost(name string) error {
	r.vhostDefs.Lock()
	defer r.vhostDefs.Unlock()
	r.mu.RLock()
	_, exists := r.vhosts[name]
	closed := r.closed
	r.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case exists:
		return nil
	}
	if err := r.meta.PutVhost(meta.Vhost{Name: name}); err != nil {
		return err
	}
	return r.installVhost(name)
}

// installVhost loads vhost name from the store and installs it; r.vhostDefs
// is held. A router closed meanwhile is ErrClosed.
func (r *Router) installVhost(name string) error {
	v, err := r.loadVhost(name)
	r.mu.Lock()
	if !r.closed {
		r.vhosts[name] = v
		v = nil
	}
	r.mu.Unlock()
	if v != nil {
		v.close()
		return ErrClosed
	}
	if err == nil {
		r.syncTopicViews(name)
	}
	return err
}

// DeleteVhost deletes a vhost with everything in it.
func (r *Router) DeleteVhost(name string) error {
	r.vhostDefs.Lock()
	defer r.vhostDefs.Unlock()
	v, err := r.lockDefs(name)
	if err != nil {
		return fmt.Errorf("%w: no vhost '%s'", ErrNotFound, name)
	}
	defer v.defs.Unlock()
	if err := r.meta.DeleteVhost(name); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.vhosts, name)
	r.mu.Unlock()
	for _, q := range v.queues {
		q.q.Delete()
	}
	for _, x := range v.exchanges {
		if x.delayed != nil {
			x.delayed.Delete()
		}
	}
	return nil
}

func (r *Router) vhostLocked(name string) (*vhost, error) {
	v, ok := r.vhosts[name]
	if !ok || r.closed {
		return nil, fmt.Errorf("%w: no vhost '%s'", ErrNotAllowed, name)
	}
	return v, nil
}

// lockDefs returns vhost name with its defs lock held, for a definition
// change: the caller unlocks v.defs.
func (r *Router) lockDefs(name string) (*vhost, error) {
	r.mu.RLock()
	v, err := r.vhostLocked(name)
	r.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	v.defs.Lock()
	r.mu.RLock()
	now, err := r.vhostLocked(name)
	r.mu.RUnlock()
	if err == nil && now != v { // deleted (and maybe added anew) meanwhile
		err = fmt.Errorf("%w: no vhost '%s'", ErrNotAllowed, name)
	}
	if err != nil {
		v.defs.Unlock()
		return nil, err
	}
	return v, nil
}

// close closes a vhost that was never installed.
func (v *vhost) close() {
	for _, qe := range v.queues {
		qe.q.Close()
	}
	for _, x := range v.exchanges {
		if x.delayed != nil {
			x.delayed.Close()
		}
	}
}

// ExchangeDecl is an exchange.declare.
type ExchangeDecl struct {
	Name, Type           string
	Passive, Durable     bool
	AutoDelete, Internal bool
	Arguments            fieldtable.Table
}

// DeclareExchange creates an exchange, or checks that an existing one is
// equivalent (PRECONDITION_FAILED if not). Passive only checks it exists.
func (r *Router) DeclareExchange(vh string, d ExchangeDecl) error {
	if d.Passive {
		r.mu.RLock()
		defer r.mu.RUnlock()
		v, err := r.vhostLocked(vh)
		if err != nil {
			return err
		}
		if _, exists := v.exchanges[d.Name]; !exists {
			return fmt.Errorf("%w: no exchange '%s' in vhost '%s'", ErrNotFound, d.Name, vh)
		}
		return nil
	}
	v, err := r.lockDefs(vh)
	if err != nil {
		return err
	}
	defer v.defs.Unlock()
	x, exists := v.exchanges[d.Name] // v.exchanges changes only under v.defs
	if d.Name == "" || (strings.HasPrefix(d.Name, "amq.") && !exists) {
		return fmt.Errorf("%w: exchange name '%s' contains reserved prefix 'amq.*'", ErrAccessRefused, d.Name)
	}
	if exists {
		if x.def.Type != d.Type || x.def.Durable != d.Durable || x.def.AutoDelete != d.AutoDelete || x.def.Internal != d.Internal {
			return fmt.Errorf("%w: inequivalent arg for exchange '%s' in vhost '%s'", ErrPreconditionFailed, d.Name, vh)
		}
		if k, ok := argsEquivalent(x.args, d.Arguments, []string{"alternate-exchange", "x-delayed-type"}); !ok {
			return fmt.Errorf("%w: inequivalent arg '%s' for exchange '%s' in vhost '%s'", ErrPreconditionFailed, k, d.Name, vh)
		}
		return nil
	}
	if d.Type == ExchangeDelayed {
		if t, ok := stringArg(d.Arguments["x-delayed-type"]); !ok || !slices.Contains([]string{ExchangeDirect, ExchangeFanout, ExchangeTopic, ExchangeHeaders}, t) {
			return fmt.Errorf("%w: Invalid argument, 'x-delayed-type' must be an existing exchange type", ErrPreconditionFailed)
		}
	}
	args, err := encodeArgs(d.Arguments)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
	}
	def := meta.Exchange{Vhost: vh, Name: d.Name, Type: d.Type, Durable: d.Durable, AutoDelete: d.AutoDelete, Internal: d.Internal, Arguments: args}
	nx, err := newExchange(def)
	if err != nil {
		return err
	}
	if d.Type == ExchangeDelayed && r.clustered() {
		if err := r.createDelayedTopic(vh, d.Name); err != nil {
			return fmt.Errorf("%w: the delayed exchange's replicated log: %w", ErrStorage, err)
		}
	}
	if err := r.meta.DeclareExchange(def); err != nil {
		return err
	}
	if err := r.openDelayed(nx); err != nil {
		r.meta.DeleteExchange(vh, d.Name)
		return err
	}
	r.mu.Lock()
	v.exchanges[d.Name] = nx
	r.applyExchangePolicyLocked(v, nx)
	r.mu.Unlock()
	return nil
}

// DeleteExchange deletes an exchange and its bindings. With ifUnused it
// refuses (PRECONDITION_FAILED) when the exchange has bindings.
func (r *Router) DeleteExchange(vh, name string, ifUnused bool) error {
	v, err := r.lockDefs(vh)
	if err != nil {
		return err
	}
	defer v.defs.Unlock()
	x, ok := v.exchanges[name]
	if !ok {
		return fmt.Errorf("%w: no exchange '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	if x.superStream != "" {
		return viewRefusal("exchange", name, vh)
	}
	if name == "" || strings.HasPrefix(name, "amq.") {
		return fmt.Errorf("%w: cannot delete predeclared exchange '%s' in vhost '%s'", ErrAccessRefused, name, vh)
	}
	if ifUnused && (x.bindings > 0 || r.isDestination(v, name)) {
		return fmt.Errorf("%w: exchange '%s' in vhost '%s' in use", ErrPreconditionFailed, name, vh)
	}
	return r.deleteExchange(v, name)
}

func (r *Router) isDestination(v *vhost, name string) bool {
	for _, b := range r.meta.Bindings(v.name) {
		if b.DestinationKind == "exchange" && b.Destination == name {
			return true
		}
	}
	return false
}

// deleteExchange deletes exchange name of v, whose defs lock is held.
func (r *Router) deleteExchange(v *vhost, name string) error {
	bs := r.meta.Bindings(v.name)
	if err := r.meta.DeleteExchange(v.name, name); err != nil {
		return err
	}
	r.mu.Lock()
	x := v.exchanges[name]
	delete(v.exchanges, name)
	for _, b := range bs {
		if b.DestinationKind == "exchange" && b.Destination == name && b.Source != name {
			r.removeBindingLocked(v, b)
		}
	}
	r.mu.Unlock()
	if x != nil && x.delayed != nil {
		go x.delayed.Delete()
	}
	return nil
}

// QueueDecl is a queue.declare. Owner identifies the declaring connection
// (for exclusive queues).
type QueueDecl struct {
	Name                  string
	Passive, Durable      bool
	Exclusive, AutoDelete bool
	Arguments             fieldtable.Table
	Owner                 string
}

// QueueInfo is what queue.declare-ok reports.
type QueueInfo struct {
	Name      string
	Messages  int64 // ready
	Consumers int
}

// DeclareQueue creates a queue (server-named when Name is empty), or
// checks an existing one: exclusive to another connection is
// RESOURCE_LOCKED, inequivalent is PRECONDITION_FAILED.
func (r *Router) DeclareQueue(vh string, d QueueDecl) (QueueInfo, error) {
	maxQueues, limited := r.meta.Limit(LimitVhost, vh, "max-queues") // limits.go
	r.mu.Lock()
	v, err := r.vhostLocked(vh)
	if err != nil {
		r.mu.Unlock()
		return QueueInfo{}, err
	}
	if d.Name == "" && !d.Passive {
		d.Name = "amq.gen-" + randomName()
	} else if strings.HasPrefix(d.Name, "amq.") && v.queues[d.Name] == nil && !d.Passive {
		r.mu.Unlock()
		return QueueInfo{}, fmt.Errorf("%w: queue name '%s' contains reserved prefix 'amq.*'", ErrAccessRefused, d.Name)
	}
	if wait, ok := v.declaring[d.Name]; ok {
		// Another declaration of this name is on its way to the disk:
		// answer from what it made.
		r.mu.Unlock()
		<-wait
		return r.DeclareQueue(vh, d)
	}
	if qe, ok := v.queues[d.Name]; ok {
		if l, ok := qe.q.(*lazyQueue); ok && !l.settled() {
			// Its counts come from its storage: open it without the lock.
			r.mu.Unlock()
			l.get()
			return r.DeclareQueue(vh, d)
		}
		defer r.mu.Unlock()
		if qe.def.Exclusive && qe.owner != d.Owner {
			return QueueInfo{}, fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, d.Name, vh)
		}
		if !d.Passive {
			if qe.def.Durable != d.Durable || qe.def.Exclusive != d.Exclusive || qe.def.AutoDelete != d.AutoDelete {
				return QueueInfo{}, fmt.Errorf("%w: inequivalent arg 'durable' for queue '%s' in vhost '%s'", ErrPreconditionFailed, d.Name, vh)
			}
			if k, ok := argsEquivalent(qe.args, d.Arguments, equivalenceKeys(qe.qa.queueType)); !ok {
				return QueueInfo{}, fmt.Errorf("%w: inequivalent arg '%s' for queue '%s' in vhost '%s'", ErrPreconditionFailed, k, d.Name, vh)
			}
		}
		qe.q.Touch()
		ready, _, consumers := qe.q.Counts()
		return QueueInfo{Name: d.Name, Messages: ready, Consumers: consumers}, nil
	}
	if q, ok := remoteQueueLocked(v, d.Name); ok {
		r.mu.Unlock()
		return r.declareRemote(q, d)
	}
	if d.Passive {
		r.mu.Unlock()
		return QueueInfo{}, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, d.Name, vh)
	}
	if len(d.Name) > 255 {
		r.mu.Unlock()
		return QueueInfo{}, fmt.Errorf("%w: queue name too long", ErrPreconditionFailed)
	}
	if limited && int64(len(v.queues)+len(v.declaring)) >= maxQueues {
		r.mu.Unlock()
		return QueueInfo{}, queueLimitError(d.Name, vh, maxQueues)
	}
	qa, err := parseQueueArgs(d.Arguments, d.Durable, d.Exclusive, d.AutoDelete)
	if err != nil {
		r.mu.Unlock()
		return QueueInfo{}, err
	}
	args, err := encodeArgs(d.Arguments)
	if err != nil {
		r.mu.Unlock()
		return QueueInfo{}, fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
	}
	// The name is reserved while the queue is created without the lock,
	// so that publishes, which route under it, never wait for the disk.
	done := make(chan struct{})
	if v.declaring == nil {
		v.declaring = map[string]chan struct{}{}
	}
	v.declaring[d.Name] = done
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(v.declaring, d.Name)
		r.mu.Unlock()
		close(done)
	}()
	if qa.queueType == QueueTypeStream && r.topicStreamsIn(v) {
		return r.createTopicStream(v, d, qa, args)
	}
	if qa.queueType == QueueTypeStream && r.opts.Clustered && r.opts.Topics != nil {
		return r.createReplicatedStream(v, d, qa, args)
	}
	return r.createQueue(v, d, args)
}

// createQueue makes a new queue, its name reserved in v.declaring, and
// installs it. No router lock is held while the disk is written. The
// queue's storage is laid out first and the declaration made durable
// last, so that a declaration answered with an error (a full disk at
// either step) leaves nothing behind: a directory without a definition is
// removed now, or at the next start if the broker dies first
// (removeStrayQueueDirs).
func (r *Router) createQueue(v *vhost, d QueueDecl, args []byte) (QueueInfo, error) {
	def := meta.Queue{ID: meta.NewQueueID(), Vhost: v.name, Name: d.Name, Durable: d.Durable, Exclusive: d.Exclusive, AutoDelete: d.AutoDelete, Arguments: args}
	if r.opts.Clustered {
		def.Node = r.opts.NodeID
		if t, _ := stringArg(d.Arguments["x-queue-type"]); t == QueueTypeQuorum {
			if members := r.quorumPlacement(d.Arguments); len(members) > 0 {
				return r.createQuorumQueue(v, d, args, members)
			}
			r.log.Warn("quorum queue declared before this node is registered in the cluster: it is a classic queue on this node (docs/clustering.md, Quorum queues)",
				"vhost", v.name, "queue", d.Name)
		}
	}
	r.mu.RLock()
	pols := v.pols
	r.mu.RUnlock()
	qe, err := r.openQueue(v, def, pols)
	if err != nil {
		// One descriptor at a time: the open may have failed for want of
		// descriptors. What cannot be removed now (not even one
		// descriptor free) is retried by the janitor, and goes at the
		// next start if the broker stops first.
		if rerr := removeTree(r.queueDir(def.ID)); rerr != nil {
			r.log.Warn("removing the files of a failed queue declaration; retrying", "vhost", v.name, "queue", d.Name, "err", rerr)
			r.removeLater(r.queueDir(def.ID))
		}
		return QueueInfo{}, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if def, err = r.meta.DeclareQueue(def); err != nil {
		qe.q.Delete()
		return QueueInfo{}, err
	}
	qe.def = def
	qe.owner = d.Owner
	r.mu.Lock()
	switch {
	case r.closed: // defined: it opens again at the next start
		r.mu.Unlock()
		qe.q.Close()
		return QueueInfo{}, ErrClosed
	case r.vhosts[v.name] != v: // the vhost was deleted meanwhile, and its queues
		r.mu.Unlock()
		qe.q.Delete()
		return QueueInfo{}, fmt.Errorf("%w: no vhost '%s'", ErrNotFound, v.name)
	}
	v.queues[d.Name] = qe
	r.applyQueuePolicyLocked(v, qe, true) // opened with the policies of before
	r.mu.Unlock()
	// Every queue is bound to the default exchange by its name.
	return QueueInfo{Name: d.Name}, nil
}

// DeleteQueue deletes a queue and returns how many ready messages it held.
func (r *Router) DeleteQueue(vh, name, owner string, ifUnused, ifEmpty bool) (int64, error) {
	v, err := r.lockDefs(vh)
	if err != nil {
		return 0, err
	}
	defer v.defs.Unlock()
	r.mu.RLock()
	qe, ok := v.queues[name]
	var q queue.Handle
	if ok {
		q = qe.q // swapped by RecoverQueue under mu
	}
	rq, remote := remoteQueueLocked(v, name)
	r.mu.RUnlock()
	if !ok && remote {
		// Deleted through its definition; its node deletes it. Whether
		// it is unused or empty its node says (as for a local queue,
		// a consumer or message may arrive after the check).
		if rq.Exclusive && owner != "" {
			return 0, fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, name, vh)
		}
		var ready int64
		if r.opts.Forward != nil {
			var unacked int64
			var consumers int
			var err error
			if ready, unacked, consumers, err = r.remoteHandle(rq).counts(); err != nil && (ifUnused || ifEmpty) {
				return 0, err
			}
			if ifUnused && consumers > 0 {
				return 0, fmt.Errorf("%w: queue '%s' in vhost '%s' in use", ErrPreconditionFailed, name, vh)
			}
			if ifEmpty && ready+unacked > 0 {
				return 0, fmt.Errorf("%w: queue '%s' in vhost '%s' not empty", ErrPreconditionFailed, name, vh)
			}
		} else if ifUnused || ifEmpty {
			return 0, r.remoteQueueError(rq)
		}
		return ready, r.deleteRemoteQueue(v, rq)
	}
	if !ok {
		return 0, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	if qe.def.Exclusive && qe.owner != owner {
		return 0, fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, name, vh)
	}
	if qe.isTopicStream() {
		v.defs.Unlock() // the topic's deletion takes it, to delete the queue
		defer v.defs.Lock()
		return r.deleteTopicStream(vh, name, qe)
	}
	if qe.view != "" {
		return 0, viewRefusal("queue", name, vh)
	}
	ready, unacked, consumers := q.Counts()
	if qe.qa.queueType == QueueTypeStream {
		ifUnused, ifEmpty = false, false // RabbitMQ ignores both for streams
	}
	if ifUnused && consumers > 0 {
		return 0, fmt.Errorf("%w: queue '%s' in vhost '%s' in use", ErrPreconditionFailed, name, vh)
	}
	if ifEmpty && ready+unacked > 0 {
		return 0, fmt.Errorf("%w: queue '%s' in vhost '%s' not empty", ErrPreconditionFailed, name, vh)
	}
	return ready, r.deleteQueue(v, qe)
}

// deleteQueue deletes queue qe of v, whose defs lock is held. Only
// declarations add to v.queues without that lock, so qe is still v's.
// Publishes keep routing to the queue until its definition is durably
// gone.
func (r *Router) deleteQueue(v *vhost, qe *queueEntry) error {
	bs := r.meta.Bindings(v.name)
	if err := r.meta.DeleteQueue(v.name, qe.def.Name); err != nil {
		return err
	}
	r.mu.Lock()
	delete(v.queues, qe.def.Name)
	for _, b := range bs {
		if b.DestinationKind == "queue" && b.Destination == qe.def.Name {
			r.removeBindingLocked(v, b)
		}
	}
	q := qe.q
	r.mu.Unlock()
	go q.Delete()
	go r.syncFeeds() // stops the feeds of a queue bound to topics
	if qe.def.Quorum {
		go r.deleteQuorumTopic(qe.def)
	}
	return nil
}

// PurgeQueue removes a queue's ready messages and returns how many.
func (r *Router) PurgeQueue(vh, name, owner string) (int64, error) {
	if def, ok := r.reachableRemote(vh, name); ok {
		return r.remoteHandle(def).purge()
	}
	qe, err := r.queueEntry(vh, name, owner)
	if err != nil {
		return 0, err
	}
	if qe.qa.queueType == QueueTypeStream {
		return 0, fmt.Errorf("%w: queue.purge not supported by stream queues queue '%s' in vhost '%s'", ErrNotImplemented, name, vh)
	}
	return qe.q.Purge(), nil
}

func (r *Router) queueEntry(vh, name, owner string) (*queueEntry, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, err := r.vhostLocked(vh)
	if err != nil {
		return nil, err
	}
	qe, ok := v.queues[name]
	if !ok {
		if q, ok := remoteQueueLocked(v, name); ok {
			return nil, r.remoteQueueError(q)
		}
		return nil, fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, name, vh)
	}
	if qe.def.Exclusive && qe.owner != owner {
		return nil, fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, name, vh)
	}
	return qe, nil
}

// Queue returns a queue for consuming or getting, checking exclusivity.
// A queue on another node comes as a handle to it (router_remote.go).
func (r *Router) Queue(vh, name, owner string) (queue.Handle, error) {
	if def, ok := r.reachableRemote(vh, name); ok {
		return r.remoteHandle(def), nil
	}
	qe, err := r.queueEntry(vh, name, owner)
	if err != nil {
		return nil, err
	}
	return qe.q, nil
}

// QueueType reports a queue's x-queue-type.
func (r *Router) QueueType(vh, name string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if v, ok := r.vhosts[vh]; ok {
		if qe, ok := v.queues[name]; ok {
			return qe.qa.queueType
		}
	}
	return ""
}

// ConsumerGone tells the router a consumer left queue name; an auto-delete
// queue whose last consumer left is deleted.
func (r *Router) ConsumerGone(vh, name string) {
	v, err := r.lockDefs(vh)
	if err != nil {
		return
	}
	defer v.defs.Unlock()
	r.mu.RLock()
	qe, ok := v.queues[name]
	gone := ok && qe.def.AutoDelete
	if gone {
		_, _, n := qe.q.Counts()
		gone = n == 0
	}
	r.mu.RUnlock()
	if gone {
		r.deleteQueue(v, qe)
	}
}

// ReleaseOwner deletes the exclusive queues of a closed connection.
func (r *Router) ReleaseOwner(owner string) {
	r.mu.RLock()
	var names []string
	for name := range r.vhosts {
		names = append(names, name)
	}
	r.mu.RUnlock()
	for _, name := range names {
		v, err := r.lockDefs(name)
		if err != nil {
			continue
		}
		r.mu.RLock()
		var mine []*queueEntry
		for _, qe := range v.queues {
			if qe.def.Exclusive && qe.owner == owner {
				mine = append(mine, qe)
			}
		}
		r.mu.RUnlock()
		for _, qe := range mine {
			r.deleteQueue(v, qe)
		}
		v.defs.Unlock()
	}
}

// prepareBinding checks binding b of v (whose defs lock is held) for
// Bind or Unbind and encodes its arguments into it.
func (r *Router) prepareBinding(v *vhost, b meta.Binding, args fieldtable.Table, owner string) (meta.Binding, error) {
	r.mu.RLock()
	err := r.checkBindingLocked(v, b, owner)
	r.mu.RUnlock()
	if err != nil {
		return b, err
	}
	if b.Arguments, err = encodeArgs(args); err != nil {
		return b, fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
	}
	return b, nil
}

// Bind adds a binding. The source exchange must exist and not be the
// default exchange; the destination must exist.
func (r *Router) Bind(b meta.Binding, args fieldtable.Table, owner string) error {
	v, err := r.lockDefs(b.Vhost)
	if err != nil {
		return err
	}
	defer v.defs.Unlock()
	b = r.topicBindingFor(b)
	if b, err = r.prepareBinding(v, b, args, owner); err != nil {
		return err
	}
	if b.SourceKind == meta.SourceTopic {
		if err := r.prepareFeed(v, b); err != nil {
			return fmt.Errorf("%w: %v", ErrStorage, err)
		}
	}
	if err := r.meta.Bind(b); err != nil {
		return err
	}
	r.mu.Lock()
	r.addBindingLocked(v, b)
	r.mu.Unlock()
	if b.SourceKind == meta.SourceTopic {
		r.syncFeeds()
	}
	return nil
}

// Unbind removes a binding; a missing binding is not an error.
func (r *Router) Unbind(b meta.Binding, args fieldtable.Table, owner string) error {
	v, err := r.lockDefs(b.Vhost)
	if err != nil {
		return err
	}
	defer v.defs.Unlock()
	b = r.topicBindingFor(b)
	if b, err = r.prepareBinding(v, b, args, owner); err != nil {
		return err
	}
	if err := r.meta.Unbind(b); err != nil {
		return err
	}
	r.mu.Lock()
	r.removeBindingLocked(v, b)
	x := v.exchanges[b.Source]
	r.mu.Unlock()
	if b.SourceKind == meta.SourceTopic {
		r.syncFeeds()
		return nil
	}
	if x != nil && x.def.AutoDelete && x.bindings == 0 {
		r.deleteExchange(v, b.Source)
	}
	return nil
}

func (r *Router) checkBindingLocked(v *vhost, b meta.Binding, owner string) error {
	if b.SourceKind == meta.SourceTopic {
		return r.checkTopicBindingLocked(v, b, owner)
	}
	if b.Source == "" {
		return fmt.Errorf("%w: operation not permitted on the default exchange", ErrAccessRefused)
	}
	if _, ok := v.exchanges[b.Source]; !ok {
		return fmt.Errorf("%w: no exchange '%s' in vhost '%s'", ErrNotFound, b.Source, b.Vhost)
	}
	if err := topicViewBindingErr(v, b); err != nil {
		return err
	}
	switch b.DestinationKind {
	case DestTopic:
		if r.opts.Topics == nil {
			return fmt.Errorf("%w: no topic '%s'", ErrNotFound, b.Destination)
		}
		if _, ok := r.opts.Topics.Topic(b.Destination); !ok {
			return fmt.Errorf("%w: no topic '%s'", ErrNotFound, b.Destination)
		}
		return nil
	case DestExchange:
		if _, ok := v.exchanges[b.Destination]; !ok {
			return fmt.Errorf("%w: no exchange '%s' in vhost '%s'", ErrNotFound, b.Destination, b.Vhost)
		}
		return nil
	}
	qe, ok := v.queues[b.Destination]
	if q, remote := remoteQueueLocked(v, b.Destination); !ok && remote {
		if q.Exclusive {
			return fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, b.Destination, b.Vhost)
		}
		return nil // bound through the store: routes on its node
	}
	if !ok {
		return fmt.Errorf("%w: no queue '%s' in vhost '%s'", ErrNotFound, b.Destination, b.Vhost)
	}
	if qe.def.Exclusive && qe.owner != owner {
		return fmt.Errorf("%w: cannot obtain exclusive access to locked queue '%s' in vhost '%s'", ErrResourceLocked, b.Destination, b.Vhost)
	}
	return nil
}

func (r *Router) addBindingLocked(v *vhost, b meta.Binding) {
	if b.SourceKind == meta.SourceTopic {
		r.addTopicBindingLocked(b)
		return
	}
	x, ok := v.exchanges[b.Source]
	if !ok {
		return
	}
	args, _ := decodeArgs(b.Arguments)
	before := x.matcher.Len()
	x.matcher.Add(b.RoutingKey, map[string]any(args), destOf(b))
	if x.matcher.Len() > before {
		x.bindings++
		x.sig ^= bindingHash(b)
	}
}

func (r *Router) removeBindingLocked(v *vhost, b meta.Binding) {
	if b.SourceKind == meta.SourceTopic {
		r.removeTopicBindingLocked(b)
		return
	}
	x, ok := v.exchanges[b.Source]
	if !ok {
		return
	}
	args, _ := decodeArgs(b.Arguments)
	if x.matcher.Remove(b.RoutingKey, map[string]any(args), destOf(b)) {
		x.bindings--
		x.sig ^= bindingHash(b)
	}
}

// janitor deletes queues unused for longer than their x-expires.
func (r *Router) janitor() {
	defer r.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.expireQueues(r.opts.Now())
		r.removeLeftovers()
	}
}

// removeLater hands the janitor a directory that could not be removed
// (a failed declaration's, named by a queue id never used again).
func (r *Router) removeLater(dir string) {
	r.leftoverMu.Lock()
	r.leftover = append(r.leftover, dir)
	r.leftoverMu.Unlock()
}

// removeLeftovers retries the removals removeLater was given, keeping
// those that fail again.
func (r *Router) removeLeftovers() {
	r.leftoverMu.Lock()
	dirs := r.leftover
	r.leftover = nil
	r.leftoverMu.Unlock()
	var keep []string
	for _, dir := range dirs {
		if err := removeTree(dir); err != nil {
			keep = append(keep, dir)
			continue
		}
		r.log.Info("removed the files of a failed queue declaration", "dir", dir)
	}
	if keep != nil {
		r.leftoverMu.Lock()
		r.leftover = append(r.leftover, keep...)
		r.leftoverMu.Unlock()
	}
}

// expireQueues deletes the queues unused for longer than their x-expires
// at now.
func (r *Router) expireQueues(now time.Time) {
	expired := func(qe *queueEntry) bool {
		if qe.qa.expires < 0 {
			return false
		}
		last, inUse := qe.q.LastUsed()
		return !inUse && now.Sub(last) >= qe.qa.expires
	}
	r.mu.RLock()
	due := map[string][]string{}
	for _, v := range r.vhosts {
		for _, qe := range v.queues {
			if expired(qe) {
				due[v.name] = append(due[v.name], qe.def.Name)
			}
		}
	}
	r.mu.RUnlock()
	for vh, names := range due {
		v, err := r.lockDefs(vh)
		if err != nil {
			continue
		}
		for _, name := range names {
			r.mu.RLock()
			qe, ok := v.queues[name]
			ok = ok && expired(qe) // still: not used or declared anew meanwhile
			r.mu.RUnlock()
			if ok {
				r.log.Info("queue expired", "vhost", v.name, "queue", name)
				r.deleteQueue(v, qe)
			}
		}
		v.defs.Unlock()
	}
}

// Close closes every queue, keeping its data.
func (r *Router) Close() error {
	if r.opts.Forward != nil {
		r.opts.Forward.Handle(methodPublish, nil)
		r.stopRemote()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	vhosts := slices.Collect(maps.Values(r.vhosts))
	r.mu.Unlock()
	r.stopFeeds()
	// Let the definition changes under way finish (no new one starts,
	// lockDefs sees closed), so that what they open is closed below.
	r.vhostDefs.Lock()
	r.vhostDefs.Unlock()
	for _, v := range vhosts {
		v.defs.Lock()
		v.defs.Unlock()
	}
	r.mu.Lock()
	var qs []queue.Handle
	var ds []delayedStore
	for _, v := range r.vhosts {
		for _, qe := range v.queues {
			qs = append(qs, qe.q)
		}
		for _, x := range v.exchanges {
			if x.delayed != nil {
				ds = append(ds, x.delayed)
			}
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
	var errs []error
	for _, d := range ds {
		errs = append(errs, d.Close())
	}
	for _, q := range qs {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// Message is re-exported for front ends.
type Message = message.Message

func randomName() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
