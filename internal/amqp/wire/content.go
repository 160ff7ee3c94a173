package wire

import (
	"encoding/binary"
	"fmt"
)

// AppendContentHeader appends a content header frame payload: class id,
// weight (always zero), body size, property flags and the properties
// present. A nil p encodes no properties. The property layout is the basic
// class's, the only content class of 0-9-1.
func AppendContentHeader(dst []byte, classID uint16, bodySize uint64, p *Properties) []byte {
	dst = binary.BigEndian.AppendUint16(dst, classID)
	dst = append(dst, 0, 0) // weight
	dst = binary.BigEndian.AppendUint64(dst, bodySize)
	if p == nil {
		return append(dst, 0, 0)
	}
	flags := p.presentFlags()
	dst = binary.BigEndian.AppendUint16(dst, flags)
	return p.appendFields(dst, flags)
}

// DecodeContentHeader decodes a content header frame payload. The weight is
// ignored. Continuation flag words (bit 0 set) are read, but as basic has no
// properties beyond the first word they must carry no property bits; a bit
// naming a property that does not exist is malformed, as are trailing bytes.
// Checking classID against the preceding method is the caller's job. Errors
// wrap ErrMalformed.
func DecodeContentHeader(payload []byte) (classID uint16, bodySize uint64, p Properties, err error) {
	r := Reader{b: payload}
	classID = r.Uint16()
	r.Uint16() // weight
	bodySize = r.Uint64()
	p.Flags = r.Uint16()
	for more := p.Flags&1 != 0; more && r.err == nil; {
		w := r.Uint16()
		if w&^1 != 0 {
			r.fail("property flag word %#04x names unknown properties", w)
		}
		more = w&1 != 0
	}
	if p.Flags&^knownFlagsProperties&^1 != 0 {
		r.fail("property flags %#04x name unknown properties", p.Flags)
	}
	p.Flags &= knownFlagsProperties
	p.decodeFields(&r)
	if err := r.Complete(); err != nil {
		return 0, 0, Properties{}, fmt.Errorf("content header: %w", err)
	}
	return classID, bodySize, p, nil
}
