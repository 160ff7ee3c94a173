package accept

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// FirstDelay is the wait after the first failure of a streak.
	FirstDelay = 5 * time.Millisecond
	// MaxDelay caps the doubling waits.
	MaxDelay = time.Second
	// LogEvery is the least time between two log lines of one streak of
	// failures after its first.
	LogEvery = 10 * time.Second
)

// Backoff paces the retries of one accept loop and logs its failures at
// most once every LogEvery (with the count of failures since the last
// line), and the end of a streak of failures whose failures were logged.
// A loop that accepts one connection each time a descriptor frees up thus
// logs a few lines a minute, not two per connection. The zero value (with
// Log set) is ready; it is not safe for concurrent use.
type Backoff struct {
	// Log receives the warnings. Default slog.Default().
	Log *slog.Logger
	// Listener names the loop in logs ("kafka", "amqp").
	Listener string

	// Now and Sleep, when set, replace the clock and the wait (tests).
	Now   func() time.Time
	Sleep func(d time.Duration, done <-chan struct{}) bool

	delay        time.Duration
	failures     int       // in the current streak
	since        time.Time // the streak's first failure
	streakLogged bool      // a failure of the current streak was logged
	logged       time.Time // the last failure logged
	unlogged     int       // failures since that line
}

// Retryable reports whether an Accept error passes with time: descriptor
// or memory exhaustion, an interrupted call, a connection reset or aborted
// in the backlog, a timeout. Any other error (the listener closed, a bad
// socket) ends the loop.
func Retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.EINTR, syscall.EAGAIN, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.EPROTO, syscall.ETIMEDOUT,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Wait decides after a failed Accept: for a retryable error it waits the
// next delay of the streak (returning early, false, if done closes) and
// returns true; for any other error it returns false at once.
func (b *Backoff) Wait(err error, done <-chan struct{}) bool {
	if !Retryable(err) {
		return false
	}
	countFailure(b.Listener)
	now := b.now()
	if b.failures == 0 {
		b.since, b.delay, b.streakLogged = now, FirstDelay, false
	} else {
		b.delay = min(2*b.delay, MaxDelay)
	}
	b.failures++
	b.unlogged++
	if b.logged.IsZero() || now.Sub(b.logged) >= LogEvery {
		b.log().Warn("accepting connections failed; retrying with backoff",
			"listener", b.Listener, "err", err, "failures", b.unlogged,
			"failing_for", now.Sub(b.since).Round(time.Millisecond).String(), "retry_in", b.delay.String())
		b.logged, b.unlogged, b.streakLogged = now, 0, true
	}
	return b.sleep(b.delay, done)
}

// Accepted ends a streak of failures, logging its end if its failures
// were logged.
func (b *Backoff) Accepted() {
	if b.failures == 0 {
		return
	}
	if b.streakLogged {
		b.log().Warn("accepting connections again",
			"listener", b.Listener, "failures", b.failures,
			"after", b.now().Sub(b.since).Round(time.Millisecond).String())
	}
	b.failures, b.delay = 0, 0
}

func (b *Backoff) log() *slog.Logger {
	if b.Log == nil {
		return slog.Default()
	}
	return b.Log
}

func (b *Backoff) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Backoff) sleep(d time.Duration, done <-chan struct{}) bool {
	if b.Sleep != nil {
		return b.Sleep(d, done)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// failures counts the failed Accepts that were retried, by listener, over
// the process's life (the sluice_accept_failures_total metric).
var failures sync.Map // listener name → *atomic.Int64

func countFailure(listener string) {
	c, ok := failures.Load(listener)
	if !ok {
		c, _ = failures.LoadOrStore(listener, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Failures reports how many failed Accepts of the named listener were
// retried since the process started.
func Failures(listener string) int64 {
	if c, ok := failures.Load(listener); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// CountFailures wraps a listener whose accept loop retries on its own (as
// net/http's Server does) so that its retryable Accept errors are counted
// under name.
func CountFailures(ln net.Listener, name string) net.Listener {
	return countingListener{ln, name}
}

type countingListener struct {
	net.Listener
	name string
}

func (l countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil && Retryable(err) {
		countFailure(l.name)
	}
	return nc, err
}
