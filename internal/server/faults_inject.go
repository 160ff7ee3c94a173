//go:build faultinject

package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"syscall"

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
//	op=status     {"holding": fsyncs waiting now}
//
// path, if given, limits the faults to files whose path contains it
// (e.g. "/topics/" or "/queues/"). The metadata log and queues' ack
// records do not go through storage and are not affected.
func init() {
	faultInjector = func() (storage.FS, http.Handler) {
		ffs := storage.NewFaultFS(storage.OSFS())
		return ffs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
				fmt.Fprintf(w, "{\"holding\":%d}\n", ffs.Holding())
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
