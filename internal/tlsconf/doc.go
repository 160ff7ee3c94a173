// Package tlsconf is Sluice's transport security: the server's TLS
// configuration, read from certificate and key files and reloaded when
// they change, the listener that runs each connection's handshake before
// handing it to a front end, and the development certificates of
// `sluice tls dev-cert`.
//
// One Source serves every TLS listener (AMQPS, the Kafka TLS listener,
// HTTPS). Its tls.Config answers each handshake through
// GetConfigForClient with the configuration built from the files as they
// are now: the files' modification times and sizes are compared with
// those last loaded on every handshake (a few stat calls), and when they
// differ the files are read again. A reload that fails (a key that does
// not match its certificate yet, because an operator replaced one file
// and not the other) keeps the previous configuration and logs a warning
// once per change, so a broker never stops serving because of a half
// finished certificate rotation. Minimum version TLS 1.2.
//
// Listen wraps a plain listener: its Accept returns *tls.Conn whose
// handshake is done. Handshakes run in their own goroutines with a
// deadline (HandshakeTimeout), at most MaxPendingHandshakes at a time,
// so a client that connects and sends nothing holds neither the accept
// loop nor more than one goroutine and its buffers for longer than the
// deadline. A failed handshake (a plain-text client, an untrusted,
// expired or missing client certificate) is logged at info with the
// remote address and counted by listener (HandshakeFailures, the
// sluice_tls_handshake_failures_total metric); the client gets TLS's
// own alert.
//
// PeerUser names the principal of a verified client certificate: its
// subject's common name (docs/security.md, "Transport security (TLS)").
package tlsconf
