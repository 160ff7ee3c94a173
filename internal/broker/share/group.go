package share

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Group configs (KIP-932's group-level settings, set with
// IncrementalAlterConfigs on a GROUP resource), with their defaults.
const (
	ConfigAutoOffsetReset   = "share.auto.offset.reset"       // "latest" or "earliest"
	ConfigLockDuration      = "share.record.lock.duration.ms" // 30000
	ConfigDeliveryLimit     = "share.delivery.count.limit"    // 5
	ConfigMaxRecordLocks    = "share.partition.max.record.locks"
	ConfigHeartbeatInterval = "share.heartbeat.interval.ms" // 5000
	ConfigSessionTimeout    = "share.session.timeout.ms"    // 45000
)

// Config is a group's effective settings.
type Config struct {
	Earliest          bool          // share.auto.offset.reset=earliest; latest by default
	LockDuration      time.Duration // an acquisition lock's length; 30 s
	DeliveryLimit     int           // deliveries before a record is archived; 5
	MaxRecordLocks    int           // records in flight per partition; 2000
	HeartbeatInterval time.Duration // 5 s
	SessionTimeout    time.Duration // a member silent this long is removed; 45 s
}

// DefaultConfig is Kafka 4.2's broker defaults for share groups.
func DefaultConfig() Config {
	return Config{
		LockDuration:      30 * time.Second,
		DeliveryLimit:     5,
		MaxRecordLocks:    2000,
		HeartbeatInterval: 5 * time.Second,
		SessionTimeout:    45 * time.Second,
	}
}

// configRange is a numeric config's bounds, Kafka's.
var configRange = map[string][2]int64{
	ConfigLockDuration:      {1000, 3600000},
	ConfigDeliveryLimit:     {2, 10},
	ConfigMaxRecordLocks:    {100, 10000},
	ConfigHeartbeatInterval: {1000, 15000},
	ConfigSessionTimeout:    {1000, 60000},
}

// ConfigNames lists the group configs, sorted.
func ConfigNames() []string {
	names := []string{ConfigAutoOffsetReset}
	for k := range configRange {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// CheckConfig validates one group config value.
func CheckConfig(name, value string) error {
	if name == ConfigAutoOffsetReset {
		if value != "latest" && value != "earliest" {
			return fmt.Errorf("%w: %s must be latest or earliest, not %q", ErrInvalidConfig, name, value)
		}
		return nil
	}
	r, ok := configRange[name]
	if !ok {
		return fmt.Errorf("%w: unknown share group config %q", ErrInvalidConfig, name)
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < r[0] || n > r[1] {
		return fmt.Errorf("%w: %s must be an integer from %d to %d, not %q", ErrInvalidConfig, name, r[0], r[1], value)
	}
	return nil
}

// Resolve applies the group's configs over base.
func Resolve(base Config, configs map[string]string) Config {
	c := base
	num := func(name string) (int64, bool) {
		v, ok := configs[name]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	if configs[ConfigAutoOffsetReset] != "" {
		c.Earliest = configs[ConfigAutoOffsetReset] == "earliest"
	}
	if n, ok := num(ConfigLockDuration); ok {
		c.LockDuration = time.Duration(n) * time.Millisecond
	}
	if n, ok := num(ConfigDeliveryLimit); ok {
		c.DeliveryLimit = int(n)
	}
	if n, ok := num(ConfigMaxRecordLocks); ok {
		c.MaxRecordLocks = int(n)
	}
	if n, ok := num(ConfigHeartbeatInterval); ok {
		c.HeartbeatInterval = time.Duration(n) * time.Millisecond
	}
	if n, ok := num(ConfigSessionTimeout); ok {
		c.SessionTimeout = time.Duration(n) * time.Millisecond
	}
	return c
}

// TopicID is a topic's 16-byte id.
type TopicID [16]byte

// TP names a share-partition.
type TP struct {
	Topic     TopicID
	Partition int32
}

// TopicInfo is a topic as the assignor sees it.
type TopicInfo struct {
	ID         TopicID
	Name       string
	Partitions int32
}

// TopicPartitions is an assignment's entry for one topic.
type TopicPartitions struct {
	ID         TopicID
	Name       string
	Partitions []int32
}

// Member is one consumer of a share group.
type Member struct {
	ID, RackID, ClientID, ClientHost string
	Epoch                            int32
	Subscribed                       []string
	Assignment                       []TopicPartitions
	lastSeen                         time.Time
}

// session is a member's share session (its fetch session): the partitions
// it fetches from and the epoch its next request must carry.
type session struct {
	epoch int32
	parts map[TP]bool
	conn  any // the connection it was opened on
}

// Group is a share group: members, sessions and share-partitions.
type Group struct {
	Name string
	// Established: the group is a share group (a member joined, or its
	// offsets were set), not merely a name with configs, which Kafka keeps
	// for any group id. It stays one until deleted.
	Established bool
	Epoch       int32
	Members     map[string]*Member
	Partitions  map[TP]*Partition
	Configs     map[string]string
	sessions    map[string]*session
}

// NewGroup returns an empty group.
func NewGroup(name string) *Group {
	return &Group{Name: name, Members: map[string]*Member{}, Partitions: map[TP]*Partition{}, Configs: map[string]string{}, sessions: map[string]*session{}}
}

// State is the group's state as Kafka names it: Empty or Stable (an
// assignment is computed at once and never revoked, so a group never
// reconciles), or Dead once deleted.
func (g *Group) State() string {
	if len(g.Members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// HeartbeatResult is what a heartbeat answers.
type HeartbeatResult struct {
	MemberID   string
	Epoch      int32
	Assignment []TopicPartitions // nil: unchanged
	Released   int               // records released because the member left
}

// Heartbeat joins (epoch 0), keeps (epoch > 0) or removes (epoch -1) a
// member. subscribed is nil when unchanged. topics is every topic now.
func (g *Group) Heartbeat(memberID string, epoch int32, rack *string, subscribed []string, clientID, host string, topics []TopicInfo, now time.Time, limit int) (HeartbeatResult, error) {
	m := g.Members[memberID]
	switch {
	case memberID == "":
		return HeartbeatResult{}, ErrInvalidRequest
	case epoch == -1:
		if m == nil {
			return HeartbeatResult{}, ErrUnknownMember
		}
		released := g.RemoveMember(memberID, limit)
		return HeartbeatResult{MemberID: memberID, Epoch: -1, Released: released}, nil
	case epoch == 0:
		if subscribed == nil && m == nil {
			return HeartbeatResult{}, ErrInvalidRequest
		}
		if m == nil {
			m = &Member{ID: memberID}
			g.Members[memberID] = m
			g.Epoch++
			g.Established = true
		}
		m.Assignment = nil // a rejoining member is sent its assignment again
	case m == nil:
		return HeartbeatResult{}, ErrUnknownMember
	case epoch > m.Epoch:
		return HeartbeatResult{}, ErrFencedEpoch
	}
	m.lastSeen, m.ClientID, m.ClientHost = now, clientID, host
	if rack != nil {
		m.RackID = *rack
	}
	if subscribed != nil {
		m.Subscribed = slices.Clone(subscribed)
	}
	assigned := assign(m.Subscribed, topics)
	res := HeartbeatResult{MemberID: memberID, Epoch: m.Epoch}
	if epoch == 0 || !sameAssignment(assigned, m.Assignment) {
		if epoch != 0 {
			g.Epoch++
		}
		m.Epoch, m.Assignment = g.Epoch, assigned
		res.Epoch, res.Assignment = m.Epoch, assigned
		if res.Assignment == nil {
			res.Assignment = []TopicPartitions{}
		}
	}
	return res, nil
}

// assign gives a member every partition of every topic it subscribes to.
func assign(subscribed []string, topics []TopicInfo) []TopicPartitions {
	var out []TopicPartitions
	for _, t := range topics {
		if !slices.Contains(subscribed, t.Name) || t.Partitions <= 0 {
			continue
		}
		ps := make([]int32, t.Partitions)
		for i := range ps {
			ps[i] = int32(i)
		}
		out = append(out, TopicPartitions{ID: t.ID, Name: t.Name, Partitions: ps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sameAssignment(a, b []TopicPartitions) bool {
	return slices.EqualFunc(a, b, func(x, y TopicPartitions) bool {
		return x.ID == y.ID && slices.Equal(x.Partitions, y.Partitions)
	})
}

// RemoveMember removes a member and its session, releasing its records;
// it returns how many records were released or archived.
func (g *Group) RemoveMember(id string, limit int) int {
	if _, ok := g.Members[id]; !ok {
		return 0
	}
	delete(g.Members, id)
	delete(g.sessions, id)
	g.Epoch++
	return g.releaseMember(id, limit)
}

func (g *Group) releaseMember(id string, limit int) int {
	n := 0
	for _, p := range g.Partitions {
		r, a := p.ReleaseMember(id, limit)
		n += r + a
	}
	return n
}

// ExpireMembers removes the members silent for longer than timeout and
// returns how many records they held.
func (g *Group) ExpireMembers(now time.Time, timeout time.Duration, limit int) int {
	n := 0
	for id, m := range g.Members {
		if now.Sub(m.lastSeen) > timeout {
			n += g.RemoveMember(id, limit)
		}
	}
	return n
}

// HasMember reports whether id is a member.
func (g *Group) HasMember(id string) bool { _, ok := g.Members[id]; return ok }

// OpenSession applies a ShareFetch or ShareAcknowledge's session epoch:
// 0 opens a new session (fetch only), a positive epoch must be the one
// the session expects next and moves it on, -1 is the member's last
// request (its session closes after it, see CloseSession). It returns the
// session's partitions after adding add and removing forget.
func (g *Group) OpenSession(member string, epoch int32, fetch bool, add, forget []TP, conn any, limit int) (map[TP]bool, error) {
	if !g.HasMember(member) {
		return nil, ErrUnknownMember
	}
	s := g.sessions[member]
	switch {
	case epoch == 0:
		if !fetch {
			return nil, ErrSessionEpoch
		}
		if s != nil {
			g.releaseMember(member, limit) // what the old session held
		}
		s = &session{parts: map[TP]bool{}, conn: conn}
		g.sessions[member] = s
	case epoch == -1:
		if s == nil {
			return nil, ErrSessionNotFound
		}
	case s == nil:
		return nil, ErrSessionNotFound
	case epoch != s.epoch:
		return nil, ErrSessionEpoch
	}
	if epoch != -1 {
		s.epoch = nextEpoch(epoch)
	}
	for _, tp := range add {
		s.parts[tp] = true
	}
	for _, tp := range forget {
		delete(s.parts, tp)
	}
	return s.parts, nil
}

func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// CloseSession ends a member's session (its epoch -1 request) and
// releases the records it still holds.
func (g *Group) CloseSession(member string, limit int) int {
	delete(g.sessions, member)
	return g.releaseMember(member, limit)
}

// CloseConnSession ends a member's session if it is the one opened on
// conn (the connection closed; a later session on another connection
// stays), releasing what the member holds. It reports whether it did.
func (g *Group) CloseConnSession(member string, conn any, limit int) (bool, int) {
	s := g.sessions[member]
	if s == nil || s.conn != conn {
		return false, 0
	}
	return true, g.CloseSession(member, limit)
}

// Partition returns a share-partition, created uninitialised if new.
func (g *Group) Partition(tp TP) *Partition {
	p := g.Partitions[tp]
	if p == nil {
		p = &Partition{}
		g.Partitions[tp] = p
	}
	return p
}
