package server

import (
	"net/http"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// faultInjector, when set (only in builds with the faultinject tag, for
// black-box tests), wraps the file system of every storage log and the
// metadata log's file, and serves an HTTP handler that arms and clears
// faults on them. Release builds leave it nil: no code path reaches a
// fault.
var faultInjector func() (storage.FS, func(path string, f meta.LogFile) meta.LogFile, http.Handler)
