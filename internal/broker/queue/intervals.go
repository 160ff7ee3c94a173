package queue

import "sort"

// intervals is a set of int64 offsets kept as sorted, disjoint, non-adjacent
// half-open ranges. A queue's settled offsets are mostly one long run
// with a few holes (the messages in flight), so the set costs memory in
// proportion to the holes, not to the messages.
type intervals struct {
	r []span
}

type span struct{ from, to int64 } // [from, to)

// add inserts [from, to) and reports how many offsets were newly added.
func (s *intervals) add(from, to int64) int64 {
	if from >= to {
		return 0
	}
	// first span that ends at or after from (may merge)
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].to >= from })
	j := i
	added := to - from
	nf, nt := from, to
	for j < len(s.r) && s.r[j].from <= to {
		a, b := max(s.r[j].from, from), min(s.r[j].to, to)
		if b > a {
			added -= b - a
		}
		nf, nt = min(nf, s.r[j].from), max(nt, s.r[j].to)
		j++
	}
	// In place: the set changes on every ack, so it must not allocate
	// once it has room for the holes in flight.
	switch {
	case j == i: // nothing merged: insert at i
		s.r = append(s.r, span{})
		copy(s.r[i+1:], s.r[i:])
		s.r[i] = span{nf, nt}
	default: // s.r[i:j] merged into one
		s.r[i] = span{nf, nt}
		s.r = append(s.r[:i+1], s.r[j:]...)
	}
	return added
}

// contains reports whether off is in the set.
func (s *intervals) contains(off int64) bool {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].to > off })
	return i < len(s.r) && s.r[i].from <= off
}

// nextAbsent returns the smallest offset >= off that is not in the set.
func (s *intervals) nextAbsent(off int64) int64 {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].to > off })
	if i < len(s.r) && s.r[i].from <= off {
		return s.r[i].to
	}
	return off
}

// count returns how many offsets in [from, to) are in the set.
func (s *intervals) count(from, to int64) int64 {
	var n int64
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].to > from })
	for ; i < len(s.r) && s.r[i].from < to; i++ {
		a, b := max(s.r[i].from, from), min(s.r[i].to, to)
		if b > a {
			n += b - a
		}
	}
	return n
}

// trimBelow forgets every offset below off.
func (s *intervals) trimBelow(off int64) {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].to > off })
	s.r = s.r[i:]
	if len(s.r) > 0 && s.r[0].from < off {
		s.r[0].from = off
	}
}

// trimAtOrAbove forgets every offset at or above off.
func (s *intervals) trimAtOrAbove(off int64) {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].to > off })
	s.r = s.r[:i+min(1, len(s.r)-i)]
	if i < len(s.r) {
		if s.r[i].from >= off {
			s.r = s.r[:i]
		} else {
			s.r[i].to = off
		}
	}
}

// clone returns a copy of the set.
func (s *intervals) clone() intervals {
	return intervals{r: append([]span(nil), s.r...)}
}
