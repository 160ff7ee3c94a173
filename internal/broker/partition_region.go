package broker

import (
	"errors"
	"fmt"

	"github.com/sluice-mq/sluice/internal/storage"
)

// FileRegion is a run of whole record batches in a segment file, held open
// until Release (storage.Region): Len bytes, End the offset after them,
// ReadAt to copy them, File for sending them from the file; or, for a
// small one, Bytes already read.
type FileRegion = storage.Region

// ErrNoRegions: the partition's log keeps no files to give regions of (an
// in-memory log); read with Read instead.
var ErrNoRegions = errors.New("broker: partition log gives no file regions")

// regionLog is a PartitionLog that can give file regions (storage.Log):
// a region must hold exactly the bytes its Read would return.
type regionLog interface {
	ReadRegion(offset int64, maxBytes int, end int64, copyUnder int) (*storage.Region, error)
}

// ReadRegion is Read without copying: the same batches, as a region of
// their segment file that stays readable until Release, whatever
// retention or the cleaner do meanwhile. nil, nil when nothing is visible.
// A region shorter than copyUnder bytes comes read into memory (Bytes):
// sending so little from the file costs more than the copy.
func (p *Partition) ReadRegion(offset int64, maxBytes int, iso IsolationLevel, copyUnder int) (*FileRegion, error) {
	start, hw, _ := p.Offsets()
	end := p.visibleEnd(iso)
	if offset < start || offset > hw {
		return nil, fmt.Errorf("%w: offset %d, log holds %d..%d", ErrOffsetOutOfRange, offset, start, hw)
	}
	if offset >= end {
		return nil, nil
	}
	rl, ok := p.log.(regionLog)
	if !ok {
		return nil, ErrNoRegions
	}
	r, err := rl.ReadRegion(offset, maxBytes, end, copyUnder)
	if err != nil {
		return nil, coreError(err)
	}
	return r, nil
}
