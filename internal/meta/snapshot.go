package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sluice-mq/sluice/internal/fsutil"
)

// File names inside the store directory.
const (
	logName      = "meta.log"
	snapshotName = "snapshot.json"
	lockName     = "LOCK"
	tmpSuffix    = ".tmp"
)

const snapshotVersion = 1

// snapshotFile is the snapshot envelope. CRC32C covers the State bytes
// exactly as they appear in the file.
type snapshotFile struct {
	Version int             `json:"version"`
	Index   uint64          `json:"index"`
	CRC32C  uint32          `json:"crc32c"`
	State   json.RawMessage `json:"state"`
}

// encodeSnapshot builds the snapshot file contents. The envelope is written
// by hand so that the state bytes the CRC covers are the bytes in the file.
func encodeSnapshot(index uint64, state []byte) []byte {
	b := make([]byte, 0, len(state)+96)
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, snapshotVersion, 10)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, `,"crc32c":`...)
	b = strconv.AppendUint(b, uint64(crc32.Checksum(state, castagnoli)), 10)
	b = append(b, `,"state":`...)
	b = append(b, state...)
	return append(b, "}\n"...)
}

// decodeSnapshot parses and checks snapshot file contents.
func decodeSnapshot(b []byte) (index uint64, st *State, err error) {
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return 0, nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	if f.Version != snapshotVersion {
		return 0, nil, fmt.Errorf("meta: snapshot format version %d not supported (want %d)", f.Version, snapshotVersion)
	}
	if crc32.Checksum(f.State, castagnoli) != f.CRC32C {
		return 0, nil, errors.New("meta: snapshot checksum mismatch")
	}
	st = NewState()
	if err := st.UnmarshalJSON(f.State); err != nil {
		return 0, nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	return f.Index, st, nil
}

// readSnapshot loads dir's snapshot; without one it returns an empty state
// at index 0. A damaged snapshot is an error, not something to skip: the log
// it replaced is gone.
func readSnapshot(dir string) (index uint64, st *State, err error) {
	b, err := os.ReadFile(filepath.Join(dir, snapshotName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, NewState(), nil
	}
	if err != nil {
		return 0, nil, err
	}
	return decodeSnapshot(b)
}

// writeSnapshot durably replaces dir's snapshot: temp file, fsync, rename,
// fsync directory.
func writeSnapshot(dir string, index uint64, state []byte) error {
	return fsutil.WriteFileAtomic(dir, snapshotName, encodeSnapshot(index, state))
}

// createLog durably installs an empty log whose first record will have
// index base, replacing any existing log, and returns it open for
// appending. If f is non-nil the new file is in place even when err is not
// nil (the directory fsync failed), and the caller must stop using the old
// one.
func createLog(dir string, base uint64) (f *os.File, err error) {
	path := filepath.Join(dir, logName)
	tmp, err := os.OpenFile(path+tmpSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = tmp.Write(appendLogHeader(nil, base))
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(path+tmpSuffix, path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(path + tmpSuffix)
		return nil, err
	}
	return tmp, fsutil.SyncDir(dir)
}
