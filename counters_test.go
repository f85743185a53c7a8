package ccrusage

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCounterAdd(t *testing.T) {
	tests := []struct {
		name  string
		start int64
		delta int64
		want  int64
	}{
		{"zero", 0, 0, 0},
		{"up", 5, 7, 12},
		{"to the top", math.MaxInt64 - 3, 3, math.MaxInt64},
		{"past the top", math.MaxInt64 - 3, 4, math.MaxInt64},
		{"max plus max", math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"saturated plus one", math.MaxInt64, 1, math.MaxInt64},
		{"saturated plus zero", math.MaxInt64, 0, math.MaxInt64},
		{"down", 12, -5, 7},
		{"down to zero", 5, -5, 0},
		{"below zero", 5, -6, 0},
		{"min delta", 5, math.MinInt64, 0},
		{"saturated stays", math.MaxInt64, -1, math.MaxInt64},
		{"overflowing stays", -7, -1, math.MaxInt64},
		{"overflowing plus zero", -7, 0, math.MaxInt64},
		{"overflowing plus more", math.MinInt64, math.MaxInt64, math.MaxInt64},
		{"largest atomic delta", 5, maxAtomicDelta - 1, 4 + maxAtomicDelta},
		{"smallest large delta", 5, maxAtomicDelta, 5 + maxAtomicDelta},
		{"large past the top", math.MaxInt64 - 3, maxAtomicDelta, math.MaxInt64},
		{"large on saturated", math.MaxInt64, 1 << 62, math.MaxInt64},
		{"large on overflowing", -7, 1 << 62, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			c.v.Store(tt.start)
			assert.Equal(t, tt.want, c.add(tt.delta))
			assert.Equal(t, tt.want, c.load())
		})
	}
}

func TestCounterLoadTakesNegativeAsSaturated(t *testing.T) {
	var c counter
	c.v.Store(-1)
	assert.Equal(t, int64(math.MaxInt64), c.load())
}

func TestCounterIncExactWithoutOverflow(t *testing.T) {
	var c counter
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10_000; i++ {
				c.inc(3)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(8*10_000*3), c.load())
}

// TestCounterIncOverflowsConcurrently makes goroutines add amounts that
// carry the count past math.MaxInt64 many times over, some large enough to
// carry a wrapped value past zero again, and checks that the counter ends
// saturated and that no add returns a negative value.
func TestCounterIncOverflowsConcurrently(t *testing.T) {
	for round := 0; round < 50; round++ {
		var c counter
		c.v.Store(math.MaxInt64 - 100)
		deltas := []int64{1, 7, math.MaxInt64 / 3, math.MaxInt64, 1 << 62}
		var wg sync.WaitGroup
		var bad sync.Map
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					if n := c.inc(deltas[(g+i)%len(deltas)]); n < 0 {
						bad.Store(g, n)
					}
					if i%17 == 0 {
						c.add(-5)
					}
				}
			}(g)
		}
		wg.Wait()
		bad.Range(func(g, n any) bool {
			t.Errorf("goroutine %v: inc returned %v", g, n)
			return true
		})
		assert.Equal(t, int64(math.MaxInt64), c.load(), "round %d", round)
	}
}

// TestCounterSaturatedStaysSaturated makes goroutines add to a saturated
// counter while another reads it. Two overlapping adds of about 2^62 each
// would carry a wrapped value past zero, and a load before the repair would
// return a small count, which evaluateLocked takes for a fall back to INFO.
// No load and no inc may return less than math.MaxInt64.
func TestCounterSaturatedStaysSaturated(t *testing.T) {
	var c counter
	c.v.Store(math.MaxInt64)
	// Each goroutine adds 2^62+1. One add wraps math.MaxInt64 to -2^62,
	// and a second one before the repair would carry that to 1.
	const huge = 1<<62 + 1
	var stop atomic.Bool
	var low atomic.Pointer[int64] // the first value below math.MaxInt64 returned
	report := func(v int64) {
		low.CompareAndSwap(nil, &v)
		stop.Store(true)
	}

	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if n := c.inc(huge); n != math.MaxInt64 {
					report(n)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if v := c.load(); v != math.MaxInt64 {
				report(v)
			}
		}
	}()
	// When two adds can overlap, the race detector widens the window
	// between an add and its repair enough that a run under -race usually
	// fails well within the deadline. Without -race the window is a few
	// instructions wide.
	deadline := time.Now().Add(500 * time.Millisecond)
	for !stop.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if v := low.Load(); v != nil {
		t.Errorf("a saturated counter returned %d, below math.MaxInt64", *v)
	}
	assert.Equal(t, int64(math.MaxInt64), c.load())
}
