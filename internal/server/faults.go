package server

import (
	"net/http"

	"github.com/sluice-mq/sluice/internal/broker/offsets"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// faultInjector, when set (only in builds with the faultinject tag, for
// black-box tests), wraps the file system of every storage log and the
// metadata log's file, and serves an HTTP handler that arms and clears
// faults on them. Release builds leave it nil: no code path reaches a
// fault.
var faultInjector func() (storage.FS, func(path string, f meta.LogFile) meta.LogFile, http.Handler)

// clusterFaults is true in builds with the faultinject tag: a cluster node
// then serves POST /debug/cluster?op=block|unblock&peer=<id>|all, which
// cuts (or restores) its node-to-node traffic with a peer, a network
// partition for the fault-schedule tests (test/cluster_faults_test.go).
var clusterFaults bool

// offsetsLogWrapper gives the consumer offsets log (DataDir/offsets, opened
// by the broker) the faults of the metadata log's wrapper; nil for nil.
func offsetsLogWrapper(wrap func(string, meta.LogFile) meta.LogFile) func(string, offsets.LogFile) offsets.LogFile {
	if wrap == nil {
		return nil
	}
	return func(path string, f offsets.LogFile) offsets.LogFile { return wrap(path, f) }
}
