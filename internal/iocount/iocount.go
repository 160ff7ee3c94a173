// Package iocount wraps a connection's reader and writer so that every
// byte moved is reported to a metrics hook. The Kafka and AMQP servers
// both use it under their buffered readers and writers, so a hook runs
// once per system call, not per frame or message.
package iocount

import "io"

// Reader reports the bytes each Read returns to H.
type Reader struct {
	R io.Reader
	H interface{ BytesRead(int) }
}

func (c Reader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	if n > 0 {
		c.H.BytesRead(n)
	}
	return n, err
}

// Writer reports the bytes each Write takes to H.
type Writer struct {
	W io.Writer
	H interface{ BytesWritten(int) }
}

func (c Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	if n > 0 {
		c.H.BytesWritten(n)
	}
	return n, err
}
