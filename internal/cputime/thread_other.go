//go:build !linux

package cputime

import "time"

// threadTime reports that the thread's CPU time cannot be read here.
func threadTime() (time.Duration, bool) { return 0, false }
