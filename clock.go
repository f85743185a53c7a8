package ccrusage

import (
	"sync"
	"time"
)

// Clock returns the current time. A Tracker reads it once per call and
// derives every calendar day from the result, so a Clock is all a test needs
// to move a Tracker across midnight. A nil Clock in Config means the real
// clock. Every goroutine that records calls Now, so it must be safe for
// concurrent use, and it runs on every record, so it should be cheap.
type Clock interface {
	Now() time.Time
}

// realClock is the system clock, the only place the package reads it.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// now reads tr's clock. The real clock is read directly, not through the
// Clock interface: an indirect call cannot be inlined and costs a few
// nanoseconds on every record.
func (tr *Tracker) now() time.Time {
	if tr.realTime {
		return time.Now()
	}
	return tr.clock.Now()
}

// ManualClock is a Clock for tests that moves only through Set and Advance.
// It is safe for concurrent use. The zero value reads as the zero time, and
// NewManualClock starts it at a given instant.
type ManualClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewManualClock returns a ManualClock set to t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t, forwards or backwards.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock by d, which may be negative, and returns the new
// time. Advancing by 24 hours does not always reach the next calendar day:
// across a change to or from daylight saving time a day lasts 23 or 25 hours.
func (c *ManualClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

var (
	_ Clock = realClock{}
	_ Clock = (*ManualClock)(nil)
)
