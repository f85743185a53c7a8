package ccrusage

import (
	"encoding/json"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Adversarial tests: inputs at the edges of what a caller, a provider or a
// time zone database can produce, each checked against the documented
// behaviour.

// dayStartErrors returns the dates of [from, to) whose Start in loc is not
// the first second of the date, at most limit of them.
func dayStartErrors(loc *time.Location, from, to Date, limit int) []string {
	var bad []string
	for d := from; d.Before(to) && len(bad) < limit; d = d.AddDays(1) {
		start := d.Start(loc)
		if DateOf(start, loc).Before(d) || !DateOf(start.Add(-time.Second), loc).Before(d) {
			bad = append(bad, d.String()+" starts at "+start.String())
		}
	}
	return bad
}

func TestDateStartOddZones(t *testing.T) {
	zones := []string{
		"UTC",
		"America/Los_Angeles",
		"America/Santiago",    // clocks skip midnight in spring
		"America/Havana",      // clocks go back from 01:00 to midnight
		"America/Sao_Paulo",   // skipped midnight until 2019
		"America/St_Johns",    // -03:30
		"Asia/Amman",          // midnight twice a year until 2021
		"Asia/Gaza",           // the same
		"Asia/Jerusalem",      // the same in 2000-2004
		"Asia/Kathmandu",      // +05:45
		"Asia/Tehran",         // +03:30
		"Africa/Abidjan",      // LMT of -00:16:08 until 1912
		"Africa/Casablanca",   // Ramadan daylight saving time
		"Australia/Lord_Howe", // 30-minute daylight saving time
		"Europe/Dublin",       // negative daylight saving time
		"Pacific/Apia",        // skipped 2011-12-30
		"Pacific/Chatham",     // +12:45 and +13:45
		"Pacific/Kiritimati",  // +14, skipped 1994-12-31
		"Antarctica/Casey",    // midnight twice in 2019, 2020 and 2023
	}
	for _, name := range zones {
		t.Run(name, func(t *testing.T) {
			loc := mustLoad(name)
			assert.Empty(t, dayStartErrors(loc, Date{1900, time.January, 1}, Date{2040, time.January, 1}, 5))
		})
	}
}

func TestDayStartWhenMidnightRepeats(t *testing.T) {
	// Jordan moved its clocks back from 01:00 (+03) to 00:00 (+02) on
	// 29 October 2021, so that day has two midnights and starts at the
	// first, 21:00 UTC.
	amman := mustLoad("Asia/Amman")
	firstMidnight := time.Date(2021, time.October, 28, 21, 0, 0, 0, time.UTC)
	tr, clock, _ := newTracker(t, firstMidnight.Add(-time.Hour), Config{Location: amman})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	clock.Set(firstMidnight.Add(30 * time.Minute)) // 00:30 +03, the first 00:30
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	st := status(t, tr, ProviderGemini)
	assert.Equal(t, Date{2021, time.October, 29}, st.Date)
	assert.Equal(t, int64(1), st.Requests.Used)
	assert.True(t, firstMidnight.Equal(st.DayStart), "day start %v", st.DayStart.UTC())
	y := providerSnapshot(t, tr, ProviderGemini).Yesterday
	require.NotNil(t, y)
	assert.Equal(t, int64(1), y.Requests)
	assert.Equal(t, 25*time.Hour, st.ResetsAt.Sub(st.DayStart))
}

func TestDayStartWhenDaySkipped(t *testing.T) {
	// Samoa moved from -10 to +14 at the end of 29 December 2011, so
	// 30 December never happened there and 29 December ended at 10:00 UTC.
	apia := mustLoad("Pacific/Apia")
	tr, clock, _ := newTracker(t, time.Date(2011, time.December, 29, 12, 0, 0, 0, apia), Config{Location: apia})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	st := status(t, tr, ProviderGemini)
	endOfDay := time.Date(2011, time.December, 30, 10, 0, 0, 0, time.UTC)
	assert.True(t, endOfDay.Equal(st.ResetsAt), "resets at %v", st.ResetsAt.UTC())
	assert.Equal(t, 24*time.Hour, st.ResetsAt.Sub(st.DayStart))

	clock.Set(endOfDay.Add(-time.Second))
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	assert.Equal(t, int64(2), status(t, tr, ProviderGemini).Requests.Used)

	clock.Set(endOfDay)
	st = status(t, tr, ProviderGemini)
	assert.Equal(t, Date{2011, time.December, 31}, st.Date)
	assert.Equal(t, int64(0), st.Requests.Used)
	assert.True(t, endOfDay.Equal(st.DayStart), "day start %v", st.DayStart.UTC())
}

func TestYesterdayAcrossSkippedDay(t *testing.T) {
	// In Pacific/Apia, 31 December 2011 followed 29 December.
	apia := mustLoad("Pacific/Apia")
	tr, clock, _ := newTracker(t, time.Date(2011, time.December, 29, 23, 0, 0, 0, apia), Config{Location: apia})
	record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 7})

	clock.Advance(2 * time.Hour) // 01:00 on 31 December
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	p := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, Date{2011, time.December, 31}, p.Date)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, Date{2011, time.December, 29}, p.Yesterday.Date)
	assert.Equal(t, int64(7), p.Yesterday.Tokens)
}

func TestYesterdayNullAfterIdleDay(t *testing.T) {
	tr, clock, _ := newTracker(t, base, Config{})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	clock.Advance(48 * time.Hour)
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	assert.Nil(t, providerSnapshot(t, tr, ProviderGemini).Yesterday)
}

func TestEvaluateQuotaInvalidThresholdsRatio(t *testing.T) {
	cases := []struct {
		name string
		th   Thresholds
	}{
		{"negative warning", Thresholds{Warning: -1}},
		{"warning above one", Thresholds{Warning: 2}},
		{"infinite warning", Thresholds{Warning: math.Inf(1)}},
		{"infinite critical", Thresholds{Critical: math.Inf(1)}},
		{"NaN critical", Thresholds{Critical: math.NaN()}},
		{"warning above critical", Thresholds{Warning: 0.9, Critical: 0.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, used := range []int64{0, 50, 85, 97, 150} {
				q := EvaluateQuota(used, 100, c.th)
				want := EvaluateQuota(used, 100, Thresholds{})
				assert.Equal(t, want, q, "used %d", used)
			}
		})
	}
}

// sharedStore is a Store that keeps everything in memory, like the default,
// and hands the test the Shared value that a real store would use.
type sharedStore struct {
	memoryStore
	shared *Shared
}

func (s *sharedStore) Attach(shared *Shared) error {
	s.shared = shared
	return nil
}

// newSharedTracker returns a Tracker as newTracker does, with the Shared
// value of its store.
func newSharedTracker(t *testing.T, start time.Time, cfg Config) (*Tracker, *Shared, *alertLog) {
	t.Helper()
	store := &sharedStore{}
	cfg.Store = store
	tr, _, log := newTracker(t, start, cfg)
	require.NotNil(t, store.shared)
	return tr, store.shared, log
}

// encodeSnapshot returns tr's snapshot as JSON, failing the test if the
// encoding fails or is not valid JSON.
func encodeSnapshot(t *testing.T, tr *Tracker) []byte {
	t.Helper()
	b, err := json.Marshal(tr.Snapshot())
	require.NoError(t, err)
	require.True(t, json.Valid(b))
	return b
}

func TestSetOthersNegativeCountsAreZero(t *testing.T) {
	tr, shared, _ := newSharedTracker(t, base, limited(ProviderGemini, Limits{Requests: 10, Tokens: 100}))
	record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 5})

	today := DateOf(base, time.UTC)
	require.NoError(t, shared.SetOthers([]Others{{
		Provider: ProviderGemini, Task: TaskDefault, Date: today,
		Counts: Counts{Requests: -1, Failures: -2, InputTokens: -3, EstimatedTokens: math.MinInt64, Tokens: -9},
	}}))

	p := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(0), p.Failures)
	assert.Equal(t, int64(5), p.InputTokens)
	assert.Equal(t, int64(0), p.EstimatedTokens)
	assert.Equal(t, int64(5), p.Tokens)
	assert.Equal(t, int64(1), tr.Snapshot().Totals.Requests)
	st := status(t, tr, ProviderGemini)
	assert.Equal(t, int64(1), st.Requests.Used)
	assert.Equal(t, int64(5), st.Tokens.Used)
	encodeSnapshot(t, tr)
}

func TestSetOthersHugeCountsSaturate(t *testing.T) {
	tr, shared, log := newSharedTracker(t, base, limited(ProviderGemini, Limits{Requests: 100, Tokens: 100}))
	today := DateOf(base, time.UTC)
	huge := Counts{Requests: math.MaxInt64, InputTokens: math.MaxInt64, OutputTokens: math.MaxInt64}

	require.NoError(t, shared.SetOthers([]Others{
		{Provider: ProviderGemini, Task: TaskDefault, Date: today, Counts: huge},
		{Provider: ProviderGemini, Task: TaskThink, Date: today, Counts: huge},
	}))

	st := status(t, tr, ProviderGemini)
	assert.Equal(t, int64(math.MaxInt64), st.Requests.Used)
	assert.Equal(t, int64(math.MaxInt64), st.Tokens.Used)
	assert.Equal(t, LevelCritical, st.Level)
	assert.Equal(t, []Level{LevelCritical}, log.levels())
	assert.Equal(t, int64(math.MaxInt64), tr.Snapshot().Totals.Requests)

	record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})
	assert.Equal(t, []Level{LevelCritical}, log.levels())
	encodeSnapshot(t, tr)
}

func TestSetOthersReplacesSmallerValue(t *testing.T) {
	tr, shared, _ := newSharedTracker(t, base, limited(ProviderGemini, Limits{Requests: 100}))
	today := DateOf(base, time.UTC)
	set := func(requests int64) {
		t.Helper()
		require.NoError(t, shared.SetOthers([]Others{{Provider: ProviderGemini, Task: TaskDefault, Date: today, Counts: Counts{Requests: requests}}}))
	}

	set(math.MaxInt64)
	set(math.MaxInt64 - 1)
	set(7)

	assert.Equal(t, int64(7), status(t, tr, ProviderGemini).Requests.Used)
}

func TestSetOthersOverflowNamesAddUp(t *testing.T) {
	tr, shared, _ := newSharedTracker(t, base, Config{MaxProviders: 1, MaxTasks: 1})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	today := DateOf(base, time.UTC)

	require.NoError(t, shared.SetOthers([]Others{
		{Provider: "a", Task: TaskDefault, Date: today, Counts: Counts{Requests: 3}},
		{Provider: "b", Task: TaskDefault, Date: today, Counts: Counts{Requests: 4}},
		{Provider: ProviderGemini, Task: "x", Date: today, Counts: Counts{Requests: 5}},
		{Provider: ProviderGemini, Task: "y", Date: today, Counts: Counts{Requests: 6}},
	}))

	overflow := providerSnapshot(t, tr, OverflowName)
	assert.Equal(t, int64(7), overflow.Requests)
	gemini := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(1+5+6), gemini.Requests)
	assert.Equal(t, int64(11), gemini.Tasks[OverflowName].Requests)
	assert.Equal(t, int64(12), status(t, tr, ProviderGemini).Requests.Used)
}

func TestOverflowNameRecordedDirectly(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{MaxProviders: 3})
	record(t, tr, OverflowName, OverflowName, Usage{})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{})
	record(t, tr, "past-the-bound", TaskDefault, Usage{})

	var names []string
	for _, p := range tr.Snapshot().Providers {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{OverflowName, ProviderDeepSeek, ProviderGemini}, names)
	assert.Equal(t, int64(2), providerSnapshot(t, tr, OverflowName).Requests)
	assert.Equal(t, int64(1), providerSnapshot(t, tr, ProviderGemini).Requests)
}

func TestNewMaxTasksBound(t *testing.T) {
	cases := []struct {
		maxTasks int
		valid    bool
	}{
		{1, true},
		{maxTasksBound, true},
		{maxTasksBound + 1, false},
		{1 << 40, false},
		{math.MaxInt, false},
	}
	for _, c := range cases {
		tr, err := New(Config{Clock: NewManualClock(base), MaxTasks: c.maxTasks})
		if !c.valid {
			assert.ErrorContains(t, err, "MaxTasks", "MaxTasks %d", c.maxTasks)
			continue
		}
		require.NoError(t, err, "MaxTasks %d", c.maxTasks)
		assert.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}), "MaxTasks %d", c.maxTasks)
	}
}

// raceOnce runs a and b on two goroutines released at the same moment and
// waits for both.
func raceOnce(a, b func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, f := range []func(){a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f()
		}()
	}
	close(start)
	wg.Wait()
}

// The record path compares its new count with a bar that an evaluation
// stores, so a lowered limit and a record at the same moment must not both
// miss the crossing.
func TestLoweredLimitRacingRecordAlerts(t *testing.T) {
	for i := 0; i < 3000; i++ {
		tr, _, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 1000}))
		raceOnce(
			func() { _ = tr.Record(ProviderGemini, TaskDefault, Usage{}) },
			func() { _ = tr.SetLimits(ProviderGemini, Limits{Requests: 1}) },
		)
		require.Equal(t, []Level{LevelCritical}, log.levels(), "iteration %d", i)
	}
}

func TestSetOthersRacingRecordAlerts(t *testing.T) {
	today := DateOf(base, time.UTC)
	for i := 0; i < 3000; i++ {
		tr, shared, log := newSharedTracker(t, base, limited(ProviderGemini, Limits{Requests: 100}))
		raceOnce(
			func() { _ = tr.Record(ProviderGemini, TaskDefault, Usage{}) },
			func() {
				_ = shared.SetOthers([]Others{{Provider: ProviderGemini, Task: TaskDefault, Date: today, Counts: Counts{Requests: 79}}})
			},
		)
		require.Equal(t, []Level{LevelWarning}, log.levels(), "iteration %d", i)
	}
}

func TestConcurrentCrossingAlertsOnce(t *testing.T) {
	for round := 0; round < 50; round++ {
		tr, _, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 1000}))
		for i := 0; i < 780; i++ {
			record(t, tr, ProviderGemini, TaskDefault, Usage{})
		}

		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 50; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_ = tr.Record(ProviderGemini, TaskThink, Usage{InputTokens: 1})
			}()
		}
		close(start)
		wg.Wait()

		require.Equal(t, []Level{LevelWarning}, log.levels(), "round %d", round)
		st := status(t, tr, ProviderGemini)
		require.Equal(t, int64(830), st.Requests.Used, "round %d", round)
		require.Equal(t, int64(50), st.Tokens.Used, "round %d", round)
	}
}
