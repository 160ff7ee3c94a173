package broker

import "hash/maphash"

// offsetMap is the log cleaner's map from a record key to the offset of
// its latest record, in a fixed amount of memory whatever the number of
// keys (Kafka's "dedupe buffer"): keys are stored as a 128-bit hash, in
// an open-addressing table of 24-byte slots filled to at most 90%. When
// it is full, a pass covers only the part of the dirty log whose keys it
// holds, and the next pass goes on from there.
//
// Two different keys with the same 128-bit hash would make the older
// record of one look superseded by the other: with a random seed per map
// the chance is about n²/2¹²⁹, nothing next to a disk's error rate.
type offsetMap struct {
	seeds [2]maphash.Seed
	slots []mapSlot
	used  int
	limit int // most slots used before the map counts as full
}

type mapSlot struct {
	h1, h2 uint64
	off    int64 // the offset plus one: 0 is an empty slot
}

// mapSlotBytes is the memory of one slot.
const mapSlotBytes = 24

// newOffsetMap returns a map of about bytes of memory (at least 16 slots).
func newOffsetMap(bytes int64) *offsetMap {
	n := max(int(bytes/mapSlotBytes), 16)
	return &offsetMap{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		slots: make([]mapSlot, n),
		limit: n * 9 / 10,
	}
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seeds[0], key), maphash.Bytes(m.seeds[1], key)
}

// put records off as key's latest offset. It returns false, changing
// nothing, when the key is new and the map is full.
func (m *offsetMap) put(key []byte, off int64) bool {
	h1, h2 := m.hash(key)
	for i := h1 % uint64(len(m.slots)); ; i = (i + 1) % uint64(len(m.slots)) {
		s := &m.slots[i]
		switch {
		case s.off == 0:
			if m.used >= m.limit {
				return false
			}
			*s = mapSlot{h1: h1, h2: h2, off: off + 1}
			m.used++
			return true
		case s.h1 == h1 && s.h2 == h2:
			s.off = max(s.off, off+1)
			return true
		}
	}
}

// get returns key's latest offset, if the map holds the key.
func (m *offsetMap) get(key []byte) (int64, bool) {
	h1, h2 := m.hash(key)
	for i := h1 % uint64(len(m.slots)); ; i = (i + 1) % uint64(len(m.slots)) {
		s := &m.slots[i]
		switch {
		case s.off == 0:
			return 0, false
		case s.h1 == h1 && s.h2 == h2:
			return s.off - 1, true
		}
	}
}
