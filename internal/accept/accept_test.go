package accept

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRetryable(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{opErr(syscall.EMFILE), true},
		{opErr(syscall.ENFILE), true},
		{opErr(syscall.ENOBUFS), true},
		{opErr(syscall.ENOMEM), true},
		{opErr(syscall.ECONNABORTED), true},
		{fmt.Errorf("wrapped: %w", opErr(syscall.EMFILE)), true},
		{opErr(syscall.EBADF), false},
		{opErr(syscall.EINVAL), false},
		{&net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
		{errors.New("something else"), false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A streak of failures waits 5ms, doubling to 1s; logs its start, then at
// most every LogEvery, then its end; a success starts the next streak
// from 5ms again.
func TestBackoffStreak(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	var waits []time.Duration
	b := Backoff{
		Log:      slog.New(slog.NewTextHandler(&buf, nil)),
		Listener: "kafka",
		Now:      func() time.Time { return now },
		Sleep: func(d time.Duration, done <-chan struct{}) bool {
			waits = append(waits, d)
			now = now.Add(d)
			return true
		},
	}
	emfile := &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	for range 20 {
		if !b.Wait(emfile, nil) {
			t.Fatal("Wait refused a retryable error")
		}
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640}
	for i, w := range want {
		if waits[i] != w*time.Millisecond {
			t.Fatalf("wait %d = %v, want %v (waits %v)", i, waits[i], w*time.Millisecond, waits)
		}
	}
	for i := len(want); i < len(waits); i++ {
		if waits[i] != time.Second {
			t.Fatalf("wait %d = %v, want the 1s cap", i, waits[i])
		}
	}
	// 20 failures over about 13s: the first line and one more.
	if n := strings.Count(buf.String(), "accepting connections"); n != 2 {
		t.Fatalf("%d log lines for a 13s streak, want 2:\n%s", n, buf.String())
	}
	b.Accepted()
	if !strings.Contains(buf.String(), "accepting connections again") || !strings.Contains(buf.String(), "failures=20") {
		t.Fatalf("no recovery line with the streak's count:\n%s", buf.String())
	}
	// Flapping (a failure, an accept, a failure...) logs nothing more
	// within LogEvery of the last line.
	lines := strings.Count(buf.String(), "\n")
	for range 5 {
		waits = nil
		b.Wait(emfile, nil)
		if waits[0] != FirstDelay {
			t.Fatalf("first wait of a new streak %v, want %v", waits[0], FirstDelay)
		}
		b.Accepted()
	}
	if n := strings.Count(buf.String(), "\n"); n != lines {
		t.Fatalf("flapping within %v of the last line logged %d lines:\n%s", LogEvery, n-lines, buf.String())
	}
	now = now.Add(LogEvery)
	b.Wait(emfile, nil)
	if !strings.Contains(buf.String(), "failures=8") {
		t.Fatalf("the next line counts the 8 failures since the last (2 of the streak, 5 flaps, this one):\n%s", buf.String())
	}

	if b.Wait(errors.New("listener broken"), nil) {
		t.Fatal("Wait retried an error that does not pass")
	}
}

// Wait returns false as soon as done closes.
func TestBackoffStopsOnDone(t *testing.T) {
	b := Backoff{Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))}
	emfile := os.NewSyscallError("accept4", syscall.EMFILE)
	b.delay, b.failures = MaxDelay, 10 // deep in a streak: a 1s wait
	done := make(chan struct{})
	close(done)
	if b.Wait(emfile, done) {
		t.Fatal("Wait went on after done closed")
	}
}
