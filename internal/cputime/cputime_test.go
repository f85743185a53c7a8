package cputime

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThreadTimeGrowsWithWork(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread CPU time is read on Linux only")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	start, ok := threadTime()
	require.True(t, ok)
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	end, ok := threadTime()
	require.True(t, ok)

	// The loop spins for 20 ms of wall time. Another job may take the CPU
	// for part of it, so the lower bound is well below that, and the upper
	// bound only catches a wrong unit.
	assert.Greater(t, end-start, time.Millisecond)
	assert.Less(t, end-start, 10*time.Second)
}
