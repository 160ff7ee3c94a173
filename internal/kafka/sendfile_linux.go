package kafka

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sendfileSupported: this platform sends file bytes to sockets in the
// kernel.
const sendfileSupported = true

// sendFile sends n bytes of f at pos to dst with sendfile(2), the file
// position passed explicitly (f is shared with other readers, and its own
// offset is never used). It returns the bytes sent. A file shorter than
// pos+n is an error: the answer's framing promised n bytes.
func sendFile(dst *net.TCPConn, f *os.File, pos, n int64) (int64, error) {
	out, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	in, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sent int64
	var serr error
	cerr := in.Control(func(infd uintptr) {
		// Write waits for the socket to be writable whenever the callback
		// returns false (EAGAIN), and ends when the connection closes.
		werr := out.Write(func(outfd uintptr) bool {
			for sent < n {
				off := pos + sent
				m, err := syscall.Sendfile(int(outfd), int(infd), &off, int(min(n-sent, 1<<30)))
				if m > 0 {
					sent += int64(m)
				}
				switch {
				case err == syscall.EAGAIN:
					return false
				case err == syscall.EINTR:
				case err != nil:
					serr = os.NewSyscallError("sendfile", err)
					return true
				case m == 0:
					serr = io.ErrUnexpectedEOF
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	return sent, serr
}
