package iocount

import (
	"bytes"
	"io"
	"testing"
)

type tally struct{ read, written int }

func (t *tally) BytesRead(n int)    { t.read += n }
func (t *tally) BytesWritten(n int) { t.written += n }

func TestCounts(t *testing.T) {
	var h tally
	var dst bytes.Buffer
	w := Writer{W: &dst, H: &h}
	w.Write([]byte("hello "))
	w.Write([]byte("world"))
	got, err := io.ReadAll(Reader{R: &dst, H: &h})
	if err != nil || string(got) != "hello world" {
		t.Fatalf("read %q, %v", got, err)
	}
	if h.written != 11 || h.read != 11 {
		t.Fatalf("counted %d written, %d read; want 11 and 11", h.written, h.read)
	}
}
