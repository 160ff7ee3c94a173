package groups

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"
)

// State names as reported by List and Describe (Kafka's names).
const (
	StateEmpty               = "Empty"
	StatePreparingRebalance  = "PreparingRebalance"
	StateCompletingRebalance = "CompletingRebalance"
	StateStable              = "Stable"
	StateDead                = "Dead"
)

type state uint8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return StateEmpty
	case statePreparingRebalance:
		return StatePreparingRebalance
	case stateCompletingRebalance:
		return StateCompletingRebalance
	case stateStable:
		return StateStable
	default:
		return StateDead
	}
}

// Protocol is one assignment protocol a member supports, with the member's
// metadata for it (for consumers, the subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// Member describes a group member in a JoinResult (leader only) and in a
// GroupDescription.
type Member struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Metadata                                   []byte // for the group's selected protocol
	Assignment                                 []byte // Describe only
	// Topics is a consumer group member's assignment (Describe only).
	Topics []TopicPartitions
}

type joinWaiter struct{ ch chan JoinResult } // buffered 1; receives exactly one result
type syncWaiter struct{ ch chan SyncResult } // buffered 1; receives exactly one result

type member struct {
	id, instanceID, clientID, clientHost string
	protocolType                         string
	protocols                            []Protocol // in the member's order of preference
	sessionTimeout, rebalanceTimeout     time.Duration
	assignment                           []byte
	seq                                  uint64 // join order, for leader choice and stable listings

	// isNew is set until the member completes its first join phase. A new
	// member that abandons its join is removed at once: nothing depends on it.
	isNew bool
	// deadline is when the session expires. It is not enforced while the
	// member waits in Join or Sync (the connection is alive then; the caller
	// abandons the wait when it is not).
	deadline time.Time
	join     *joinWaiter // non-nil while waiting in Join
	sync     *syncWaiter // non-nil while waiting in Sync
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(protocol string) bool {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return true
		}
	}
	return false
}

func (m *member) matches(protocolType string, ps []Protocol) bool {
	return m.protocolType == protocolType && slices.EqualFunc(m.protocols, ps, func(a, b Protocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

func (m *member) touch(now time.Time) { m.deadline = now.Add(m.sessionTimeout) }

func (m *member) completeJoin(r JoinResult) {
	if m.join != nil {
		m.join.ch <- r
		m.join = nil
	}
}

func (m *member) completeSync(r SyncResult) {
	if m.sync != nil {
		m.sync.ch <- r
		m.sync = nil
	}
}

// group is one consumer group. Every field is guarded by mu.
type group struct {
	mu   sync.Mutex
	opts *Options
	id   string

	state        state
	generation   int32
	protocolType string // kept when the group becomes Empty, as Kafka does
	protocol     string // selected protocol of the current generation
	leader       string

	members map[string]*member
	static  map[string]string    // instance id → member id
	pending map[string]time.Time // member ids handed out with ErrMemberIDRequired → expiry
	seq     uint64

	// PreparingRebalance: the join phase ends at joinDeadline at the latest.
	// During the initial delay of an Empty group it ends only then, and is
	// extended while new members arrive.
	joinDeadline     time.Time
	initialDelay     bool
	initialRemaining time.Duration
	newMemberAdded   bool

	// CompletingRebalance and Stable: members of the generation that have
	// not sent SyncGroup yet; they are removed at syncDeadline.
	pendingSync  map[string]struct{}
	syncDeadline time.Time

	// consumer is set while the group is a consumer group (KIP-848); a
	// group is one or the other, and then its classic fields stay Empty.
	consumer *consumerGroup
}

func newGroup(id string, opts *Options) *group {
	return &group{
		opts:    opts,
		id:      id,
		members: make(map[string]*member),
		static:  make(map[string]string),
		pending: make(map[string]time.Time),
	}
}

func (g *group) sortedMembersLocked() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

// supportsLocked reports whether a member (other than the one with id
// except, which it would replace) with this protocol type and these
// protocols can be in the group: the type must match the group's and one of
// the protocols must be supported by every other member. Kafka counts the
// member's own old protocols too, so a sole member cannot change assignor
// without leaving; excluding it is the one deliberate difference.
func (g *group) supportsLocked(except, protocolType string, ps []Protocol) bool {
	if protocolType == "" || len(ps) == 0 {
		return false
	}
	others := len(g.members)
	if _, ok := g.members[except]; ok {
		others--
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		all := true
		for id, m := range g.members {
			if id != except && !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocolLocked chooses among the protocols every member supports by
// letting each member vote for its most preferred one. Ties go to the
// protocol that got its first vote earliest in join order.
func (g *group) selectProtocolLocked() string {
	ms := g.sortedMembersLocked()
	var order []string
	votes := make(map[string]int)
	for _, m := range ms {
		for _, p := range m.protocols {
			all := true
			for _, o := range ms {
				if !o.supports(p.Name) {
					all = false
					break
				}
			}
			if all {
				if votes[p.Name] == 0 {
					order = append(order, p.Name)
				}
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range order {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

func (g *group) maxRebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *group) memberInfoLocked(m *member) Member {
	return Member{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
		Metadata: m.metadata(g.protocol)}
}

// joinResultLocked is the successful JoinResult of the current generation
// for m; the leader also gets every member's metadata.
func (g *group) joinResultLocked(m *member) JoinResult {
	r := JoinResult{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		LeaderID:     g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		r.Members = g.membersLocked()
	}
	return r
}

func (g *group) membersLocked() []Member {
	ms := g.sortedMembersLocked()
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = g.memberInfoLocked(m)
	}
	return out
}

// addMemberLocked adds a new member; the first member of an empty group sets
// the group's protocol type, the first member without a leader leads.
func (g *group) addMemberLocked(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.seq++
	m.seq = g.seq
	g.members[m.id] = m
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	delete(g.pending, m.id)
}

// removeMemberLocked removes m, answering its waiting Join or Sync with err.
// It does not change the group's state; see removeMemberAndUpdateLocked.
func (g *group) removeMemberLocked(m *member, err error) {
	m.completeJoin(JoinResult{Err: err, MemberID: m.id, Generation: -1})
	m.completeSync(SyncResult{Err: err})
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembersLocked(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMemberAndUpdateLocked removes m and moves the group on: a Stable or
// CompletingRebalance group rebalances, a join phase may now be complete.
func (g *group) removeMemberAndUpdateLocked(m *member, err error, now time.Time) {
	g.removeMemberLocked(m, err)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked(now)
	case statePreparingRebalance:
		g.tryCompleteJoinLocked(now)
	}
}

// maybePrepareRebalanceLocked starts a rebalance unless one is already
// preparing.
func (g *group) maybePrepareRebalanceLocked(now time.Time) {
	if g.state != statePreparingRebalance {
		g.prepareRebalanceLocked(now)
	}
}

// prepareRebalanceLocked enters PreparingRebalance: waiting SyncGroups fail
// with ErrRebalanceInProgress (their assignment is void), and the join phase
// waits up to the members' largest rebalance timeout for everyone to rejoin.
func (g *group) prepareRebalanceLocked(now time.Time) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.completeSync(SyncResult{Err: ErrRebalanceInProgress})
				m.touch(now)
			}
		}
	}
	wasEmpty := g.state == stateEmpty
	g.pendingSync = nil
	g.state = statePreparingRebalance
	rt := g.maxRebalanceTimeoutLocked()
	if d := g.opts.InitialRebalanceDelay; wasEmpty && d > 0 {
		g.initialDelay = true
		g.initialRemaining = max(rt-d, 0)
		g.newMemberAdded = false
		g.joinDeadline = now.Add(d)
		return
	}
	g.initialDelay = false
	g.joinDeadline = now.Add(rt)
	g.tryCompleteJoinLocked(now)
}

// tryCompleteJoinLocked ends the join phase early when every member and
// every pending member has joined (never during the initial delay).
func (g *group) tryCompleteJoinLocked(now time.Time) {
	if g.state != statePreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoinLocked(now)
}

// completeJoinLocked ends the join phase: dynamic members that did not
// rejoin are removed (static ones stay until their session expires, so a
// restarting static member keeps its assignment), the next generation
// starts, and every waiting Join is answered.
func (g *group) completeJoinLocked(now time.Time) {
	for _, m := range g.members {
		if m.join == nil && m.instanceID == "" {
			g.removeMemberLocked(m, ErrUnknownMemberID)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeaderLocked() {
		// Only static members that have not rejoined remain: wait another
		// rebalance timeout, or until their sessions expire.
		g.initialDelay = false
		g.joinDeadline = now.Add(g.maxRebalanceTimeoutLocked())
		return
	}
	g.generation++
	g.initialDelay = false
	if len(g.members) == 0 {
		g.protocol = ""
		g.state = stateEmpty
		return
	}
	g.protocol = g.selectProtocolLocked()
	g.state = stateCompletingRebalance
	g.pendingSync = make(map[string]struct{}, len(g.members))
	g.syncDeadline = now.Add(g.maxRebalanceTimeoutLocked())
	for _, m := range g.members {
		m.completeJoin(g.joinResultLocked(m))
		m.touch(now)
		m.isNew = false
		g.pendingSync[m.id] = struct{}{}
	}
}

// electJoinedLeaderLocked keeps the leader if it rejoined, else makes the
// earliest rejoined member leader. False if nobody rejoined.
func (g *group) electJoinedLeaderLocked() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.sortedMembersLocked() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// expireLocked applies every deadline that has passed.
func (g *group) expireLocked(now time.Time) {
	if g.consumer != nil {
		g.consumer.expireLocked(now)
		return
	}
	for id, dl := range g.pending {
		if !now.Before(dl) {
			delete(g.pending, id)
			g.tryCompleteJoinLocked(now)
		}
	}
	for _, m := range g.sortedMembersLocked() {
		if g.members[m.id] != m || m.join != nil || m.sync != nil || now.Before(m.deadline) {
			continue
		}
		g.removeMemberAndUpdateLocked(m, ErrUnknownMemberID, now)
	}
	if (g.state == stateCompletingRebalance || g.state == stateStable) &&
		len(g.pendingSync) > 0 && !now.Before(g.syncDeadline) {
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				g.removeMemberLocked(m, ErrUnknownMemberID)
			}
		}
		g.prepareRebalanceLocked(now)
	}
	if g.state == statePreparingRebalance && !now.Before(g.joinDeadline) {
		if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
			d := min(g.opts.InitialRebalanceDelay, g.initialRemaining)
			g.initialRemaining = max(g.initialRemaining-g.opts.InitialRebalanceDelay, 0)
			g.newMemberAdded = false
			g.joinDeadline = now.Add(d)
			return
		}
		g.completeJoinLocked(now)
	}
}

// validateMemberLocked finds the member a request speaks for. With an
// instance id, the id must map to memberID (else the caller is a fenced,
// replaced incarnation); without, memberID must be a member.
func (g *group) validateMemberLocked(memberID, instanceID string) (*member, error) {
	if instanceID != "" {
		id, ok := g.static[instanceID]
		if !ok {
			return nil, ErrUnknownMemberID
		}
		if id != memberID {
			return nil, ErrFencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, ErrUnknownMemberID
	}
	return m, nil
}
