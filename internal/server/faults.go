package server

import (
	"net/http"

	"github.com/sluice-mq/sluice/internal/storage"
)

// faultInjector, when set (only in builds with the faultinject tag, for
// black-box tests), wraps the file system of every storage log and serves
// an HTTP handler that arms and clears faults on it. Release builds leave
// it nil: no code path reaches a fault.
var faultInjector func() (storage.FS, http.Handler)
