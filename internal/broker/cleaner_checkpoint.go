package broker

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The cleaner's checkpoint (Kafka's cleaner-offset-checkpoint): where each
// compacted partition's dirty part starts, so that a restart does not make
// the first pass read every compacted log again. It is only an
// optimisation: a missing or damaged file means "all dirty", which is
// safe (a pass over clean data drops nothing the last one kept).
//
// File DataDir/cleaner-checkpoint, text:
//
//	sluice-cleaner-checkpoint 1
//	<topic> <partition> <first dirty offset>     (one line each)
//	crc32c <8 hex digits of the CRC-32C of every line above, newlines included>
//
// written to a .tmp file, fsync'd and renamed into place.

const cleanerCheckpointName = "cleaner-checkpoint"

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

type cleanerKey struct {
	topic     string
	partition int32
}

// loadCleanerCheckpoint reads the checkpoint in dir; nil if it is missing
// or damaged.
func loadCleanerCheckpoint(dir string) map[cleanerKey]int64 {
	_ = os.Remove(filepath.Join(dir, cleanerCheckpointName+".tmp")) // a save cut short
	data, err := os.ReadFile(filepath.Join(dir, cleanerCheckpointName))
	if err != nil {
		return nil
	}
	i := bytes.LastIndex(data[:max(len(data)-1, 0)], []byte("\ncrc32c "))
	if i < 0 {
		return nil
	}
	body, tail := data[:i+1], strings.TrimSpace(string(data[i+1:]))
	if tail != fmt.Sprintf("crc32c %08x", crc32.Checksum(body, castagnoliTable)) {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) == 0 || lines[0] != "sluice-cleaner-checkpoint 1" {
		return nil
	}
	out := make(map[cleanerKey]int64)
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			return nil
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil
		}
		out[cleanerKey{f[0], int32(p)}] = off
	}
	return out
}

// saveCleanerCheckpoint replaces the checkpoint in dir with offsets.
func saveCleanerCheckpoint(dir string, offsets map[cleanerKey]int64) error {
	var b bytes.Buffer
	b.WriteString("sluice-cleaner-checkpoint 1\n")
	for k, off := range offsets {
		fmt.Fprintf(&b, "%s %d %d\n", k.topic, k.partition, off)
	}
	fmt.Fprintf(&b, "crc32c %08x\n", crc32.Checksum(b.Bytes(), castagnoliTable))
	path := filepath.Join(dir, cleanerCheckpointName)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
