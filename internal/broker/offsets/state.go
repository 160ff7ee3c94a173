package offsets

import (
	"cmp"
	"maps"
	"slices"
)

// Commit is one committed offset of a group.
type Commit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64 // when it was committed, Unix milliseconds
	// Seq is the commit's place in the store's sequence of commits, set
	// by the store: every commit gets the next number, and a commit keeps
	// its number across restarts and log rewrites (docs/offsets-format.md).
	Seq int64
}

// Partition names a topic partition.
type Partition struct {
	Topic     string
	Partition int32
}

func (c Commit) partition() Partition { return Partition{c.Topic, c.Partition} }

func comparePartitions(a, b Partition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// state is every group's latest offsets. Not safe for concurrent use.
type state map[string]map[Partition]Commit

// apply applies one record.
func (st state) apply(r *record) {
	switch r.kind {
	case kindCommit, kindCommitSeq:
		if len(r.commits) == 0 {
			return
		}
		g := st[r.group]
		if g == nil {
			g = make(map[Partition]Commit, len(r.commits))
			st[r.group] = g
		}
		for _, c := range r.commits { // a later duplicate wins
			g[c.partition()] = c
		}
	case kindDelete:
		g := st[r.group]
		for _, p := range r.partitions {
			delete(g, p)
		}
		if len(g) == 0 {
			delete(st, r.group)
		}
	case kindDeleteGroup:
		delete(st, r.group)
	case kindDeleteTopic:
		for name, g := range st {
			maps.DeleteFunc(g, func(p Partition, _ Commit) bool { return p.Topic == r.topic })
			if len(g) == 0 {
				delete(st, name)
			}
		}
	}
}

// changes reports whether applying r would change anything (deletes of
// offsets that do not exist are not written).
func (st state) changes(r *record) bool {
	switch r.kind {
	case kindCommit, kindCommitSeq:
		return len(r.commits) > 0
	case kindDelete:
		for _, p := range r.partitions {
			if _, ok := st[r.group][p]; ok {
				return true
			}
		}
		return false
	case kindDeleteGroup:
		return len(st[r.group]) > 0
	case kindDeleteTopic:
		for _, g := range st {
			for p := range g {
				if p.Topic == r.topic {
					return true
				}
			}
		}
		return false
	}
	return false
}

// group returns a group's offsets sorted by topic and partition.
func (st state) group(name string) []Commit {
	g := st[name]
	out := make([]Commit, 0, len(g))
	for _, c := range g {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Commit) int { return comparePartitions(a.partition(), b.partition()) })
	return out
}

// records returns the records that rebuild st: one commit per group,
// sorted, so that a compacted log is deterministic.
func (st state) records() []record {
	out := make([]record, 0, len(st))
	for _, name := range slices.Sorted(maps.Keys(st)) {
		out = append(out, record{kind: kindCommitSeq, group: name, commits: st.group(name)})
	}
	return out
}

// numberLocked gives r's commits their sequence numbers (a kindCommit's
// the next ones, in order; a kindCommitSeq's are its own) and returns the
// next number after r. Replaying a log numbers its commits as they were
// numbered when written.
func numberLocked(next int64, r *record) int64 {
	switch r.kind {
	case kindCommit:
		for i := range r.commits {
			r.commits[i].Seq = next
			next++
		}
	case kindCommitSeq:
		for _, c := range r.commits {
			next = max(next, c.Seq+1)
		}
	case kindNextSeq:
		next = max(next, r.next)
	}
	return next
}

// Key names one committed offset: a group's, of a topic partition.
type Key struct {
	Group string
	Partition
}

// removed lists, sorted, the offsets that applying r deletes.
func (st state) removed(r *record) []Key {
	var out []Key
	switch r.kind {
	case kindDelete:
		for _, p := range r.partitions {
			if _, ok := st[r.group][p]; ok {
				out = append(out, Key{r.group, p})
			}
		}
	case kindDeleteGroup:
		for p := range st[r.group] {
			out = append(out, Key{r.group, p})
		}
	case kindDeleteTopic:
		for g, offs := range st {
			for p := range offs {
				if p.Topic == r.topic {
					out = append(out, Key{g, p})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), comparePartitions(a.Partition, b.Partition))
	})
	return slices.CompactFunc(out, func(a, b Key) bool { return a == b })
}
