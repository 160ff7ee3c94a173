package groups

import (
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat). A group
// id is either a classic group or a consumer group: the group struct holds
// a *consumerGroup while it is one (see doc.go).

// TopicID is a Kafka topic id.
type TopicID = [16]byte

// TopicInfo describes one existing topic to the coordinator. The front end
// passes every topic with each heartbeat, so that subscriptions by name and
// by regex follow topics as they are created, deleted and grown.
type TopicInfo struct {
	ID         TopicID
	Name       string
	Partitions int32
	Internal   bool // never matched by a regex subscription
}

// TopicPartitions is a set of partitions of one topic. Name is filled in
// the coordinator's answers (Describe); requests name topics by ID.
type TopicPartitions struct {
	ID         TopicID
	Name       string
	Partitions []int32
}

// ConsumerHeartbeatRequest is a ConsumerGroupHeartbeat request. The fields
// a client may leave out when unchanged since its last heartbeat are nil
// (or -1 for RebalanceTimeoutMs), as on the wire.
type ConsumerHeartbeatRequest struct {
	Group, MemberID string
	// MemberEpoch is 0 to join, the member's epoch to heartbeat, -1 to
	// leave, -2 for a static member to leave temporarily.
	MemberEpoch          int32
	InstanceID, RackID   *string
	RebalanceTimeoutMs   int32 // -1: unchanged
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	ServerAssignor       *string
	// Owned is the partitions the member owns now; nil: unchanged.
	Owned []TopicPartitions

	ClientID, ClientHost string
	Topics               []TopicInfo // every topic that exists now
}

// ConsumerHeartbeatResult is the answer to a ConsumerGroupHeartbeat.
type ConsumerHeartbeatResult struct {
	Err               error
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is the member's assigned partitions, sent when it joined,
	// sent a full request, or its assignment changed; nil otherwise.
	Assignment []TopicPartitions
}

// Consumer group states (Kafka's names). A target assignment is computed as
// soon as the group epoch moves, so a group is never seen Assigning.
const (
	StateReconciling = "Reconciling"
	StateAssigning   = "Assigning"
)

// Group types, as ListGroups reports them.
const (
	TypeClassic  = "classic"
	TypeConsumer = "consumer"
)

// memberState is a consumer member's reconciliation state (Kafka's names).
type memberState uint8

const (
	memberStable               memberState = iota // owns exactly its target at the target epoch
	memberUnrevokedPartitions                     // must revoke partitionsPendingRevocation first
	memberUnreleasedPartitions                    // waits for partitions others still own
)

type cmember struct {
	id, instanceID, rackID, clientID, clientHost string

	epoch, prevEpoch int32
	state            memberState
	assigned         tpSet // partitions the member may consume
	pendingRevoke    tpSet // partitions it must give up before it gets more

	rebalanceTimeout time.Duration
	topicNames       []string // sorted
	regex            string
	re               *regexp.Regexp
	assignor         string // "" uses the group's default

	deadline       time.Time // session expiry
	revokeDeadline time.Time // while memberUnrevokedPartitions

	// away: a static member left with epoch -2 (a restart): it keeps its
	// assignment until its session expires or its instance id rejoins.
	away bool
}

func (m *cmember) subscribes(t TopicInfo) bool {
	if _, ok := slices.BinarySearch(m.topicNames, t.Name); ok {
		return true
	}
	return m.re != nil && !t.Internal && m.re.MatchString(t.Name)
}

// consumerGroup is the consumer-protocol state of a group; guarded by the
// group's mu.
type consumerGroup struct {
	epoch           int32 // group epoch: bumped on membership, subscription, metadata change
	assignmentEpoch int32 // epoch of target
	assignor        string
	members         map[string]*cmember
	static          map[string]string  // instance id → member id
	target          map[string]tpSet   // member id → target assignment
	owners          map[tp]string      // partition → member that owns it (assigned or pending revocation)
	subscribed      map[TopicID]int32  // subscribed topics' partition counts when target was last computed
	names           map[TopicID]string // names of the subscribed topics, for Describe
	topicsKey       string             // signature of subscribed; a change bumps the epoch
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: make(map[string]*cmember),
		static:  make(map[string]string),
		target:  make(map[string]tpSet),
		owners:  make(map[tp]string),
		names:   make(map[TopicID]string),
	}
}

// assignorName is the assignor of the current target assignment.
func (cg *consumerGroup) assignorName() string {
	if cg.assignor == "" {
		return AssignorUniform
	}
	return cg.assignor
}

func (cg *consumerGroup) stateName() string {
	if len(cg.members) == 0 {
		return StateEmpty
	}
	if cg.assignmentEpoch != cg.epoch {
		return StateAssigning
	}
	for _, m := range cg.members {
		if m.state != memberStable || m.epoch != cg.assignmentEpoch {
			return StateReconciling
		}
	}
	return StateStable
}

// ConsumerHeartbeat runs one ConsumerGroupHeartbeat: it joins, updates,
// reconciles or removes the member and returns its epoch and, when the
// member must hear it, its assignment. It never blocks.
func (c *Coordinator) ConsumerHeartbeat(r ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
	fail := func(err error) ConsumerHeartbeatResult {
		return ConsumerHeartbeatResult{Err: err, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
	}
	if err := validateHeartbeat(&r); err != nil {
		return fail(err)
	}
	var re *regexp.Regexp
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + *r.SubscribedTopicRegex + ")$"); err != nil {
			return fail(ErrInvalidRegex)
		}
	}
	g, err := c.lockGroup(r.Group, r.MemberEpoch == 0)
	if err != nil {
		return fail(err)
	}
	if g == nil {
		return fail(ErrUnknownMemberID)
	}
	defer g.mu.Unlock()
	if g.consumer == nil {
		if len(g.members) > 0 || len(g.pending) > 0 {
			return fail(ErrGroupNotFound) // a live classic group
		}
		if r.MemberEpoch != 0 {
			return fail(ErrUnknownMemberID)
		}
		// An empty classic group (or a new one) becomes a consumer group.
		g.consumer = newConsumerGroup()
		g.protocolType = "consumer"
		g.protocol = ""
	}
	now := c.opts.Now()
	return g.consumer.heartbeatLocked(r, re, now, &c.opts)
}

func validateHeartbeat(r *ConsumerHeartbeatRequest) error {
	switch {
	case r.Group == "":
		return ErrInvalidGroupID
	case r.MemberEpoch < -2:
		return ErrInvalidRequest
	case r.InstanceID != nil && *r.InstanceID == "":
		return ErrInvalidRequest
	case r.MemberEpoch != 0 && r.MemberID == "":
		return ErrInvalidRequest
	case r.MemberEpoch == 0:
		if r.RebalanceTimeoutMs < 0 || len(r.Owned) > 0 {
			return ErrInvalidRequest
		}
		if r.SubscribedTopicNames == nil && r.SubscribedTopicRegex == nil {
			return ErrInvalidRequest
		}
	}
	if r.ServerAssignor != nil && *r.ServerAssignor != "" && !knownAssignor(*r.ServerAssignor) {
		return ErrUnsupportedAssignor
	}
	return nil
}

func (cg *consumerGroup) heartbeatLocked(r ConsumerHeartbeatRequest, re *regexp.Regexp, now time.Time, opts *Options) ConsumerHeartbeatResult {
	res := ConsumerHeartbeatResult{MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
	if r.MemberEpoch < 0 {
		m := cg.members[r.MemberID]
		if m == nil {
			res.Err = ErrUnknownMemberID
			return res
		}
		if r.MemberEpoch == -2 && m.instanceID != "" {
			m.away = true // keeps its partitions for its instance id's return
			return res
		}
		cg.removeMemberLocked(m)
		return res
	}
	if r.MemberID == "" { // v0: the coordinator names the member
		r.MemberID = strings.TrimPrefix(newMemberID(""), "-")
		res.MemberID = r.MemberID
	}
	m := cg.members[r.MemberID]
	instanceID := deref(r.InstanceID)
	bump := false // once per heartbeat, whatever changed
	if r.MemberEpoch == 0 {
		if instanceID != "" && m == nil {
			if holder, ok := cg.static[instanceID]; ok && holder != r.MemberID {
				o := cg.members[holder]
				if o != nil && !o.away {
					return ConsumerHeartbeatResult{Err: ErrUnreleasedInstanceID, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch}
				}
				if o != nil {
					m = cg.replaceStaticLocked(o, r.MemberID)
				}
			}
		}
		if m != nil && m.away {
			// The static member's new incarnation: it takes the old one's
			// assignment and epoch, without a rebalance.
			m.away = false
		} else if m == nil {
			m = &cmember{id: r.MemberID, assigned: tpSet{}, pendingRevoke: tpSet{}}
			cg.members[m.id] = m
			bump = true
		} else {
			// A rejoin: the member starts over and owns nothing.
			cg.releaseLocked(m)
			m.epoch, m.prevEpoch, m.state = 0, 0, memberStable
		}
		if instanceID != "" {
			m.instanceID = instanceID
			cg.static[instanceID] = m.id
		}
	} else {
		if m == nil {
			res.Err = ErrUnknownMemberID
			return res
		}
		if instanceID != "" && instanceID != m.instanceID {
			res.Err = ErrFencedInstanceID
			return res
		}
		if err := m.checkEpoch(r.MemberEpoch, r.Owned); err != nil {
			res.Err = err
			return res
		}
	}
	m.clientID, m.clientHost = r.ClientID, r.ClientHost
	if r.RackID != nil {
		m.rackID = *r.RackID
	}
	if r.RebalanceTimeoutMs >= 0 {
		m.rebalanceTimeout = time.Duration(r.RebalanceTimeoutMs) * time.Millisecond
	}
	changed := false
	if r.SubscribedTopicNames != nil {
		names := slices.Clone(r.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topicNames) {
			m.topicNames = names
			changed = true
		}
	}
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != m.regex {
		m.regex, m.re = *r.SubscribedTopicRegex, re
		changed = true
	}
	if r.ServerAssignor != nil && *r.ServerAssignor != m.assignor {
		m.assignor = *r.ServerAssignor
		changed = true
	}
	m.deadline = now.Add(opts.ConsumerSessionTimeout)
	if cg.refreshTopicsLocked(r.Topics) || changed || bump {
		cg.epoch++
	}
	cg.maybeAssignLocked()

	before := m.assigned.clone()
	var owned tpSet
	if r.Owned != nil {
		owned = tpSet{}
		for _, t := range r.Owned {
			for _, p := range t.Partitions {
				owned[tp{t.ID, p}] = struct{}{}
			}
		}
	}
	cg.reconcileLocked(m, owned, now)

	res.MemberEpoch = m.epoch
	res.HeartbeatInterval = opts.ConsumerHeartbeatInterval
	full := r.RebalanceTimeoutMs >= 0 && (r.SubscribedTopicNames != nil || r.SubscribedTopicRegex != nil) && r.Owned != nil
	if r.MemberEpoch == 0 || full || !before.equal(m.assigned) {
		res.Assignment = cg.topicPartitions(m.assigned)
		if res.Assignment == nil {
			res.Assignment = []TopicPartitions{}
		}
	}
	return res
}

// checkEpoch fences a heartbeat whose epoch is not the member's. As in
// Kafka, the previous epoch is accepted when the member owns no more than
// its assignment: the answer that carried the new epoch may have been lost.
func (m *cmember) checkEpoch(epoch int32, owned []TopicPartitions) error {
	if epoch > m.epoch {
		return ErrFencedMemberEpoch
	}
	if epoch < m.epoch {
		if epoch != m.prevEpoch {
			return ErrFencedMemberEpoch
		}
		for _, t := range owned {
			for _, p := range t.Partitions {
				if _, ok := m.assigned[tp{t.ID, p}]; !ok {
					return ErrFencedMemberEpoch
				}
			}
		}
	}
	return nil
}

// refreshTopicsLocked recomputes the subscribed topics from the topics that
// exist now; a change (a subscribed topic created, deleted or grown) bumps
// the group epoch (the caller bumps it when this reports a change).
func (cg *consumerGroup) refreshTopicsLocked(topics []TopicInfo) bool {
	names := make(map[string]bool)
	var res []*regexp.Regexp
	for _, m := range cg.members {
		for _, n := range m.topicNames {
			names[n] = true
		}
		if m.re != nil {
			res = append(res, m.re)
		}
	}
	sorted := topics
	if !slices.IsSortedFunc(sorted, func(a, b TopicInfo) int { return strings.Compare(a.Name, b.Name) }) {
		sorted = slices.Clone(topics)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	}
	sub := make(map[TopicID]int32)
	var key strings.Builder
	for _, t := range sorted {
		match := names[t.Name]
		for i := 0; !match && !t.Internal && i < len(res); i++ {
			match = res[i].MatchString(t.Name)
		}
		if !match {
			continue
		}
		sub[t.ID] = t.Partitions
		cg.names[t.ID] = t.Name
		key.WriteString(t.Name)
		key.WriteByte(0)
		key.Write(t.ID[:])
		key.WriteString(strconv.Itoa(int(t.Partitions)))
		key.WriteByte(0)
	}
	if k := key.String(); k != cg.topicsKey {
		cg.topicsKey = k
		cg.subscribed = sub
		return true
	}
	return false
}

// maybeAssignLocked computes the target assignment when the group epoch has
// moved past it.
func (cg *consumerGroup) maybeAssignLocked() {
	if cg.assignmentEpoch == cg.epoch {
		return
	}
	ids := slices.Sorted(maps.Keys(cg.members))
	spec := assignSpec{members: ids, partitions: cg.subscribed, prev: cg.target}
	for _, id := range ids {
		m := cg.members[id]
		s := make(map[TopicID]bool)
		for t := range cg.subscribed {
			if m.subscribes(TopicInfo{ID: t, Name: cg.names[t]}) {
				s[t] = true
			}
		}
		spec.subs = append(spec.subs, s)
	}
	cg.assignor = cg.preferredAssignorLocked()
	cg.target = assign(cg.assignor, spec)
	cg.assignmentEpoch = cg.epoch
}

// preferredAssignorLocked is the assignor most members ask for (ties to the
// name that sorts first), uniform when none asks.
func (cg *consumerGroup) preferredAssignorLocked() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := AssignorUniform
	for _, name := range slices.Sorted(maps.Keys(votes)) {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// reconcileLocked moves member m toward its target assignment, one step per
// heartbeat, never giving it a partition another member still owns: a
// member first revokes what it must give up (its epoch stays until its
// heartbeat no longer reports those partitions), then takes the epoch of
// the target assignment and the partitions that are free, waiting for the
// rest (unreleased partitions) on later heartbeats.
func (cg *consumerGroup) reconcileLocked(m *cmember, owned tpSet, now time.Time) {
	switch m.state {
	case memberUnrevokedPartitions:
		if owned == nil {
			return
		}
		for p := range m.pendingRevoke {
			if _, ok := owned[p]; ok {
				return // still owned: not revoked yet
			}
		}
		for p := range m.pendingRevoke {
			if cg.owners[p] == m.id {
				delete(cg.owners, p)
			}
		}
		m.pendingRevoke = tpSet{}
		cg.computeNextLocked(m, now)
	case memberUnreleasedPartitions:
		cg.computeNextLocked(m, now)
	case memberStable:
		if m.epoch != cg.assignmentEpoch {
			cg.computeNextLocked(m, now)
		}
	}
}

func (cg *consumerGroup) computeNextLocked(m *cmember, now time.Time) {
	target := cg.target[m.id]
	keep, revoke := tpSet{}, tpSet{}
	for p := range m.assigned {
		if _, ok := target[p]; ok {
			keep[p] = struct{}{}
		} else {
			revoke[p] = struct{}{}
		}
	}
	if len(revoke) > 0 {
		m.assigned, m.pendingRevoke = keep, revoke
		m.state = memberUnrevokedPartitions
		m.revokeDeadline = now.Add(m.rebalanceTimeout)
		return
	}
	unreleased := false
	for p := range target {
		if _, ok := keep[p]; ok {
			continue
		}
		if o, ok := cg.owners[p]; ok && o != m.id {
			unreleased = true
			continue
		}
		keep[p] = struct{}{}
		cg.owners[p] = m.id
	}
	m.assigned = keep
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleasedPartitions
	}
	if m.epoch != cg.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignmentEpoch
	}
}

// replaceStaticLocked moves a static member that left temporarily to its
// new member id, keeping its assignment, epoch and target.
func (cg *consumerGroup) replaceStaticLocked(o *cmember, id string) *cmember {
	delete(cg.members, o.id)
	for p, owner := range cg.owners {
		if owner == o.id {
			cg.owners[p] = id
		}
	}
	if t, ok := cg.target[o.id]; ok {
		delete(cg.target, o.id)
		cg.target[id] = t
	}
	o.id = id
	cg.members[id] = o
	cg.static[o.instanceID] = id
	return o
}

// releaseLocked gives up every partition m owns.
func (cg *consumerGroup) releaseLocked(m *cmember) {
	for _, s := range []tpSet{m.assigned, m.pendingRevoke} {
		for p := range s {
			if cg.owners[p] == m.id {
				delete(cg.owners, p)
			}
		}
	}
	m.assigned, m.pendingRevoke = tpSet{}, tpSet{}
}

// removeMemberLocked removes m from the group and bumps the group epoch so
// that the others take its partitions.
func (cg *consumerGroup) removeMemberLocked(m *cmember) {
	cg.releaseLocked(m)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != "" && cg.static[m.instanceID] == m.id {
		delete(cg.static, m.instanceID)
	}
	cg.epoch++
	if len(cg.members) == 0 {
		cg.subscribed, cg.topicsKey = nil, ""
		cg.target = make(map[string]tpSet)
	}
	cg.maybeAssignLocked()
}

// expireLocked removes members whose session expired and members that did
// not revoke partitions within their rebalance timeout.
func (cg *consumerGroup) expireLocked(now time.Time) {
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[id]
		if !now.Before(m.deadline) ||
			(m.state == memberUnrevokedPartitions && m.rebalanceTimeout > 0 && !now.Before(m.revokeDeadline)) {
			cg.removeMemberLocked(m)
		}
	}
}

// topicPartitions lists a set by topic, partitions sorted.
func (cg *consumerGroup) topicPartitions(s tpSet) []TopicPartitions {
	var out []TopicPartitions
	for _, p := range s.sorted() {
		if n := len(out); n == 0 || out[n-1].ID != p.topic {
			out = append(out, TopicPartitions{ID: p.topic, Name: cg.names[p.topic]})
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, p.part)
	}
	return out
}

// validateCommitLocked checks an offset commit or fetch of a consumer
// group: Kafka's rules for KIP-848 groups. A commit without member (epoch
// < 0, no member id) is allowed while the group is empty; otherwise the
// member must exist (ErrUnknownMemberID) and carry its current epoch
// (ErrStaleMemberEpoch).
func (cg *consumerGroup) validateCommitLocked(memberID string, epoch int32) error {
	if epoch < 0 && memberID == "" {
		if len(cg.members) == 0 {
			return nil
		}
		return ErrUnknownMemberID
	}
	m := cg.members[memberID]
	if m == nil {
		return ErrUnknownMemberID
	}
	if epoch != m.epoch {
		return ErrStaleMemberEpoch
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ConsumerMember describes a member of a consumer group.
type ConsumerMember struct {
	MemberID, InstanceID, RackID, ClientID, ClientHost string
	MemberEpoch                                        int32
	SubscribedTopicNames                               []string
	SubscribedTopicRegex                               string
	Assignment, TargetAssignment                       []TopicPartitions
}

// ConsumerGroupDescription is the answer to ConsumerGroupDescribe.
type ConsumerGroupDescription struct {
	Group, State, Assignor string
	Epoch, AssignmentEpoch int32
	Members                []ConsumerMember
}

// DescribeConsumer reports a consumer group. ok is false if the group is
// unknown; isConsumer is false if it is a classic group (Kafka answers
// GROUP_ID_NOT_FOUND for both).
func (c *Coordinator) DescribeConsumer(group string) (d ConsumerGroupDescription, ok, isConsumer bool) {
	g, err := c.lockGroup(group, false)
	if g == nil || err != nil {
		return d, false, false
	}
	defer g.mu.Unlock()
	cg := g.consumer
	if cg == nil {
		return d, true, false
	}
	d = ConsumerGroupDescription{Group: g.id, State: cg.stateName(), Assignor: cg.assignorName(),
		Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch}
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[id]
		d.Members = append(d.Members, ConsumerMember{
			MemberID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			MemberEpoch: m.epoch, SubscribedTopicNames: slices.Clone(m.topicNames), SubscribedTopicRegex: m.regex,
			Assignment:       cg.topicPartitions(m.assigned),
			TargetAssignment: cg.topicPartitions(cg.target[m.id]),
		})
	}
	return d, true, true
}

// SubscribedTo reports whether the group's members consume topic, as
// OffsetDelete asks (GROUP_SUBSCRIBED_TO_TOPIC): for a consumer group,
// whether a member subscribes to it by name or regex; for a classic group,
// whose subscriptions the coordinator does not decode, whether it has
// members at all.
func (c *Coordinator) SubscribedTo(group, topic string) bool {
	g, _ := c.lockGroup(group, false)
	if g == nil {
		return false
	}
	defer g.mu.Unlock()
	if g.consumer == nil {
		return len(g.members) > 0
	}
	for _, m := range g.consumer.members {
		if m.subscribes(TopicInfo{Name: topic}) {
			return true
		}
	}
	return false
}
