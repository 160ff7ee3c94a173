//go:build !linux

package kafka

import (
	"errors"
	"net"
	"os"
)

// sendfileSupported: not here; Fetch answers are copied (zero copy is
// built for Linux's sendfile only).
const sendfileSupported = false

func sendFile(*net.TCPConn, *os.File, int64, int64) (int64, error) {
	return 0, errors.New("kafka: sendfile is not supported on this platform")
}
