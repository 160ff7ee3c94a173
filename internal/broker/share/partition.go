package share

import (
	"errors"
	"slices"
	"time"
)

// Acknowledgement types, as ShareFetch and ShareAcknowledge carry them.
const (
	AckGap     int8 = 0 // no record at the offset: settled
	AckAccept  int8 = 1 // processed: settled
	AckRelease int8 = 2 // back to available, for another delivery
	AckReject  int8 = 3 // unprocessable: settled (archived), never redelivered
	AckRenew   int8 = 4 // keep the lock: a new deadline (KIP-1222)
)

// Errors the front end maps to Kafka codes; each names its code.
var (
	ErrInvalidRecordState = errors.New("share: record not acquired by this member") // INVALID_RECORD_STATE
	ErrInvalidAckType     = errors.New("share: invalid acknowledge type")           // INVALID_REQUEST
	ErrUnknownMember      = errors.New("share: unknown member id")                  // UNKNOWN_MEMBER_ID
	ErrFencedEpoch        = errors.New("share: member epoch fenced")                // FENCED_MEMBER_EPOCH
	ErrSessionNotFound    = errors.New("share: share session not found")            // SHARE_SESSION_NOT_FOUND
	ErrSessionEpoch       = errors.New("share: invalid share session epoch")        // INVALID_SHARE_SESSION_EPOCH
	ErrGroupNotFound      = errors.New("share: group not found")                    // GROUP_ID_NOT_FOUND
	ErrNonEmptyGroup      = errors.New("share: group has members")                  // NON_EMPTY_GROUP
	ErrInvalidConfig      = errors.New("share: invalid group config")               // INVALID_CONFIG
	ErrInvalidRequest     = errors.New("share: invalid request")                    // INVALID_REQUEST
)

// Range is a run of offsets, first to last inclusive, with the delivery
// count its records were acquired with.
type Range struct {
	First, Last int64
	Count       int16
}

// rec is a record still to settle: available when owner is "".
type rec struct {
	count    int16
	owner    string
	deadline time.Time
}

// Partition is one share-partition's state: the window from Start to End
// and its records still to settle. The zero value is uninitialised; Init
// places the window.
type Partition struct {
	Start, End  int64
	initialised bool
	recs        map[int64]*rec
	acquired    int
}

// Initialised reports whether Init (or a restore) placed the window.
func (p *Partition) Initialised() bool { return p.initialised }

// Init places an empty window at offset (the reset offset the group's
// share.auto.offset.reset picks) unless it is placed already.
func (p *Partition) Init(offset int64) {
	if p.initialised {
		return
	}
	p.Start, p.End, p.initialised = offset, offset, true
}

// Reset moves the window to offset, forgetting every record in it (the
// AlterShareGroupOffsets of an empty group).
func (p *Partition) Reset(offset int64) {
	p.Start, p.End, p.initialised = offset, offset, true
	p.recs, p.acquired = nil, 0
}

// Clamp moves the window above the log start: records deleted by
// retention are settled, nobody can have them any more.
func (p *Partition) Clamp(logStart int64) {
	if p.Start >= logStart {
		return
	}
	for off, r := range p.recs {
		if off < logStart {
			p.drop(off, r)
		}
	}
	p.Start = logStart
	p.End = max(p.End, logStart)
	p.advance()
}

// Acquired is how many records are locked by members.
func (p *Partition) Acquired() int { return p.acquired }

// Pending is how many records of the window are still to settle.
func (p *Partition) Pending() int { return len(p.recs) }

func (p *Partition) drop(off int64, r *rec) {
	if r.owner != "" {
		p.acquired--
	}
	delete(p.recs, off)
}

// advance moves Start to the first record still to settle, or End.
func (p *Partition) advance() {
	start := p.End
	for off := range p.recs {
		start = min(start, off)
	}
	p.Start = start
}

// release makes r available again, or settles it (archives it) when it has
// been delivered limit times. It reports whether the record was archived.
func (p *Partition) release(off int64, r *rec, limit int) bool {
	if r.owner != "" {
		p.acquired--
	}
	r.owner, r.deadline = "", time.Time{}
	if int(r.count) >= limit {
		delete(p.recs, off)
		return true
	}
	return false
}

// Expire releases the records whose lock passed its deadline at now. It
// returns how many were made available and how many archived.
func (p *Partition) Expire(now time.Time, limit int) (released, archived int) {
	for off, r := range p.recs {
		if r.owner != "" && !now.Before(r.deadline) {
			if p.release(off, r, limit) {
				archived++
			} else {
				released++
			}
		}
	}
	if archived > 0 {
		p.advance()
	}
	return released, archived
}

// NextDeadline is the earliest lock deadline, zero when nothing is locked.
func (p *Partition) NextDeadline() time.Time {
	var next time.Time
	for _, r := range p.recs {
		if r.owner != "" && (next.IsZero() || r.deadline.Before(next)) {
			next = r.deadline
		}
	}
	return next
}

// Room is how many more records may be acquired with maxLocks in flight.
func (p *Partition) Room(maxLocks int) int { return max(0, maxLocks-p.acquired) }

// AcquireAvailable locks up to n available records (released ones, below
// End) for member until deadline, lowest offsets first, and returns them
// as ranges of equal delivery count.
func (p *Partition) AcquireAvailable(member string, deadline time.Time, n int) []Range {
	if n <= 0 {
		return nil
	}
	var offs []int64
	for off, r := range p.recs {
		if r.owner == "" {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	if len(offs) > n {
		offs = offs[:n]
	}
	var out []Range
	for _, off := range offs {
		r := p.recs[off]
		r.owner, r.deadline = member, deadline
		r.count++
		p.acquired++
		out = appendRange(out, off, r.count)
	}
	return out
}

// AcquireNew locks the new records first to last (which must start at End)
// for member until deadline, with delivery count 1, and moves End past
// them.
func (p *Partition) AcquireNew(member string, deadline time.Time, first, last int64) Range {
	if p.recs == nil {
		p.recs = make(map[int64]*rec)
	}
	for off := first; off <= last; off++ {
		p.recs[off] = &rec{count: 1, owner: member, deadline: deadline}
	}
	p.acquired += int(last - first + 1)
	p.End = last + 1
	if len(p.recs) == int(last-first+1) {
		p.advance()
	}
	return Range{First: first, Last: last, Count: 1}
}

// Skip moves End to offset past records no member is to get (transaction
// markers, aborted batches): they are settled as they are passed.
func (p *Partition) Skip(offset int64) {
	if offset <= p.End {
		return
	}
	p.End = offset
	if len(p.recs) == 0 {
		p.Start = offset
	}
}

func appendRange(out []Range, off int64, count int16) []Range {
	if n := len(out); n > 0 && out[n-1].Last == off-1 && out[n-1].Count == count {
		out[n-1].Last = off
		return out
	}
	return append(out, Range{First: off, Last: off, Count: count})
}

// AckCounts counts the records one Ack settled or released, by outcome.
type AckCounts struct {
	Accepted, Released, Rejected, Archived, Renewed int
}

// Ack applies one acknowledgement batch of member: types holds one type
// for the whole range or one per offset. Every offset must be acquired by
// member, except offsets already settled below End that hold no record
// (a gap the client acknowledges) ; otherwise nothing changes and the
// answer is ErrInvalidRecordState. renewTo is the new deadline of
// renewed records; limit the delivery count limit.
func (p *Partition) Ack(member string, first, last int64, types []int8, renewTo time.Time, limit int) (AckCounts, error) {
	var c AckCounts
	// first >= 0 first: with a negative one, last-first can overflow and
	// the range would look small while spanning the whole int64 line.
	if first < 0 || first > last || len(types) == 0 || (len(types) != 1 && int64(len(types)) != last-first+1) {
		return c, ErrInvalidRequest
	}
	typeAt := func(off int64) int8 {
		if len(types) == 1 {
			return types[0]
		}
		return types[off-first]
	}
	if last >= p.End || last-first >= 1<<20 {
		return c, ErrInvalidRecordState
	}
	for off := first; off <= last; off++ {
		t := typeAt(off)
		if t < AckGap || t > AckRenew {
			return c, ErrInvalidAckType
		}
		r := p.recs[off]
		if r == nil {
			if off < p.Start || t == AckGap || t == AckAccept || t == AckReject {
				continue // settled already or never a record
			}
			return c, ErrInvalidRecordState
		}
		if r.owner != member {
			return c, ErrInvalidRecordState
		}
	}
	for off := first; off <= last; off++ {
		r := p.recs[off]
		if r == nil {
			continue
		}
		switch typeAt(off) {
		case AckGap, AckAccept:
			p.drop(off, r)
			c.Accepted++
		case AckReject:
			p.drop(off, r)
			c.Rejected++
		case AckRelease:
			if p.release(off, r, limit) {
				c.Archived++
			} else {
				c.Released++
			}
		case AckRenew:
			r.deadline = renewTo
			c.Renewed++
		}
	}
	p.advance()
	return c, nil
}

// ReleaseMember releases every record member holds (it left, its session
// closed, or it was removed), returning how many were made available and
// how many archived.
func (p *Partition) ReleaseMember(member string, limit int) (released, archived int) {
	for off, r := range p.recs {
		if r.owner == member {
			if p.release(off, r, limit) {
				archived++
			} else {
				released++
			}
		}
	}
	if archived > 0 {
		p.advance()
	}
	return released, archived
}

// PartitionState is what of a share-partition is kept across restarts:
// the window and the delivery counts of the records still to settle, as
// runs of consecutive offsets with one count (records are acquired in
// runs, so a partition with thousands in flight keeps a few entries). A
// record acquired when the state was taken is kept as available with its
// count: after a restart nobody holds a lock.
type PartitionState struct {
	Start   int64      `json:"start"`
	End     int64      `json:"end"`
	Records []RecState `json:"records,omitempty"`
}

// RecState is a run of records still to settle, First to Last, each
// delivered Count times.
type RecState struct {
	First int64 `json:"f"`
	Last  int64 `json:"l"`
	Count int16 `json:"c"`
}

// State returns the partition's state to persist.
func (p *Partition) State() PartitionState {
	s := PartitionState{Start: p.Start, End: p.End}
	offs := make([]int64, 0, len(p.recs))
	for off := range p.recs {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	for _, off := range offs {
		c := p.recs[off].count
		if n := len(s.Records); n > 0 && s.Records[n-1].Last == off-1 && s.Records[n-1].Count == c {
			s.Records[n-1].Last = off
			continue
		}
		s.Records = append(s.Records, RecState{First: off, Last: off, Count: c})
	}
	return s
}

// maxRestoredRecords bounds what a state (read from disk) may make the
// partition keep.
const maxRestoredRecords = 1 << 20

// RestorePartition rebuilds a partition from its persisted state, every
// record available. Runs outside the window, or past maxRestoredRecords in
// all, are dropped.
func RestorePartition(s PartitionState) *Partition {
	start := max(s.Start, 0) // offsets are never negative
	p := &Partition{Start: start, End: max(s.End, start), initialised: true}
	for _, r := range s.Records {
		first, last := max(r.First, p.Start), min(r.Last, p.End-1)
		// first >= 0 here, so last-first cannot overflow.
		if first > last || last-first >= maxRestoredRecords-int64(len(p.recs)) {
			continue
		}
		if p.recs == nil {
			p.recs = make(map[int64]*rec)
		}
		for off := first; off <= last; off++ {
			p.recs[off] = &rec{count: max(r.Count, 1)}
		}
	}
	p.advance()
	return p
}
