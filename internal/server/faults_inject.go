//go:build faultinject

package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// In a faultinject build every storage log (partitions, queues, streams,
// delayed messages) runs on a storage.FaultFS over the real file system,
// and POST /debug/faults?op=...&path=... drives it, so that black-box
// tests can hold fsyncs, fail them, or fill the disk under a real server
// process:
//
//	op=hold       every later fsync waits (until release)
//	op=release    held and later fsyncs go through
//	op=fail-sync  every later fsync fails with EIO
//	op=full       every later write fails with ENOSPC
//	op=clear      no faults: fsyncs and writes succeed, held ones go on
//	op=status     {"holding": fsyncs waiting now, "volatile": see below}
//
// path, if given, limits the faults to files whose path contains it
// (e.g. "/topics/", "/queues/" or "/meta/"). The metadata log's file is
// wrapped to share the faults (faultMetaLog); queues' ack records do not
// go through storage and are not affected.
//
// With SLUICE_FAULT_VOLATILE=1 in the environment the file system below
// the FaultFS is a storage.NewVolatileFS over the real one: writes stay in
// the process's memory until fsynced, so kill -9 acts as a power loss for
// the storage logs (test/powerloss_test.go). The FaultFS stays on top, so
// faults act on the calls the logs make, as without it: a full disk fails
// the write itself (below, writes reach the disk only at fsync), and a
// failed or held fsync never reaches the volatile layer, so what it covers
// stays unsynced and dies with the process, as after a real failed fsync
// and power loss. (Under it, a failed fsync would first have written the
// data to the page cache, where kill -9 cannot take it.)
func init() {
	clusterFaults = true
	faultInjector = func() (storage.FS, func(string, meta.LogFile) meta.LogFile, http.Handler) {
		base, volatile := storage.OSFS(), os.Getenv("SLUICE_FAULT_VOLATILE") == "1"
		if volatile {
			base = storage.NewVolatileFS(base)
		}
		ffs := storage.NewFaultFS(base)
		wrapMeta := func(path string, f meta.LogFile) meta.LogFile { return &faultMetaLog{LogFile: f, ffs: ffs, path: path} }
		return ffs, wrapMeta, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := r.URL.Query().Get("path"); p != "" {
				ffs.SetFilter(func(name string) bool { return strings.Contains(name, p) })
			}
			switch r.URL.Query().Get("op") {
			case "hold":
				ffs.HoldSyncs()
			case "release":
				ffs.ReleaseSyncs()
			case "fail-sync":
				ffs.FailSync(&fs.PathError{Op: "fsync", Path: "(injected)", Err: syscall.EIO})
			case "full":
				ffs.SetDiskBudget(0)
			case "status":
				fmt.Fprintf(w, "{\"holding\":%d,\"volatile\":%v}\n", ffs.Holding(), volatile)
				return
			case "clear":
				ffs.FailSync(nil)
				ffs.SetDiskBudget(-1)
				ffs.ReleaseSyncs()
				ffs.SetFilter(nil)
			default:
				http.Error(w, "op: hold, release, fail-sync, full or clear", http.StatusBadRequest)
				return
			}
			w.Write([]byte("ok\n"))
		})
	}
}

// faultMetaLog gives the metadata log's file the faults armed on the
// FaultFS, for its path: held and failing fsyncs, a full disk.
type faultMetaLog struct {
	meta.LogFile
	ffs  *storage.FaultFS
	path string
}

func (f *faultMetaLog) Write(p []byte) (int, error) {
	keep, fault := f.ffs.WriteGate(f.path, len(p))
	if keep < 0 {
		return 0, fault
	}
	n, err := f.LogFile.Write(p[:keep])
	if err != nil {
		return n, err
	}
	return n, fault
}

func (f *faultMetaLog) Sync() error {
	if err := f.ffs.SyncGate(f.path); err != nil {
		return err
	}
	return f.LogFile.Sync()
}
