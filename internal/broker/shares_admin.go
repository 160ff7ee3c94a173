package broker

// Share groups seen by the admin APIs, metrics and the console: listing,
// describing, deleting, configs and the share-partitions' offsets.

import (
	"errors"
	"maps"
	"os"
	"sort"

	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/sluice-mq/sluice/internal/fsutil"
)

// ShareGroupSummary is a share group in a listing.
type ShareGroupSummary struct {
	Name    string
	State   string // Empty or Stable
	Members int
}

// List lists the share groups, sorted by name.
func (s *Shares) List() []ShareGroupSummary {
	s.mu.Lock()
	gs := make([]*shareGroup, 0, len(s.groups))
	for _, sg := range s.groups {
		gs = append(gs, sg)
	}
	s.mu.Unlock()
	now := s.now()
	out := make([]ShareGroupSummary, 0, len(gs))
	for _, sg := range gs {
		sg.mu.Lock()
		if !sg.g.Established {
			sg.mu.Unlock()
			continue
		}
		cfg := share.Resolve(s.base, sg.g.Configs)
		sg.g.ExpireMembers(now, cfg.SessionTimeout, cfg.DeliveryLimit)
		out = append(out, ShareGroupSummary{Name: sg.g.Name, State: sg.g.State(), Members: len(sg.g.Members)})
		sg.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ShareGroupDescription is a share group's members and assignment.
type ShareGroupDescription struct {
	Name    string
	State   string
	Epoch   int32
	Members []share.Member
}

// Describe describes a share group.
func (s *Shares) Describe(name string) (ShareGroupDescription, bool) {
	sg := s.established(name)
	if sg == nil {
		return ShareGroupDescription{}, false
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	cfg := share.Resolve(s.base, sg.g.Configs)
	sg.g.ExpireMembers(s.now(), cfg.SessionTimeout, cfg.DeliveryLimit)
	d := ShareGroupDescription{Name: name, State: sg.g.State(), Epoch: sg.g.Epoch}
	for _, m := range sg.g.Members {
		d.Members = append(d.Members, *m)
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].ID < d.Members[j].ID })
	return d, true
}

// Delete deletes an empty share group and its state: ErrNonEmptyGroup
// while it has members, ErrGroupNotFound if there is none.
func (s *Shares) Delete(name string) error {
	s.mu.Lock()
	sg := s.groups[name]
	if sg == nil {
		s.mu.Unlock()
		return share.ErrGroupNotFound
	}
	sg.mu.Lock()
	if !sg.g.Established {
		sg.mu.Unlock()
		s.mu.Unlock()
		return share.ErrGroupNotFound
	}
	cfg := share.Resolve(s.base, sg.g.Configs)
	sg.g.ExpireMembers(s.now(), cfg.SessionTimeout, cfg.DeliveryLimit)
	empty := len(sg.g.Members) == 0
	sg.mu.Unlock()
	if !empty {
		s.mu.Unlock()
		return share.ErrNonEmptyGroup
	}
	delete(s.groups, name)
	s.mu.Unlock()
	sg.write.Lock()
	defer sg.write.Unlock()
	sg.written = ^uint64(0) // no later save of this group writes
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fsutil.SyncDir(s.dir)
}

// SharePartitionOffset is a share-partition's start offset and lag (the
// records from it to the last stable offset still to settle); -1 for a
// partition the group has not started on.
type SharePartitionOffset struct {
	TP          share.TP
	StartOffset int64
	Lag         int64
	InFlight    int
}

// Offsets returns the share-partitions of a group, sorted.
func (s *Shares) Offsets(name string) ([]SharePartitionOffset, bool) {
	sg := s.established(name)
	if sg == nil {
		return nil, false
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	var out []SharePartitionOffset
	for tp, p := range sg.g.Partitions {
		if !p.Initialised() {
			continue
		}
		o := SharePartitionOffset{TP: tp, StartOffset: p.Start, Lag: -1, InFlight: p.Acquired()}
		if t, ok := s.b.TopicByID(TopicID(tp.Topic)); ok && int(tp.Partition) < len(t.Partitions) {
			_, _, lso := t.Partitions[tp.Partition].Offsets()
			o.Lag = max(0, lso-p.End) + int64(p.Pending())
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].TP, out[j].TP
		return string(a.Topic[:]) < string(b.Topic[:]) || a.Topic == b.Topic && a.Partition < b.Partition
	})
	return out, true
}

// AlterOffsets moves share-partitions' start offsets (forgetting their
// records in flight) in a group without members, creating it if need be.
func (s *Shares) AlterOffsets(name string, to map[share.TP]int64) error {
	sg := s.get(name, true)
	sg.mu.Lock()
	cfg := share.Resolve(s.base, sg.g.Configs)
	sg.g.ExpireMembers(s.now(), cfg.SessionTimeout, cfg.DeliveryLimit)
	if len(sg.g.Members) > 0 {
		sg.mu.Unlock()
		return share.ErrNonEmptyGroup
	}
	for tp, off := range to {
		sg.g.Partition(tp).Reset(off)
	}
	sg.g.Established = true
	sg.mu.Unlock()
	return s.save(sg)
}

// DeleteOffsets forgets the share-partitions of the given topics in a
// group without members: they start again from the reset offset.
func (s *Shares) DeleteOffsets(name string, topics []share.TopicID) error {
	sg := s.established(name)
	if sg == nil {
		return share.ErrGroupNotFound
	}
	sg.mu.Lock()
	cfg := share.Resolve(s.base, sg.g.Configs)
	sg.g.ExpireMembers(s.now(), cfg.SessionTimeout, cfg.DeliveryLimit)
	if len(sg.g.Members) > 0 {
		sg.mu.Unlock()
		return share.ErrNonEmptyGroup
	}
	for tp := range sg.g.Partitions {
		for _, id := range topics {
			if tp.Topic == id {
				delete(sg.g.Partitions, tp)
			}
		}
	}
	sg.mu.Unlock()
	return s.save(sg)
}

// Configs returns a group's configs as set (not the defaults).
func (s *Shares) Configs(name string) map[string]string {
	sg := s.get(name, false)
	if sg == nil {
		return nil
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	return maps.Clone(sg.g.Configs)
}

// AlterConfigs sets and removes group configs, creating the group if need
// be, as Kafka allows configs for a group before it has members.
func (s *Shares) AlterConfigs(name string, set map[string]string, remove []string, validateOnly bool) error {
	for k, v := range set {
		if err := share.CheckConfig(k, v); err != nil {
			return err
		}
	}
	for _, k := range remove {
		if err := share.CheckConfig(k, ""); err != nil && !isKnownConfig(k) {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	sg := s.get(name, true)
	sg.mu.Lock()
	maps.Copy(sg.g.Configs, set)
	for _, k := range remove {
		delete(sg.g.Configs, k)
	}
	sg.mu.Unlock()
	return s.save(sg)
}

func isKnownConfig(name string) bool {
	for _, n := range share.ConfigNames() {
		if n == name {
			return true
		}
	}
	return false
}

// ShareStats is what metrics show of the share groups.
type ShareStats struct {
	Groups, Members                                               int
	InFlight                                                      int   // records acquired now
	Lag                                                           int64 // records still to settle, all groups
	Acquired, Redelivered, Accepted, Released, Rejected, Archived int64
}

// Stats sums the share groups for metrics.
func (s *Shares) Stats() ShareStats {
	st := ShareStats{
		Acquired: s.Acquired.Load(), Redelivered: s.Redelivered.Load(), Accepted: s.Accepted.Load(),
		Released: s.Released.Load(), Rejected: s.Rejected.Load(), Archived: s.Archived.Load(),
	}
	for _, g := range s.List() {
		st.Groups++
		st.Members += g.Members
		offs, _ := s.Offsets(g.Name)
		for _, o := range offs {
			st.InFlight += o.InFlight
			if o.Lag > 0 {
				st.Lag += o.Lag
			}
		}
	}
	return st
}
