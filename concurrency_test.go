package ccrusage

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConcurrentThresholdCrossing(t *testing.T) {
	tr, _, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 100, Tokens: 1_000_000}))
	for i := 0; i < 70; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 3})
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_ = tr.Record(ProviderGemini, TaskThink, Usage{InputTokens: 3, OutputTokens: 1})
		}()
	}
	close(start)
	wg.Wait()

	// The goroutine that reaches 80 may read the count only after others
	// have taken it past 95, and then announces one jump to CRITICAL.
	assert.Contains(t, [][]Level{{LevelWarning, LevelCritical}, {LevelCritical}}, log.levels())
	p := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(120), p.Requests)
	assert.Equal(t, int64(70*3+50*4), p.Tokens)
	assert.Equal(t, int64(50), p.Tasks[TaskThink].Requests)
	assert.Equal(t, int64(120), status(t, tr, ProviderGemini).Requests.Used)
}

func TestConcurrentMixedCalls(t *testing.T) {
	tr, clock, log := newTracker(t, time.Date(2026, time.October, 14, 23, 59, 59, 0, time.UTC),
		limited(ProviderDeepSeek, Limits{Requests: 1000}))
	const goroutines, perGoroutine = 8, 200

	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			provider := []string{ProviderDeepSeek, ProviderGemini}[g%2]
			for i := 0; i < perGoroutine; i++ {
				switch i % 4 {
				case 0:
					_ = tr.Record(provider, TaskDefault, Usage{InputTokens: 1})
				case 1:
					r, err := tr.Begin(provider, TaskThink, 5)
					if err == nil {
						_ = r.Finish(Usage{OutputTokens: 1})
					}
				case 2:
					r, err := tr.Begin(provider, TaskBackground, 5)
					if err == nil {
						_ = r.Fail()
					}
				case 3:
					_, _ = tr.Status(provider)
					tr.Snapshot()
				}
				if g == 0 && i == perGoroutine/2 {
					clock.Advance(time.Second) // midnight, while others record
				}
			}
		}(g)
	}
	wg.Wait()

	s := tr.Snapshot()
	var requests, failures, tokens int64
	for _, p := range s.Providers {
		requests += p.Requests
		failures += p.Failures
		tokens += p.Tokens
		if p.Yesterday != nil {
			requests += p.Yesterday.Requests
			failures += p.Yesterday.Failures
			tokens += p.Yesterday.Tokens
		}
	}
	perKind := int64(goroutines * perGoroutine / 4)
	assert.Equal(t, 2*perKind, requests)
	assert.Equal(t, perKind, failures)
	assert.Equal(t, 2*perKind, tokens)
	assert.Empty(t, log.all())
}

func TestConcurrentDoubleSettle(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	for i := 0; i < 100; i++ {
		r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 10)
		require.NoError(t, err)
		var wg sync.WaitGroup
		results := make(chan error, 3)
		for _, settle := range []func() error{
			func() error { return r.Finish(Usage{InputTokens: 1}) },
			r.Fail,
			func() error { return r.FinishOn(ProviderGemini, Usage{InputTokens: 1}) },
		} {
			wg.Add(1)
			go func(settle func() error) {
				defer wg.Done()
				results <- settle()
			}(settle)
		}
		wg.Wait()
		close(results)
		succeeded := 0
		for err := range results {
			if err == nil {
				succeeded++
			}
		}
		require.Equal(t, 1, succeeded)
	}

	s := tr.Snapshot()
	d := providerSnapshot(t, tr, ProviderDeepSeek)
	var gemini int64
	for _, p := range s.Providers {
		if p.Name == ProviderGemini {
			gemini = p.Requests
		}
	}
	assert.Equal(t, int64(100), d.Requests+d.Failures-d.Fallbacks+gemini)
	assert.Equal(t, int64(0), d.EstimatedTokens)
}

func TestManualClockConcurrentUse(t *testing.T) {
	clock := NewManualClock(base)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				clock.Advance(time.Second)
				clock.Now()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, base.Add(400*time.Second), clock.Now())
}
