package ccrusage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProviderZonesResetSeparately(t *testing.T) {
	// 23:30 UTC on 14 October is 16:30 in Los Angeles.
	start := time.Date(2026, time.October, 14, 23, 30, 0, 0, time.UTC)
	tr, clock, _ := newTracker(t, start, Config{Providers: []ProviderConfig{
		{Name: ProviderGemini, Location: losAngeles},
		{Name: ProviderOpenRouter},
	}})
	record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 1})

	clock.Advance(time.Hour) // 00:30 UTC, 17:30 in Los Angeles

	g := status(t, tr, ProviderGemini)
	assert.Equal(t, Date{2026, time.October, 14}, g.Date)
	assert.Equal(t, int64(1), g.Requests.Used)
	assert.Equal(t, "America/Los_Angeles", g.Zone)
	assert.Equal(t, time.Date(2026, time.October, 15, 7, 0, 0, 0, time.UTC), g.ResetsAt.UTC())
	o := status(t, tr, ProviderOpenRouter)
	assert.Equal(t, Date{2026, time.October, 15}, o.Date)
	assert.Equal(t, int64(0), o.Requests.Used)
	assert.Equal(t, time.Date(2026, time.October, 15, 0, 0, 0, 0, time.UTC), o.DayStart)

	clock.Set(time.Date(2026, time.October, 15, 7, 0, 0, 0, time.UTC)) // midnight in Los Angeles
	assert.Equal(t, int64(0), status(t, tr, ProviderGemini).Requests.Used)
	assert.Equal(t, Date{2026, time.October, 15}, status(t, tr, ProviderGemini).Date)
}

func TestTrackerLocationIsDefaultZone(t *testing.T) {
	start := time.Date(2026, time.October, 14, 14, 59, 0, 0, time.UTC) // 23:59 in Tokyo
	tr, clock, _ := newTracker(t, start, Config{Location: tokyo})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 1})

	clock.Advance(2 * time.Minute)

	st := status(t, tr, ProviderDeepSeek)
	assert.Equal(t, Date{2026, time.October, 15}, st.Date)
	assert.Equal(t, int64(0), st.Requests.Used)
	assert.Equal(t, "Asia/Tokyo", st.Zone)
	unknown := status(t, tr, "never-seen")
	assert.Equal(t, Date{2026, time.October, 15}, unknown.Date)
}

func TestFallBackDayHas25Hours(t *testing.T) {
	// Daylight saving time ends in Los Angeles on 1 November 2026.
	start := time.Date(2026, time.November, 1, 0, 30, 0, 0, losAngeles)
	tr, clock, _ := newTracker(t, start, Config{Providers: []ProviderConfig{
		{Name: ProviderGemini, Location: losAngeles, Limits: Limits{Requests: 1000}},
	}})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	st := status(t, tr, ProviderGemini)
	assert.Equal(t, 25*time.Hour, st.ResetsAt.Sub(st.DayStart))

	clock.Advance(24 * time.Hour) // 23:30 PST, still 1 November
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	assert.Equal(t, int64(2), status(t, tr, ProviderGemini).Requests.Used)
	assert.Equal(t, Date{2026, time.November, 1}, status(t, tr, ProviderGemini).Date)

	clock.Advance(time.Hour) // 00:30 on 2 November
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	st = status(t, tr, ProviderGemini)
	assert.Equal(t, Date{2026, time.November, 2}, st.Date)
	assert.Equal(t, int64(1), st.Requests.Used)
	y := providerSnapshot(t, tr, ProviderGemini).Yesterday
	require.NotNil(t, y)
	assert.Equal(t, int64(2), y.Requests)
}

func TestSpringForwardDayHas23Hours(t *testing.T) {
	// Daylight saving time starts in Los Angeles on 8 March 2026.
	start := time.Date(2026, time.March, 8, 0, 30, 0, 0, losAngeles)
	tr, clock, _ := newTracker(t, start, Config{Location: losAngeles})
	record(t, tr, ProviderGemini, TaskDefault, Usage{})

	st := status(t, tr, ProviderGemini)
	assert.Equal(t, 23*time.Hour, st.ResetsAt.Sub(st.DayStart))

	clock.Advance(22 * time.Hour) // 23:30 PDT, still 8 March
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	assert.Equal(t, int64(2), status(t, tr, ProviderGemini).Requests.Used)

	clock.Advance(time.Hour) // 00:30 on 9 March, 23 hours after the first record
	record(t, tr, ProviderGemini, TaskDefault, Usage{})
	st = status(t, tr, ProviderGemini)
	assert.Equal(t, Date{2026, time.March, 9}, st.Date)
	assert.Equal(t, int64(1), st.Requests.Used)
}

// Walks a clock across a whole year in Los Angeles, recording every 20
// minutes: every calendar day must get its own reset, exactly once.
func TestEveryDayResetsOnceAcrossYear(t *testing.T) {
	start := time.Date(2026, time.January, 1, 0, 10, 0, 0, losAngeles)
	tr, clock, _ := newTracker(t, start, Config{Location: losAngeles})

	days := map[Date]int64{}
	for now := start; now.Year() == 2026; now = now.Add(20 * time.Minute) {
		clock.Set(now)
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
		st := status(t, tr, ProviderGemini)
		require.Equal(t, DateOf(now, losAngeles), st.Date, "at %v", now)
		days[st.Date] = st.Requests.Used
	}

	assert.Len(t, days, 365)
	assert.Equal(t, int64(69), days[Date{2026, time.March, 8}], "23-hour day")
	assert.Equal(t, int64(75), days[Date{2026, time.November, 1}], "25-hour day")
	assert.Equal(t, int64(72), days[Date{2026, time.June, 1}])
}

func TestIdleAcrossNewYear(t *testing.T) {
	start := time.Date(2026, time.December, 31, 22, 0, 0, 0, time.UTC)
	tr, clock, _ := newTracker(t, start, limited(ProviderOpenRouter, Limits{Requests: 50}))
	for i := 0; i < 45; i++ {
		record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 2})
	}

	clock.Set(time.Date(2027, time.January, 1, 9, 0, 0, 0, time.UTC))

	st := status(t, tr, ProviderOpenRouter)
	assert.Equal(t, Date{2027, time.January, 1}, st.Date)
	assert.Equal(t, int64(0), st.Requests.Used)
	assert.Equal(t, LevelInfo, st.Level)
	p := providerSnapshot(t, tr, ProviderOpenRouter)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, Date{2026, time.December, 31}, p.Yesterday.Date)
	assert.Equal(t, int64(45), p.Yesterday.Requests)
	assert.Equal(t, int64(90), tr.Snapshot().Yesterday.Tokens)
}

func TestIdleForAWeek(t *testing.T) {
	tr, clock, _ := newTracker(t, base, Config{})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 2})

	clock.Set(base.AddDate(0, 0, 7))

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(0), p.Requests)
	assert.Nil(t, p.Yesterday, "the last day kept is a week old, not yesterday")
	assert.Equal(t, Counts{}, tr.Snapshot().Yesterday)
}

func TestClockSteppingBackKeepsDay(t *testing.T) {
	start := time.Date(2026, time.October, 14, 23, 59, 0, 0, time.UTC)
	tr, clock, log := newTracker(t, start, limited(ProviderOpenRouter, Limits{Requests: 10}))
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{})
	clock.Advance(2 * time.Minute) // 00:01 on 15 October
	for i := 0; i < 9; i++ {
		record(t, tr, ProviderOpenRouter, TaskDefault, Usage{})
	}
	require.Equal(t, []Level{LevelWarning}, log.levels())

	clock.Advance(-10 * time.Minute) // 23:51 on 14 October
	record(t, tr, ProviderOpenRouter, TaskDefault, Usage{})

	st := status(t, tr, ProviderOpenRouter)
	assert.Equal(t, Date{2026, time.October, 15}, st.Date, "the current day never moves back")
	assert.Equal(t, int64(10), st.Requests.Used)
	assert.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())
	p := providerSnapshot(t, tr, ProviderOpenRouter)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, int64(1), p.Yesterday.Requests)

	clock.Advance(-time.Hour)
	for i := 0; i < 5; i++ {
		record(t, tr, ProviderOpenRouter, TaskDefault, Usage{})
	}
	assert.Equal(t, int64(15), status(t, tr, ProviderOpenRouter).Requests.Used)
	assert.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels(), "no alert repeats")
}

// The host's zone must change no result: the library never reads
// time.Local.
func TestHostZoneChangesNothing(t *testing.T) {
	run := func() []byte {
		start := time.Date(2026, time.October, 14, 23, 30, 0, 0, time.UTC)
		tr, clock, _ := newTracker(t, start, limited(ProviderOpenRouter, Limits{Requests: 10}))
		record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 3})
		clock.Advance(time.Hour)
		record(t, tr, ProviderOpenRouter, TaskDefault, Usage{InputTokens: 4})
		b, err := json.Marshal(tr.Snapshot())
		require.NoError(t, err)
		return b
	}
	want := run()

	old := time.Local
	defer func() { time.Local = old }()
	time.Local = mustLoad("Pacific/Kiritimati") // UTC+14
	assert.JSONEq(t, string(want), string(run()))
	time.Local = mustLoad("Pacific/Pago_Pago") // UTC-11
	assert.JSONEq(t, string(want), string(run()))
}

func TestDateArithmetic(t *testing.T) {
	d := Date{2026, time.December, 31}
	assert.Equal(t, Date{2027, time.January, 1}, d.AddDays(1))
	assert.Equal(t, Date{2026, time.December, 30}, d.AddDays(-1))
	assert.Equal(t, Date{2028, time.March, 1}, Date{2028, time.February, 28}.AddDays(2))
	assert.True(t, d.Before(d.AddDays(1)))
	assert.False(t, d.Before(d))
	assert.True(t, Date{2026, time.November, 30}.Before(d))
	assert.True(t, Date{2025, time.December, 31}.Before(d))
	assert.True(t, Date{}.IsZero())
	assert.Equal(t, "2026-12-31", d.String())
}

func TestDateText(t *testing.T) {
	b, err := json.Marshal(Date{2026, time.March, 8})
	require.NoError(t, err)
	assert.Equal(t, `"2026-03-08"`, string(b))
	var d Date
	require.NoError(t, json.Unmarshal(b, &d))
	assert.Equal(t, Date{2026, time.March, 8}, d)
	assert.ErrorContains(t, d.UnmarshalText([]byte("08/03/2026")), `"08/03/2026"`)
}

func TestDateStartSkippedMidnight(t *testing.T) {
	// Chile moved its clocks from 00:00 to 01:00 on 7 September 2025, so
	// that day starts at 01:00 local time.
	santiago := mustLoad("America/Santiago")
	d := Date{2025, time.September, 7}

	start := d.Start(santiago)

	assert.Equal(t, d, DateOf(start, santiago))
	assert.Equal(t, Date{2025, time.September, 6}, DateOf(start.Add(-time.Second), santiago))
	assert.Equal(t, 1, start.In(santiago).Hour())
}

func TestDateStartNilLocationIsUTC(t *testing.T) {
	d := Date{2026, time.May, 5}
	assert.Equal(t, time.Date(2026, time.May, 5, 0, 0, 0, 0, time.UTC), d.Start(nil))
	assert.Equal(t, d, DateOf(time.Date(2026, time.May, 5, 23, 0, 0, 0, time.UTC), nil))
}
