// Package cputime measures the CPU time of a serial benchmark loop, which
// other jobs on a shared machine disturb less than its wall time.
package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Unit is the unit of the metric that Stop reports.
const Unit = "cpu-ns/op"

// Timer is a measurement of the CPU time of the OS thread it was started
// on.
type Timer struct {
	start time.Duration
	ok    bool
}

// Start locks the calling goroutine to its OS thread and starts measuring
// that thread's CPU time.
func Start() Timer {
	runtime.LockOSThread()
	start, ok := threadTime()
	return Timer{start: start, ok: ok}
}

// Stop reports the thread's CPU time since Start divided by b.N as the
// metric Unit, and unlocks the goroutine from its thread. It reports
// nothing where the thread's CPU time cannot be read.
func (t Timer) Stop(b *testing.B) {
	end, ok := threadTime()
	runtime.UnlockOSThread()
	if t.ok && ok && b.N > 0 {
		b.ReportMetric(float64(end-t.start)/float64(b.N), Unit)
	}
}
