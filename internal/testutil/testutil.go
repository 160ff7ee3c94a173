// Package testutil holds the helpers tests of every package share, so that
// each exists once: polling for a condition another goroutine (or another
// process) makes true, instead of sleeping for a guessed time.
package testutil

import (
	"testing"
	"time"
)

// WaitFor and CheckFor look again after 1 ms, then back off to every
// 20 ms: quick for unit tests, and a condition that takes a while (a
// server process answering over HTTP) is not polled in a tight loop.
const (
	firstPoll = time.Millisecond
	maxPoll   = 20 * time.Millisecond
)

// WaitFor polls cond until it holds, and fails the test (naming what it
// waited for) when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	CheckFor(t, timeout, func() error {
		if cond() {
			return nil
		}
		return timedOut(timeout, what)
	})
}

// CheckFor polls cond until it returns nil, and fails the test with its
// last error when timeout passes first.
func CheckFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := firstPoll; ; wait = min(2*wait, maxPoll) {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
			return // for a testing.TB whose Fatal does not stop the goroutine
		}
		time.Sleep(wait)
	}
}

type timeoutError struct {
	timeout time.Duration
	what    string
}

func (e timeoutError) Error() string {
	return "timed out after " + e.timeout.String() + " waiting for " + e.what
}

func timedOut(timeout time.Duration, what string) error { return timeoutError{timeout, what} }
