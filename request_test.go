package ccrusage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBeginCountsEstimate(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{Providers: []ProviderConfig{{Name: ProviderDeepSeek, Limits: Limits{Tokens: 1000}}}})

	_, err := tr.Begin(ProviderDeepSeek, TaskDefault, 300)
	require.NoError(t, err)

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(300), p.EstimatedTokens)
	assert.Equal(t, int64(300), p.Tokens)
	assert.Equal(t, int64(300), status(t, tr, ProviderDeepSeek).Tokens.Used)
}

func TestFinishReplacesEstimate(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskThink, 300)
	require.NoError(t, err)

	require.NoError(t, r.Finish(Usage{InputTokens: 120, OutputTokens: 42, CacheReadTokens: 20}))

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(0), p.EstimatedTokens)
	assert.Equal(t, int64(120), p.InputTokens)
	assert.Equal(t, int64(182), p.Tokens)
	assert.Equal(t, int64(182), status(t, tr, ProviderDeepSeek).Tokens.Used)
	assert.Equal(t, int64(1), p.Tasks[TaskThink].Requests)
}

func TestFinishTwiceIsRejected(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 10)
	require.NoError(t, err)
	require.NoError(t, r.Finish(Usage{InputTokens: 5}))

	assert.ErrorIs(t, r.Finish(Usage{InputTokens: 5}), ErrRequestDone)
	assert.ErrorIs(t, r.Fail(), ErrRequestDone)
	assert.ErrorIs(t, r.Fallback(), ErrRequestDone)
	assert.ErrorIs(t, r.FinishUnknown(), ErrRequestDone)
	assert.ErrorIs(t, r.FinishOn(ProviderGemini, Usage{}), ErrRequestDone)

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(5), p.Tokens)
	assert.Equal(t, int64(0), p.Failures)
}

// A settled Request's state is reused by the next Begin; the stale copy must
// not settle the new request.
func TestStaleRequestCannotSettleReusedState(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	first, err := tr.Begin(ProviderDeepSeek, TaskDefault, 10)
	require.NoError(t, err)
	require.NoError(t, first.Finish(Usage{InputTokens: 1}))

	for i := 0; i < 100; i++ {
		next, err := tr.Begin(ProviderDeepSeek, TaskDefault, 10)
		require.NoError(t, err)
		assert.ErrorIs(t, first.Fail(), ErrRequestDone)
		require.NoError(t, next.Finish(Usage{InputTokens: 1}))
	}

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(101), p.Requests)
	assert.Equal(t, int64(0), p.Failures)
}

func TestZeroRequestIsRejected(t *testing.T) {
	var r Request
	assert.ErrorIs(t, r.Finish(Usage{}), ErrRequestDone)
	assert.ErrorIs(t, r.Fail(), ErrRequestDone)
	assert.ErrorIs(t, r.FinishOn(ProviderGemini, Usage{}), ErrRequestDone)
}

func TestUnsettledRequestKeepsEstimate(t *testing.T) {
	tr, clock, _ := newTracker(t, base, Config{})
	_, err := tr.Begin(ProviderDeepSeek, TaskDefault, 75)
	require.NoError(t, err)

	clock.Set(base.AddDate(0, 0, 1))

	y := providerSnapshot(t, tr, ProviderDeepSeek).Yesterday
	require.NotNil(t, y)
	assert.Equal(t, int64(1), y.Requests)
	assert.Equal(t, int64(75), y.EstimatedTokens)
}

func TestFinishAfterMidnightLandsOnBeginDay(t *testing.T) {
	start := time.Date(2026, time.October, 14, 23, 59, 50, 0, time.UTC)
	tr, clock, _ := newTracker(t, start, Config{})
	r, err := tr.Begin(ProviderOpenRouter, TaskDefault, 100)
	require.NoError(t, err)

	clock.Advance(20 * time.Second)
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 1})
	require.NoError(t, r.Finish(Usage{InputTokens: 40, OutputTokens: 2}))

	p := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, Date{2026, time.October, 15}, p.Date)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(1), p.Tokens)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, int64(1), p.Yesterday.Requests)
	assert.Equal(t, int64(42), p.Yesterday.Tokens)
	assert.Equal(t, int64(0), p.Yesterday.EstimatedTokens)
	assert.Equal(t, int64(42), tr.Snapshot().Yesterday.Tokens)
	assert.Equal(t, int64(0), tr.Snapshot().LateUsage)
}

func TestFinishForDroppedDayCountsLate(t *testing.T) {
	tr, clock, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderOpenRouter, TaskDefault, 100)
	require.NoError(t, err)

	clock.Set(base.AddDate(0, 0, 2))
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{})
	clock.Set(base.AddDate(0, 0, 3))
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{})
	require.NoError(t, r.Finish(Usage{InputTokens: 40}))

	p := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, int64(0), p.Tokens)
	assert.Equal(t, int64(1), tr.Snapshot().LateUsage)
}

func TestFailCountsFailureNotRequest(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 10, Tokens: 1000}}}})
	r, err := tr.Begin(ProviderGemini, TaskBackground, 50)
	require.NoError(t, err)

	require.NoError(t, r.Fail())

	p := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(0), p.Requests)
	assert.Equal(t, int64(1), p.Failures)
	assert.Equal(t, int64(0), p.Fallbacks)
	assert.Equal(t, int64(0), p.Tokens)
	st := status(t, tr, ProviderGemini)
	assert.Equal(t, int64(0), st.Requests.Used)
	assert.Equal(t, int64(0), st.Tokens.Used)
}

func TestFallbackCountsOnAbandonedProvider(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderGemini, TaskDefault, 50)
	require.NoError(t, err)

	require.NoError(t, r.Fallback())
	retry, err := tr.Begin(ProviderOpenRouter, TaskDefault, 50)
	require.NoError(t, err)
	require.NoError(t, retry.Finish(Usage{InputTokens: 30, OutputTokens: 5}))

	g := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(0), g.Requests)
	assert.Equal(t, int64(1), g.Failures)
	assert.Equal(t, int64(1), g.Fallbacks)
	o := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, int64(1), o.Requests)
	assert.Equal(t, int64(0), o.Fallbacks)
	assert.Equal(t, int64(35), o.Tokens)
}

func TestFinishOnCountsFallbackAndServingProvider(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskThink, 50)
	require.NoError(t, err)

	require.NoError(t, r.FinishOn(ProviderOpenRouter, Usage{InputTokens: 120, OutputTokens: 42}))

	d := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(0), d.Requests)
	assert.Equal(t, int64(1), d.Failures)
	assert.Equal(t, int64(1), d.Fallbacks)
	assert.Equal(t, int64(0), d.Tokens)
	o := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, int64(1), o.Requests)
	assert.Equal(t, int64(162), o.Tokens)
	assert.Equal(t, int64(1), o.Tasks[TaskThink].Requests)
}

func TestFinishOnSameProviderIsFinish(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskThink, 50)
	require.NoError(t, err)

	require.NoError(t, r.FinishOn(ProviderDeepSeek, Usage{InputTokens: 10}))

	d := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(1), d.Requests)
	assert.Equal(t, int64(0), d.Fallbacks)
	assert.Equal(t, int64(10), d.Tokens)
}

func TestFinishOnInvalidProviderLeavesRequestOpen(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskThink, 50)
	require.NoError(t, err)

	assert.ErrorIs(t, r.FinishOn("", Usage{InputTokens: 10}), ErrInvalidName)
	require.NoError(t, r.Finish(Usage{InputTokens: 10}))

	assert.Equal(t, int64(10), providerSnapshot(t, tr, ProviderDeepSeek).Tokens)
}

func TestFinishOnAfterMidnightUsesBeginDay(t *testing.T) {
	start := time.Date(2026, time.October, 14, 23, 59, 50, 0, time.UTC)
	tr, clock, _ := newTracker(t, start, Config{})
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 1})
	r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 100)
	require.NoError(t, err)

	clock.Advance(time.Minute)
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 1})
	require.NoError(t, r.FinishOn(ProviderOpenRouter, Usage{InputTokens: 40}))

	o := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, int64(1), o.Requests)
	require.NotNil(t, o.Yesterday)
	assert.Equal(t, int64(2), o.Yesterday.Requests)
	assert.Equal(t, int64(41), o.Yesterday.Tokens)
}

func TestFinishUnknownKeepsEstimate(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 64)
	require.NoError(t, err)

	require.NoError(t, r.FinishUnknown())

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(1), p.UnknownUsage)
	assert.Equal(t, int64(64), p.EstimatedTokens)
	assert.Equal(t, int64(64), p.Tokens)
	assert.Equal(t, int64(1), tr.Snapshot().UnknownUsage)
}

func TestBeginClampsNegativeEstimate(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskDefault, -10)
	require.NoError(t, err)
	require.NoError(t, r.Finish(Usage{InputTokens: -3, OutputTokens: 4}))

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(4), p.Tokens)
	assert.Equal(t, int64(0), p.EstimatedTokens)
	assert.Equal(t, int64(2), tr.Snapshot().InvalidInputs)
}

func TestFinishCrossingThresholdAlerts(t *testing.T) {
	tr, _, log := newTracker(t, base, Config{Providers: []ProviderConfig{{Name: ProviderDeepSeek, Limits: Limits{Tokens: 1000}}}})
	r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 100)
	require.NoError(t, err)
	assert.Empty(t, log.all())

	require.NoError(t, r.Finish(Usage{InputTokens: 800, OutputTokens: 50}))

	assert.Equal(t, []Level{LevelWarning}, log.levels())
}

func TestFinishTwoDaysLateCountsLate(t *testing.T) {
	tr, clock, _ := newTracker(t, base, Config{})
	r, err := tr.Begin(ProviderOpenRouter, TaskDefault, 100)
	require.NoError(t, err)

	clock.Advance(49 * time.Hour)
	require.NoError(t, r.Finish(Usage{InputTokens: 40}))

	assert.Equal(t, int64(1), tr.Snapshot().LateUsage)
	p := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, int64(0), p.Requests)
	assert.Nil(t, p.Yesterday)
}
