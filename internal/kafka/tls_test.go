package kafka

import (
	"crypto/tls"
	"net"
	"testing"
)

// A TLS connection's bytes go through crypto/tls: Fetch answers on it are
// copied, never sent from the files with sendfile, whatever ZeroCopy says.
func TestZeroCopyOffOnTLSConnections(t *testing.T) {
	s, err := NewServer(Options{AdvertisedAddr: "127.0.0.1:9092", ZeroCopy: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			var b [1]byte
			c.Read(b[:])
		}
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	plain := newConn(s, nc)
	if plain.zeroCopy != sendfileSupported {
		t.Fatalf("plain TCP: zeroCopy = %v, want %v", plain.zeroCopy, sendfileSupported)
	}
	secure := newConn(s, tls.Server(nc, &tls.Config{}))
	if secure.zeroCopy || secure.tcp != nil {
		t.Fatal("a TLS connection would send Fetch records with sendfile")
	}
}
