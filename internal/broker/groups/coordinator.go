package groups

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// Options configures a Coordinator. The zero value is usable.
type Options struct {
	// Now is the clock every deadline is measured with. Default time.Now.
	Now func() time.Time

	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (Kafka's group.min.session.timeout.ms and
	// group.max.session.timeout.ms). Defaults 6s and 30m.
	MinSessionTimeout, MaxSessionTimeout time.Duration

	// InitialRebalanceDelay is how long the first rebalance of an Empty group
	// waits for more members before completing, extended by the same amount
	// (up to the rebalance timeout) while new members keep arriving (Kafka's
	// group.initial.rebalance.delay.ms, whose broker default is 3s).
	// Default 0: the first member's join completes at once, which suits tests
	// and single-consumer groups; set 3s to match Kafka.
	InitialRebalanceDelay time.Duration

	// ConsumerSessionTimeout is how long a consumer-protocol member
	// (KIP-848) stays without a heartbeat before it is removed (Kafka's
	// group.consumer.session.timeout.ms). Default 45s.
	ConsumerSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is the heartbeat interval told to
	// consumer-protocol members (group.consumer.heartbeat.interval.ms).
	// Default 5s.
	ConsumerHeartbeatInterval time.Duration

	// ManualTick disables the background goroutine that calls Tick; the
	// owner (a test) calls Tick itself after moving its clock.
	ManualTick bool

	// TickInterval is how often the background goroutine calls Tick, and so
	// the resolution of session, rebalance and sync timeouts. Default 100ms.
	TickInterval time.Duration
}

const (
	defaultMinSessionTimeout = 6 * time.Second
	defaultMaxSessionTimeout = 30 * time.Minute
	defaultTickInterval      = 100 * time.Millisecond

	defaultConsumerSessionTimeout    = 45 * time.Second
	defaultConsumerHeartbeatInterval = 5 * time.Second
)

// Coordinator runs the classic consumer group protocol for every group on
// this node. All methods are safe for concurrent use.
type Coordinator struct {
	opts Options

	mu     sync.RWMutex // guards groups and closed; see doc.go for lock order
	groups map[string]*group
	closed bool

	done chan struct{} // closed by Close; releases every waiter
	wg   sync.WaitGroup
}

// New returns a running Coordinator. Unless opts.ManualTick is set it starts
// one goroutine that calls Tick every opts.TickInterval; Close stops it.
func New(opts Options) *Coordinator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = defaultMinSessionTimeout
	}
	if opts.MaxSessionTimeout <= 0 {
		opts.MaxSessionTimeout = defaultMaxSessionTimeout
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = defaultTickInterval
	}
	if opts.ConsumerSessionTimeout <= 0 {
		opts.ConsumerSessionTimeout = defaultConsumerSessionTimeout
	}
	if opts.ConsumerHeartbeatInterval <= 0 {
		opts.ConsumerHeartbeatInterval = defaultConsumerHeartbeatInterval
	}
	if opts.InitialRebalanceDelay < 0 {
		opts.InitialRebalanceDelay = 0
	}
	c := &Coordinator{
		opts:   opts,
		groups: make(map[string]*group),
		done:   make(chan struct{}),
	}
	if !opts.ManualTick {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

func (c *Coordinator) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.Tick()
		}
	}
}

// Close stops the coordinator. Every blocked Join and Sync returns
// ErrCoordinatorNotAvailable, as does every later call. Close is idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	c.wg.Wait()
}

// Tick expires sessions, pending members, join phases and sync phases whose
// deadline has passed by Options.Now. The background goroutine calls it;
// with ManualTick the owner does.
func (c *Coordinator) Tick() {
	now := c.opts.Now()
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if g.state != stateDead {
			g.expireLocked(now)
		}
		g.mu.Unlock()
	}
}

// snapshot returns the current groups; nil after Close.
func (c *Coordinator) snapshot() []*group {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil
	}
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	return gs
}

// lockGroup returns the named group with its lock held, creating it (Empty)
// if create is set. It returns nil, nil for an unknown group when create is
// false, and ErrCoordinatorNotAvailable after Close.
func (c *Coordinator) lockGroup(id string, create bool) (*group, error) {
	for {
		c.mu.RLock()
		closed, g := c.closed, c.groups[id]
		c.mu.RUnlock()
		if closed {
			return nil, ErrCoordinatorNotAvailable
		}
		if g == nil {
			if !create {
				return nil, nil
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return nil, ErrCoordinatorNotAvailable
			}
			if g = c.groups[id]; g == nil {
				g = newGroup(id, &c.opts)
				c.groups[id] = g
			}
			c.mu.Unlock()
		}
		g.mu.Lock()
		if g.state != stateDead {
			return g, nil
		}
		// Deleted between the lookup and the lock: look again.
		g.mu.Unlock()
	}
}

// GroupSummary is one row of List.
type GroupSummary struct {
	Group, ProtocolType, State string
	Type                       string // TypeClassic or TypeConsumer
}

// List returns every known group, including Empty ones, sorted by name.
func (c *Coordinator) List() []GroupSummary {
	gs := c.snapshot()
	out := make([]GroupSummary, 0, len(gs))
	for _, g := range gs {
		g.mu.Lock()
		switch {
		case g.state == stateDead:
		case g.consumer != nil:
			out = append(out, GroupSummary{Group: g.id, ProtocolType: "consumer", State: g.consumer.stateName(), Type: TypeConsumer})
		default:
			out = append(out, GroupSummary{Group: g.id, ProtocolType: g.protocolType, State: g.state.String(), Type: TypeClassic})
		}
		g.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// GroupDescription is the answer to DescribeGroups. As in Kafka, Protocol and
// the members' Metadata and Assignment are filled only while the group is
// Stable.
type GroupDescription struct {
	Group, State, ProtocolType, Protocol string
	Type                                 string // TypeClassic or TypeConsumer
	Members                              []Member
}

// Describe reports the named group; false if it is unknown.
func (c *Coordinator) Describe(group string) (GroupDescription, bool) {
	g, err := c.lockGroup(group, false)
	if g == nil || err != nil {
		return GroupDescription{}, false
	}
	defer g.mu.Unlock()
	if cg := g.consumer; cg != nil {
		d := GroupDescription{Group: g.id, State: cg.stateName(), ProtocolType: "consumer", Type: TypeConsumer,
			Protocol: cg.assignorName()}
		for _, id := range slices.Sorted(maps.Keys(cg.members)) {
			m := cg.members[id]
			d.Members = append(d.Members, Member{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID,
				ClientHost: m.clientHost, Topics: cg.topicPartitions(m.assigned)})
		}
		return d, true
	}
	d := GroupDescription{Group: g.id, State: g.state.String(), ProtocolType: g.protocolType, Type: TypeClassic}
	stable := g.state == stateStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembersLocked() {
		dm := Member{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if stable {
			dm.Metadata = m.metadata(g.protocol)
			dm.Assignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d, true
}

// Delete forgets an Empty group. It returns ErrNonEmptyGroup if the group is
// in any other state, and nil if the group is Empty or unknown (the caller
// deletes the group's committed offsets either way and decides itself
// whether an unknown group is GROUP_ID_NOT_FOUND).
func (c *Coordinator) Delete(group string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrCoordinatorNotAvailable
	}
	g := c.groups[group]
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != stateEmpty || (g.consumer != nil && len(g.consumer.members) > 0) {
		return ErrNonEmptyGroup
	}
	g.state = stateDead
	delete(c.groups, group)
	return nil
}

// HasMembers reports whether the group has at least one member.
func (c *Coordinator) HasMembers(group string) bool {
	g, _ := c.lockGroup(group, false)
	if g == nil {
		return false
	}
	defer g.mu.Unlock()
	return len(g.members) > 0 || (g.consumer != nil && len(g.consumer.members) > 0)
}

// EnsureGroup creates the group (Empty, protocol type unknown) if it does
// not exist, so that a group known only by its committed offsets, for
// example after a restart, is listed and described.
func (c *Coordinator) EnsureGroup(group string) {
	if g, _ := c.lockGroup(group, true); g != nil {
		g.mu.Unlock()
	}
}

// newMemberID returns clientID + "-" + a random UUID, as Kafka does.
func newMemberID(clientID string) string {
	var u [16]byte
	rand.Read(u[:]) // never fails (crypto/rand since Go 1.24)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return clientID + "-" + string(b[:])
}
