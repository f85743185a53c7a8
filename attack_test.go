package ccrusage

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
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

// Walks a clock through each zone in 20-minute steps, recording at every
// step: each step must land on its own calendar date, within the reported
// day, with a count that restarts once per date.
func TestEveryDayResetsOnceOddZones(t *testing.T) {
	cases := []struct {
		zone     string
		from, to time.Time // UTC
	}{
		{"Asia/Kathmandu", time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)},
		{"Australia/Lord_Howe", time.Date(2026, time.March, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, time.October, 10, 0, 0, 0, 0, time.UTC)},
		{"America/Santiago", time.Date(2025, time.March, 30, 0, 0, 0, 0, time.UTC), time.Date(2025, time.September, 14, 0, 0, 0, 0, time.UTC)},
		{"America/Havana", time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, time.November, 10, 0, 0, 0, 0, time.UTC)},
		{"Africa/Casablanca", time.Date(2026, time.February, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC)},
		{"Asia/Amman", time.Date(2021, time.October, 20, 0, 0, 0, 0, time.UTC), time.Date(2021, time.November, 5, 0, 0, 0, 0, time.UTC)},
		{"Pacific/Apia", time.Date(2011, time.December, 20, 0, 0, 0, 0, time.UTC), time.Date(2012, time.January, 10, 0, 0, 0, 0, time.UTC)},
		{"Pacific/Chatham", time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, time.April, 10, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.zone, func(t *testing.T) {
			loc := mustLoad(c.zone)
			tr, clock, _ := newTracker(t, c.from, Config{Location: loc})

			counts := map[Date]int64{}
			for now := c.from; now.Before(c.to); now = now.Add(20 * time.Minute) {
				clock.Set(now)
				record(t, tr, ProviderGemini, TaskDefault, Usage{})
				date := DateOf(now, loc)
				counts[date]++

				st := status(t, tr, ProviderGemini)
				require.Equal(t, date, st.Date, "at %v", now)
				require.Equal(t, counts[date], st.Requests.Used, "at %v", now)
				require.False(t, now.Before(st.DayStart), "at %v, day starts %v", now, st.DayStart)
				require.True(t, now.Before(st.ResetsAt), "at %v, day resets %v", now, st.ResetsAt)
			}
		})
	}
}

func TestClockBackAcrossTwoDaysKeepsCounts(t *testing.T) {
	day0 := time.Date(2026, time.October, 14, 12, 0, 0, 0, time.UTC)
	tr, clock, log := newTracker(t, day0, limited(ProviderOpenRouter, Limits{Requests: 10}))
	recordN := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 1})
		}
	}
	recordN(3)
	clock.Set(day0.AddDate(0, 0, 1))
	recordN(2)
	clock.Set(day0.AddDate(0, 0, 2))
	recordN(9)
	require.Equal(t, []Level{LevelWarning}, log.levels())

	clock.Set(day0) // two days back
	recordN(1)

	st := status(t, tr, ProviderOpenRouter)
	assert.Equal(t, Date{2026, time.October, 16}, st.Date, "the day never moves back")
	assert.Equal(t, int64(10), st.Requests.Used)
	assert.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())
	p := providerSnapshot(t, tr, ProviderOpenRouter)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, Date{2026, time.October, 15}, p.Yesterday.Date)
	assert.Equal(t, int64(2), p.Yesterday.Requests)

	clock.Set(day0.AddDate(0, 0, 2).Add(time.Hour))
	recordN(1)
	assert.Equal(t, int64(11), status(t, tr, ProviderOpenRouter).Requests.Used)
	assert.Len(t, log.all(), 2, "no alert repeats")

	clock.Set(day0.AddDate(0, 0, 3))
	recordN(1)
	alerts := log.all()
	require.Len(t, alerts, 3)
	assert.Equal(t, LevelInfo, alerts[2].Level)
	assert.Equal(t, Date{2026, time.October, 17}, alerts[2].Date)
	assert.Equal(t, Date{2026, time.October, 16}, alerts[1].Date)
}

func TestFinishOnAcrossZonesAndMidnight(t *testing.T) {
	// 07:59 in Los Angeles on 15 October is 23:59 in Tokyo.
	begun := time.Date(2026, time.October, 15, 7, 59, 0, 0, losAngeles)
	tr, clock, _ := newTracker(t, begun, Config{Providers: []ProviderConfig{
		{Name: ProviderGemini, Location: losAngeles},
		{Name: ProviderDeepSeek, Location: tokyo},
	}})
	r, err := tr.Begin(ProviderGemini, TaskThink, 40)
	require.NoError(t, err)

	clock.Advance(2 * time.Minute) // 00:01 on 16 October in Tokyo
	require.NoError(t, r.FinishOn(ProviderDeepSeek, Usage{InputTokens: 30}))

	deepseek := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, Date{2026, time.October, 16}, deepseek.Date)
	assert.Equal(t, int64(0), deepseek.Requests)
	require.NotNil(t, deepseek.Yesterday)
	assert.Equal(t, int64(1), deepseek.Yesterday.Requests, "the usage lands on Tokyo's day of the begin")
	assert.Equal(t, int64(30), deepseek.Yesterday.Tasks[TaskThink].InputTokens)
	gemini := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, Date{2026, time.October, 15}, gemini.Date)
	assert.Equal(t, int64(0), gemini.Requests)
	assert.Equal(t, int64(1), gemini.Fallbacks)
	assert.Equal(t, int64(0), gemini.Tokens)
}

// A provider first seen in FinishOn has no earlier day, so a request begun
// before its midnight lands on its current day.
func TestFinishOnNewProviderAfterMidnight(t *testing.T) {
	begun := time.Date(2026, time.October, 14, 23, 59, 0, 0, time.UTC)
	tr, clock, _ := newTracker(t, begun, Config{})
	r, err := tr.Begin(ProviderGemini, TaskDefault, 5)
	require.NoError(t, err)

	clock.Advance(2 * time.Minute)
	require.NoError(t, r.FinishOn(ProviderOpenRouter, Usage{OutputTokens: 9}))

	p := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, Date{2026, time.October, 15}, p.Date)
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(9), p.Tokens)
	assert.Nil(t, p.Yesterday)
}

func TestConcurrentSettleSameRequest(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	const rounds = 200
	var copies []Request
	for round := 0; round < rounds; round++ {
		r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 10)
		require.NoError(t, err)
		copies = append(copies, r)

		settles := []func() error{
			func() error { return r.Finish(Usage{InputTokens: 1}) },
			r.FinishUnknown,
			r.Fail,
			r.Fallback,
			func() error { return r.FinishOn(ProviderGemini, Usage{InputTokens: 1}) },
			func() error { return r.FinishOn(ProviderDeepSeek, Usage{InputTokens: 1}) },
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, 2*len(settles))
		for i := range 2 * len(settles) {
			settle := settles[(i+round)%len(settles)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results <- settle()
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		succeeded := 0
		for err := range results {
			if err == nil {
				succeeded++
			} else {
				require.ErrorIs(t, err, ErrRequestDone)
			}
		}
		require.Equal(t, 1, succeeded, "round %d", round)
	}

	before := encodeSnapshot(t, tr)
	for _, r := range copies {
		assert.ErrorIs(t, r.Fail(), ErrRequestDone)
		assert.ErrorIs(t, r.FinishOn(ProviderAnthropic, Usage{}), ErrRequestDone)
	}
	assert.JSONEq(t, string(before), string(encodeSnapshot(t, tr)), "stale copies change nothing")

	var deepseek, gemini Counts
	for _, p := range tr.Snapshot().Providers {
		switch p.Name {
		case ProviderDeepSeek:
			deepseek = p.Counts
		case ProviderGemini:
			gemini = p.Counts
		}
	}
	// Each round leaves one served request or one failure on DeepSeek; a
	// request served by Gemini counts as a fallback there.
	assert.Equal(t, int64(rounds), deepseek.Requests+deepseek.Failures)
	assert.LessOrEqual(t, gemini.Requests, deepseek.Fallbacks)
	assert.Equal(t, 10*deepseek.UnknownUsage, deepseek.EstimatedTokens)
}

// Stale copies settle while new requests reuse their pooled state.
func TestStaleCopiesRacingReuse(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	var stale []Request
	for i := 0; i < 50; i++ {
		r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 1)
		require.NoError(t, err)
		require.NoError(t, r.Finish(Usage{InputTokens: 1}))
		stale = append(stale, r)
	}

	var wg sync.WaitGroup
	var staleSettled sync.Map
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				r, err := tr.Begin(ProviderDeepSeek, TaskThink, 1)
				if err == nil {
					_ = r.Finish(Usage{OutputTokens: 2})
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				r := stale[i%len(stale)]
				if r.Fail() == nil || r.FinishOn(ProviderGemini, Usage{}) == nil {
					staleSettled.Store(i, true)
				}
			}
		}()
	}
	wg.Wait()

	staleCount := 0
	staleSettled.Range(func(any, any) bool { staleCount++; return true })
	assert.Equal(t, 0, staleCount)
	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(50+4*500), p.Requests)
	assert.Equal(t, int64(0), p.Failures)
	assert.Equal(t, int64(50+2*4*500), p.Tokens)
	assert.Equal(t, int64(0), p.EstimatedTokens)
}

// With a limit of 2, each day's first record announces the recovery and
// the second CRITICAL, across 400 days and two changes of daylight saving
// time a year.
func TestHandleAcrossManyDays(t *testing.T) {
	start := time.Date(2026, time.January, 1, 12, 0, 0, 0, losAngeles)
	tr, clock, log := newTracker(t, start, Config{Providers: []ProviderConfig{
		{Name: ProviderGemini, Location: losAngeles, Limits: Limits{Requests: 2}},
	}})
	h, err := tr.Handle(ProviderGemini, TaskBackground)
	require.NoError(t, err)

	const days = 400
	for i := 0; i < days; i++ {
		clock.Set(start.AddDate(0, 0, i))
		h.Record(Usage{InputTokens: 1})
		h.Begin(1).Finish(Usage{InputTokens: 1})
	}

	alerts := log.all()
	require.Len(t, alerts, 2*days-1)
	for i, a := range alerts {
		day := (i + 1) / 2
		require.Equal(t, DateOf(start.AddDate(0, 0, day), losAngeles), a.Date, "alert %d", i)
		if i%2 == 0 {
			require.Equal(t, LevelCritical, a.Level, "alert %d", i)
		} else {
			require.Equal(t, LevelInfo, a.Level, "alert %d", i)
		}
	}
	p := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(2), p.Tasks[TaskBackground].Requests)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, int64(2), p.Yesterday.Tokens)
}

func TestBoundOfOneConcurrentNames(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{MaxProviders: 1, MaxTasks: 1})
	const goroutines = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := string(rune('a'+g%26)) + string(rune('a'+g/26))
			_ = tr.Record("provider-"+name, "task-"+name, Usage{InputTokens: 1})
		}()
	}
	close(start)
	wg.Wait()

	s := tr.Snapshot()
	require.Len(t, s.Providers, 2)
	assert.Equal(t, OverflowName, s.Providers[0].Name)
	assert.Equal(t, int64(goroutines), s.Totals.Requests)
	assert.Equal(t, int64(goroutines), s.Totals.Tokens)
	tasks := map[string]bool{}
	for _, p := range s.Providers {
		for name := range p.Tasks {
			tasks[name] = true
		}
	}
	assert.Len(t, tasks, 2)
	assert.True(t, tasks[OverflowName])
}

func TestNameEdges(t *testing.T) {
	atBound := strings.Repeat("p", MaxNameLength)
	pastBound := atBound + "p"
	invalidUTF8 := "gem\xffini\xfe"

	tr, _, _ := newTracker(t, base, Config{})
	require.NoError(t, tr.Record(atBound, atBound, Usage{InputTokens: 1}))
	assert.ErrorIs(t, tr.Record(invalidUTF8, TaskDefault, Usage{InputTokens: 1}), ErrInvalidName)
	assert.ErrorIs(t, tr.Record(ProviderGemini, invalidUTF8, Usage{InputTokens: 1}), ErrInvalidName)
	require.NoError(t, tr.Record("gemini-ü", TaskDefault, Usage{InputTokens: 1}))
	require.NoError(t, tr.Record("gemini-日本", "タスク", Usage{InputTokens: 1}))

	assert.ErrorIs(t, tr.Record(pastBound, TaskDefault, Usage{}), ErrInvalidName)
	assert.ErrorIs(t, tr.Record(ProviderGemini, pastBound, Usage{}), ErrInvalidName)
	assert.ErrorIs(t, tr.Record("", TaskDefault, Usage{}), ErrInvalidName)
	_, err := tr.Begin("", TaskDefault, 1)
	assert.ErrorIs(t, err, ErrInvalidName)
	_, err = tr.Handle(pastBound, TaskDefault)
	assert.ErrorIs(t, err, ErrInvalidName)
	_, err = tr.Status(pastBound)
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.ErrorIs(t, tr.SetLimits("", Limits{Requests: 1}), ErrInvalidName)

	r, err := tr.Begin(ProviderGemini, TaskDefault, 3)
	require.NoError(t, err)
	assert.ErrorIs(t, r.FinishOn(pastBound, Usage{}), ErrInvalidName)
	assert.ErrorIs(t, r.FinishOn("", Usage{}), ErrInvalidName)
	require.NoError(t, r.Finish(Usage{InputTokens: 2}), "a rejected FinishOn leaves the request open")

	s := tr.Snapshot()
	assert.Len(t, s.Providers, 4)
	assert.Equal(t, int64(4), s.Totals.Requests)
	assert.Equal(t, int64(5), s.Totals.Tokens)
	assert.Equal(t, int64(1), providerSnapshot(t, tr, atBound).Tasks[atBound].Requests)
	encodeSnapshot(t, tr)
}

func TestSnapshotJSONEveryState(t *testing.T) {
	huge := Usage{InputTokens: math.MaxInt64, OutputTokens: math.MaxInt64}
	cases := []struct {
		name  string
		setUp func(t *testing.T, tr *Tracker, clock *ManualClock)
	}{
		{"no providers", func(*testing.T, *Tracker, *ManualClock) {}},
		{"unlimited", func(t *testing.T, tr *Tracker, _ *ManualClock) {
			record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})
		}},
		{"saturated", func(t *testing.T, tr *Tracker, _ *ManualClock) {
			require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 1, Tokens: math.MaxInt64}))
			record(t, tr, ProviderGemini, TaskDefault, huge)
			record(t, tr, ProviderGemini, TaskThink, huge)
			_, err := tr.Begin(ProviderGemini, TaskThink, math.MaxInt64)
			require.NoError(t, err)
		}},
		{"limits of one", func(t *testing.T, tr *Tracker, _ *ManualClock) {
			require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 1, Tokens: 1}))
			record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1000})
		}},
		{"yesterday and overflow", func(t *testing.T, tr *Tracker, clock *ManualClock) {
			for i := 0; i < DefaultMaxProviders+3; i++ {
				record(t, tr, "p"+strings.Repeat("x", i), TaskDefault, Usage{InputTokens: int64(i)})
			}
			clock.Advance(24 * time.Hour)
			record(t, tr, "p", TaskDefault, Usage{})
		}},
		{"invalid input", func(t *testing.T, tr *Tracker, _ *ManualClock) {
			record(t, tr, "gemini-ü", "タスク", Usage{InputTokens: -1, OutputTokens: math.MinInt64})
			_, err := tr.Begin("gemini-ü", "タスク", -5)
			require.NoError(t, err)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, clock, _ := newTracker(t, base, Config{})
			c.setUp(t, tr, clock)

			b := encodeSnapshot(t, tr)
			assert.NotContains(t, string(b), "NaN")
			assert.NotContains(t, string(b), "Inf")
			var back Snapshot
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tr.Snapshot().Totals, back.Totals, "int64 counts survive the round trip")
		})
	}
}

func TestThresholdEdges(t *testing.T) {
	cases := []struct {
		name   string
		th     Thresholds
		limit  int64
		usages []int64 // tokens of each record
		levels []Level // alerts expected after all records
		final  Level
	}{
		{"limit 1", Thresholds{}, 1, []int64{1}, []Level{LevelCritical}, LevelCritical},
		{"limit 2", Thresholds{}, 2, []int64{1, 1}, []Level{LevelCritical}, LevelCritical},
		{"limit 3", Thresholds{}, 3, []int64{1, 1}, nil, LevelInfo},
		{"limit 5", Thresholds{}, 5, []int64{4, 1}, []Level{LevelWarning, LevelCritical}, LevelCritical},
		{"one millionth", Thresholds{Warning: 1e-6, Critical: 1}, 1_000_000, []int64{1, 999_998}, []Level{LevelWarning}, LevelWarning},
		{"one millionth reaches one", Thresholds{Warning: 1e-6, Critical: 1}, 1_000_000, []int64{1, 999_999}, []Level{LevelWarning, LevelCritical}, LevelCritical},
		{"top millionth", Thresholds{Warning: 0.999999, Critical: 1}, 1_000_000, []int64{999_998, 1}, []Level{LevelWarning}, LevelWarning},
		{"top millionth reaches one", Thresholds{Warning: 0.999999, Critical: 1}, 1_000_000, []int64{999_998, 1, 1}, []Level{LevelWarning, LevelCritical}, LevelCritical},
		{"max limit below", Thresholds{Warning: 1e-6, Critical: 1}, math.MaxInt64, []int64{9_223_372_036_854}, nil, LevelInfo},
		{"max limit warning", Thresholds{Warning: 1e-6, Critical: 1}, math.MaxInt64, []int64{9_223_372_036_854, 1}, []Level{LevelWarning}, LevelWarning},
		{"max limit saturated", Thresholds{}, math.MaxInt64, []int64{math.MaxInt64 - 1, 1, 1}, []Level{LevelCritical}, LevelCritical},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _, log := newTracker(t, base, Config{
				Thresholds: c.th,
				Providers:  []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Tokens: c.limit}}},
			})
			for _, u := range c.usages {
				record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: u})
			}
			assert.Equal(t, c.levels, log.levels())
			st := status(t, tr, ProviderGemini)
			assert.Equal(t, c.final, st.Level)
			assert.Equal(t, c.final, EvaluateQuota(st.Tokens.Used, c.limit, c.th).Level)
		})
	}
}

// Around each threshold of a large limit, where float64 cannot tell the
// counts apart, the ratio must stay on the side of its level.
func TestRatioSideOfLevelAtLargeLimits(t *testing.T) {
	ths := []Thresholds{{}, {Warning: 1e-6, Critical: 1}, {Warning: 0.999999, Critical: 1}, {Warning: 0.333333, Critical: 0.666667}}
	limits := []int64{1 << 53, 1<<53 + 1, 1<<62 + 7, math.MaxInt64 - 1, math.MaxInt64}
	for _, th := range ths {
		full := th.withDefaults()
		ppm, err := th.ppm()
		require.NoError(t, err)
		for _, limit := range limits {
			for _, at := range []int64{countAt(limit, ppm.warning), countAt(limit, ppm.critical)} {
				for _, used := range []int64{at - 1, at, min(at, math.MaxInt64-1) + 1} {
					q := EvaluateQuota(used, limit, th)
					switch q.Level {
					case LevelInfo:
						assert.Less(t, q.Ratio, full.Warning, "%v of %d", used, limit)
					case LevelWarning:
						assert.GreaterOrEqual(t, q.Ratio, full.Warning, "%v of %d", used, limit)
						assert.Less(t, q.Ratio, full.Critical, "%v of %d", used, limit)
					case LevelCritical:
						assert.GreaterOrEqual(t, q.Ratio, full.Critical, "%v of %d", used, limit)
					}
				}
			}
		}
	}
}

func TestSinkEdgeCases(t *testing.T) {
	t.Run("panic with nil", func(t *testing.T) {
		sink := AlertFunc(func(Alert) { panic(nil) })
		tr, err := New(Config{Clock: NewManualClock(base), Sink: sink, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 1}}}})
		require.NoError(t, err)
		require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}))
		assert.Equal(t, int64(1), tr.Snapshot().SinkPanics)
	})
	t.Run("panic from SetOthers", func(t *testing.T) {
		store := &sharedStore{}
		sink := AlertFunc(func(Alert) { panic("sink failure") })
		tr, err := New(Config{Clock: NewManualClock(base), Sink: sink, Store: store, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 10}}}})
		require.NoError(t, err)
		today := DateOf(base, time.UTC)
		require.NoError(t, store.shared.SetOthers([]Others{{Provider: ProviderGemini, Date: today, Counts: Counts{Requests: 10}}}))
		assert.Equal(t, int64(1), tr.Snapshot().SinkPanics)
	})
	t.Run("alert from inside the sink", func(t *testing.T) {
		var tr *Tracker
		var levels []Level
		sink := AlertFunc(func(a Alert) {
			levels = append(levels, a.Level)
			if a.Level == LevelWarning {
				// Lowering the limit from inside the sink announces CRITICAL
				// on this goroutine before the outer Send returns.
				_ = tr.SetLimits(a.Provider, Limits{Requests: 8})
			}
		})
		var err error
		tr, err = New(Config{Clock: NewManualClock(base), Sink: sink, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 10}}}})
		require.NoError(t, err)
		for i := 0; i < 8; i++ {
			require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}))
		}
		assert.Equal(t, []Level{LevelWarning, LevelCritical}, levels)
	})
}

// Every change of this process's counts is returned by exactly one Collect,
// even with Collect, SetOthers and records running at the same time.
func TestCollectConcurrentSumsMatch(t *testing.T) {
	tr, shared, _ := newSharedTracker(t, base, Config{})
	today := DateOf(base, time.UTC)
	var mu sync.Mutex
	collected := map[deltaKey]Counts{}
	collect := func() {
		deltas := shared.Collect()
		mu.Lock()
		defer mu.Unlock()
		for _, d := range deltas {
			key := deltaKey{d.Provider, d.Task, d.Date}
			c := collected[key]
			c.Requests += d.Counts.Requests
			c.Failures += d.Counts.Failures
			c.InputTokens += d.Counts.InputTokens
			c.EstimatedTokens += d.Counts.EstimatedTokens
			collected[key] = c
		}
	}

	others := []Others{{Provider: ProviderGemini, Task: TaskDefault, Date: today, Counts: Counts{Requests: 1}}}
	require.NoError(t, shared.SetOthers(others))

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			provider := []string{ProviderGemini, ProviderDeepSeek}[g%2]
			for i := 0; i < 300; i++ {
				_ = tr.Record(provider, TaskDefault, Usage{InputTokens: 2})
				if r, err := tr.Begin(provider, TaskThink, 7); err == nil && i%2 == 0 {
					_ = r.Fail()
				}
			}
		}()
	}
	var background sync.WaitGroup
	background.Add(2)
	go func() {
		defer background.Done()
		for {
			select {
			case <-stop:
				return
			default:
				collect()
			}
		}
	}()
	go func() {
		defer background.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = shared.SetOthers(others)
			}
		}
	}()
	wg.Wait()
	close(stop)
	background.Wait()
	collect()

	for _, name := range []string{ProviderGemini, ProviderDeepSeek} {
		for _, task := range []string{TaskDefault, TaskThink} {
			c := collected[deltaKey{name, task, today}]
			var own Counts
			p := providerSnapshot(t, tr, name)
			own = p.Tasks[task]
			if name == ProviderGemini && task == TaskDefault {
				own.Requests-- // the others' count from SetOthers
			}
			assert.Equal(t, own.Requests, c.Requests, "%s/%s", name, task)
			assert.Equal(t, own.Failures, c.Failures, "%s/%s", name, task)
			assert.Equal(t, own.InputTokens, c.InputTokens, "%s/%s", name, task)
			assert.Equal(t, own.EstimatedTokens, c.EstimatedTokens, "%s/%s", name, task)
		}
	}
}

// The location of the clock's readings must change no result: only the
// instant counts.
func TestClockReadingLocationChangesNothing(t *testing.T) {
	run := func(loc *time.Location) []string {
		start := time.Date(2026, time.March, 7, 20, 0, 0, 0, losAngeles).In(loc)
		tr, clock, log := newTracker(t, start, Config{Providers: []ProviderConfig{
			{Name: ProviderGemini, Location: losAngeles, Limits: Limits{Requests: 10}},
			{Name: ProviderDeepSeek, Location: mustLoad("Asia/Kathmandu"), Limits: Limits{Requests: 10}},
		}})
		var out []string
		for i := 0; i < 60; i++ {
			clock.Set(clock.Now().Add(97 * time.Minute).In(loc))
			for _, name := range []string{ProviderGemini, ProviderDeepSeek} {
				record(t, tr, name, TaskDefault, Usage{})
				st := status(t, tr, name)
				out = append(out, fmt.Sprint(st.Date, st.Requests.Used, st.DayStart.Unix(), st.ResetsAt.Unix(), st.Level))
			}
		}
		for _, a := range log.all() {
			out = append(out, fmt.Sprint(a.Provider, a.Level, a.Previous, a.Date, a.Time.Unix()))
		}
		return out
	}
	want := run(time.UTC)
	for _, name := range []string{"Asia/Tokyo", "America/St_Johns", "Pacific/Apia", "Asia/Kathmandu"} {
		assert.Equal(t, want, run(mustLoad(name)), name)
	}
}

func TestExtremeClockReadings(t *testing.T) {
	cases := []struct {
		name string
		at   time.Time
		json bool // whether encoding/json can encode times of that year
	}{
		{"zero time", time.Time{}, true},
		{"year 1 in Kathmandu", time.Date(1, time.January, 1, 0, 0, 0, 0, mustLoad("Asia/Kathmandu")), true},
		{"unix zero", time.Unix(0, 0), true},
		{"before 1970", time.Date(1901, time.December, 13, 20, 45, 52, 0, time.UTC), true},
		{"year 9998", time.Date(9998, time.December, 31, 12, 0, 0, 0, time.UTC), true},
		{"year 10000", time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC), false},
		{"far future", time.Unix(1<<62, 0), false},
		{"far past", time.Unix(-1<<62, 0), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, clock, log := newTracker(t, c.at, Config{Location: mustLoad("Australia/Lord_Howe"), Providers: []ProviderConfig{
				{Name: ProviderGemini, Limits: Limits{Requests: 3}},
			}})
			for i := 0; i < 3; i++ {
				record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})
			}
			r, err := tr.Begin(ProviderGemini, TaskThink, 4)
			require.NoError(t, err)
			clock.Advance(24 * time.Hour)
			require.NoError(t, r.Finish(Usage{InputTokens: 2}))
			record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})

			st := status(t, tr, ProviderGemini)
			assert.Equal(t, int64(1), st.Requests.Used)
			assert.Equal(t, DateOf(clock.Now(), st.DayStart.Location()), st.Date)
			assert.Equal(t, []Level{LevelCritical, LevelInfo}, log.levels())
			p := providerSnapshot(t, tr, ProviderGemini)
			require.NotNil(t, p.Yesterday)
			assert.Equal(t, int64(4), p.Yesterday.Requests)
			assert.Equal(t, int64(5), p.Yesterday.Tokens)
			if c.json {
				encodeSnapshot(t, tr)
			}
		})
	}
}

func TestSnapshotJSONOutsideYearRange(t *testing.T) {
	t.Skip("NOTE: encoding/json rejects time.Time outside years 0-9999, so a clock reading late on 9999-12-31 (ResetsAt in year 10000) makes json.Marshal(Snapshot) fail")
	tr, _, _ := newTracker(t, time.Date(9999, time.December, 31, 12, 0, 0, 0, time.UTC), Config{})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	encodeSnapshot(t, tr)
}

// Records and SetLimits calls on many goroutines: the counts stay exact and
// each of WARNING and CRITICAL is announced at most once.
func TestSetLimitsRacingRecords(t *testing.T) {
	tr, _, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 1000}))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				_ = tr.Record(ProviderGemini, TaskDefault, Usage{InputTokens: 1})
				if g == 0 && i%25 == 0 {
					_ = tr.SetLimits(ProviderGemini, Limits{Requests: int64(1000 + 100*(i%3))})
				}
			}
		}()
	}
	wg.Wait()

	st := status(t, tr, ProviderGemini)
	assert.Equal(t, int64(2000), st.Requests.Used)
	assert.Equal(t, int64(2000), st.Tokens.Used)
	fired := map[Level]int{}
	for _, level := range log.levels() {
		fired[level]++
	}
	assert.LessOrEqual(t, fired[LevelWarning], 1)
	assert.Equal(t, 1, fired[LevelCritical])
	assert.Equal(t, LevelCritical, st.Level)
}

func TestRejectedCallAddsNoName(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{MaxProviders: 1, MaxTasks: 1})
	assert.ErrorIs(t, tr.Record("", TaskThink, Usage{}), ErrInvalidName)
	_, err := tr.Begin("", TaskBackground, 1)
	assert.ErrorIs(t, err, ErrInvalidName)
	_, err = tr.Handle(ProviderDeepSeek, strings.Repeat("t", MaxNameLength+1))
	assert.ErrorIs(t, err, ErrInvalidName)

	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	s := tr.Snapshot()
	require.Len(t, s.Providers, 1)
	assert.Equal(t, ProviderGemini, s.Providers[0].Name)
	assert.Equal(t, map[string]Counts{TaskDefault: {Requests: 1}}, s.Providers[0].Tasks)
}

// A FinishOn that loses the race to settle must change nothing: not even
// add the provider it names.
func TestLosingFinishOnAddsNoProvider(t *testing.T) {
	const rounds = 2000
	tr, _, _ := newTracker(t, base, Config{MaxProviders: rounds + 1})
	won := map[string]bool{}
	for round := 0; round < rounds; round++ {
		r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 1)
		require.NoError(t, err)
		name := fmt.Sprintf("p%d", round)
		var finishOnErr error
		raceOnce(
			func() { _ = r.Finish(Usage{}) },
			func() { finishOnErr = r.FinishOn(name, Usage{}) },
		)
		if finishOnErr == nil {
			won[name] = true
		}
	}

	for _, p := range tr.Snapshot().Providers {
		if p.Name != ProviderDeepSeek {
			assert.True(t, won[p.Name], "provider %q added by a FinishOn that lost", p.Name)
		}
	}
}

// A limit lowered just before midnight, while another call starts the new
// day, must hold on the new day.
func TestSetLimitsRacingMidnight(t *testing.T) {
	beforeMidnight := time.Date(2026, time.October, 14, 23, 59, 59, 0, time.UTC)
	for i := 0; i < 2000; i++ {
		tr, clock, log := newTracker(t, beforeMidnight, limited(ProviderGemini, Limits{Requests: 1000}))
		raceOnce(
			func() { _ = tr.SetLimits(ProviderGemini, Limits{Requests: 2}) },
			func() {
				clock.Set(beforeMidnight.Add(2 * time.Second))
				_ = tr.Record(ProviderGemini, TaskDefault, Usage{})
			},
		)
		record(t, tr, ProviderGemini, TaskDefault, Usage{})

		st := status(t, tr, ProviderGemini)
		require.Equal(t, Date{2026, time.October, 15}, st.Date)
		require.Equal(t, int64(2), st.Requests.Limit, "iteration %d", i)
		require.Equal(t, LevelCritical, st.Level, "iteration %d", i)
		require.Equal(t, []Level{LevelCritical}, log.levels(), "iteration %d", i)
	}
}

func TestSetOthersUnknownProviderAndDays(t *testing.T) {
	tr, shared, log := newSharedTracker(t, base, Config{})
	today := DateOf(base, time.UTC)

	err := shared.SetOthers([]Others{
		{Provider: "elsewhere", Task: "route", Date: today, Counts: Counts{Requests: 4, OutputTokens: 9}},
		{Provider: "elsewhere", Task: TaskDefault, Date: today.AddDays(-2), Counts: Counts{Requests: 100}},
		{Provider: "elsewhere", Task: TaskDefault, Date: today.AddDays(1), Counts: Counts{Requests: 100}},
		{Provider: "", Task: TaskDefault, Date: today, Counts: Counts{Requests: 100}},
		{Provider: "other", Task: strings.Repeat("t", MaxNameLength+1), Date: today, Counts: Counts{Requests: 100}},
	})
	assert.ErrorIs(t, err, ErrInvalidName)

	p := providerSnapshot(t, tr, "elsewhere")
	assert.Equal(t, int64(4), p.Requests)
	assert.Equal(t, int64(9), p.Tokens)
	assert.Equal(t, Counts{Requests: 4, OutputTokens: 9, Tokens: 9}, p.Tasks["route"])
	assert.Len(t, tr.Snapshot().Providers, 1, "rejected entries add no provider")
	assert.Empty(t, log.all())
	assert.Empty(t, shared.Collect(), "others' counts are not this process's to collect")
}

func TestSetOthersConcurrentCalls(t *testing.T) {
	tr, shared, _ := newSharedTracker(t, base, Config{})
	today := DateOf(base, time.UTC)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := []string{TaskDefault, TaskThink, TaskBackground, TaskImage}[g]
			for i := 0; i <= 300; i++ {
				_ = shared.SetOthers([]Others{{Provider: ProviderGemini, Task: task, Date: today, Counts: Counts{Requests: int64(i), InputTokens: int64(i * g)}}})
			}
		}()
	}
	wg.Wait()

	st := status(t, tr, ProviderGemini)
	assert.Equal(t, int64(4*300), st.Requests.Used)
	assert.Equal(t, int64(300*(0+1+2+3)), st.Tokens.Used)
	assert.Equal(t, int64(4*300), tr.Snapshot().Totals.Requests)
}

func TestSetOthersOldDayAddsNoProvider(t *testing.T) {
	tr, shared, _ := newSharedTracker(t, base, Config{})
	today := DateOf(base, time.UTC)

	require.NoError(t, shared.SetOthers([]Others{
		{Provider: "ghost", Task: TaskDefault, Date: today.AddDays(-3), Counts: Counts{Requests: 1}},
		{Provider: "future", Task: TaskDefault, Date: today.AddDays(1), Counts: Counts{Requests: 1}},
	}))

	assert.Empty(t, tr.Snapshot().Providers)
}
