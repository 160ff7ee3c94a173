// Package accept keeps a listener's accept loop alive through the failures
// that pass.
//
// Accept fails for reasons that have nothing to do with the listener: the
// process is out of file descriptors (EMFILE) or the system is (ENFILE),
// the kernel is short of memory or buffers, a connection was reset or
// aborted while queued. A loop that returns on such an error leaves the
// port open (the kernel still completes handshakes into the backlog) and
// nothing serving it, so every new client hangs until its own timeout. The
// loop must instead wait and try again, and as net/http does it waits 5 ms
// after the first failure, doubling to at most 1 s, so that it neither
// spins on a descriptor limit nor sleeps long once descriptors are free.
//
// Use: one Backoff per accept loop; after each Accept error call Wait,
// which says whether to try again (and has waited); after each success
// call Accepted.
//
//	bo := accept.Backoff{Log: log, Listener: "kafka"}
//	for {
//		nc, err := ln.Accept()
//		if err != nil {
//			if closing() || !bo.Wait(err, done) {
//				return err
//			}
//			continue
//		}
//		bo.Accepted()
//		...
//	}
package accept
