package ccrusage

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dayEdgeCases are days whose first or last nanosecond is unusual. They
// include days of 23, 24.5 and 25 hours, a skipped and a repeated
// midnight, and the day before a skipped calendar day. The last two end at
// Unix time 0 and in a zone whose offset was then 1:19:32.
var dayEdgeCases = []struct {
	name string
	zone string
	date Date
}{
	{"spring forward", "America/Los_Angeles", Date{2026, time.March, 8}},
	{"fall back", "America/Los_Angeles", Date{2026, time.November, 1}},
	{"skipped midnight", "America/Santiago", Date{2025, time.September, 6}},
	{"repeated midnight", "Asia/Amman", Date{2021, time.October, 28}},
	{"half hour back", "Australia/Lord_Howe", Date{2026, time.April, 5}},
	{"day before skipped day", "Pacific/Apia", Date{2011, time.December, 29}},
	{"ends at Unix zero", "UTC", Date{1969, time.December, 31}},
	{"offset in seconds", "Europe/Amsterdam", Date{1936, time.June, 15}},
}

// TestRecordAtDayEdges records through Tracker.Record and Handle.Record at
// the last nanosecond before a day, its first, its last and the first of
// the next day, and checks each count's date against time.Time.Date in
// the zone.
func TestRecordAtDayEdges(t *testing.T) {
	for _, c := range dayEdgeCases {
		t.Run(c.name, func(t *testing.T) {
			loc := mustLoad(c.zone)
			start, end := c.date.Start(loc), c.date.AddDays(1).Start(loc)
			before, last := start.Add(-time.Nanosecond), end.Add(-time.Nanosecond)
			next := refDateIn(end, loc)
			require.Equal(t, c.date, refDateIn(start, loc))
			require.Equal(t, c.date, refDateIn(last, loc))
			require.True(t, refDateIn(before, loc).Before(c.date))
			require.True(t, c.date.Before(next))

			tr, clock, _ := newTracker(t, before, Config{Providers: []ProviderConfig{{Name: ProviderGemini, Location: loc}}})
			h, err := tr.Handle(ProviderGemini, TaskThink)
			require.NoError(t, err)
			counts := map[Date]int64{}
			var open Request
			for _, now := range []time.Time{before, start, last, end} {
				clock.Set(now)
				date := refDateIn(now, loc)
				record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})
				h.Record(Usage{OutputTokens: 1})
				counts[date] += 2
				if now == last {
					open = h.Begin(5)
					counts[date]++
				}

				st := status(t, tr, ProviderGemini)
				assert.Equal(t, date, st.Date, "at %v", now)
				assert.Equal(t, counts[date], st.Requests.Used, "at %v", now)
			}

			// A request begun at the last nanosecond and settled on the
			// next day counts on its own day.
			require.NoError(t, open.Finish(Usage{InputTokens: 100}))
			p := providerSnapshot(t, tr, ProviderGemini)
			assert.Equal(t, next, p.Date)
			assert.Equal(t, int64(2), p.Requests)
			require.NotNil(t, p.Yesterday)
			assert.Equal(t, c.date, p.Yesterday.Date)
			assert.Equal(t, int64(5), p.Yesterday.Requests)
			assert.Equal(t, int64(102), p.Yesterday.InputTokens)
			assert.Zero(t, p.Yesterday.EstimatedTokens)
			assert.Zero(t, tr.Snapshot().LateUsage)
		})
	}
}

// TestRecordWhileClockCrossesMidnight records on several goroutines that
// each move a shared ManualClock back and forth across the end of a
// 25-hour day before recording, so that most records read a time another
// goroutine set. A record may land on the later day when its clock reading
// is earlier, because the day never moves back, but no record is lost and
// none lands on a day that is not kept.
func TestRecordWhileClockCrossesMidnight(t *testing.T) {
	loc := mustLoad("America/Los_Angeles")
	date := Date{2026, time.November, 1}
	end := date.AddDays(1).Start(loc)
	tr, clock, _ := newTracker(t, end.Add(-time.Second), Config{Providers: []ProviderConfig{{Name: ProviderGemini, Location: loc}}})
	h, err := tr.Handle(ProviderGemini, TaskThink)
	require.NoError(t, err)

	const goroutines, calls = 4, 500
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				offset := time.Duration((g+i)%3-2) * time.Nanosecond // -2, -1 or 0
				clock.Set(end.Add(offset))
				if (g+i)%2 == 0 {
					assert.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{InputTokens: 1}))
				} else {
					h.Record(Usage{InputTokens: 1})
				}
			}
		}(g)
	}
	wg.Wait()
	clock.Set(end.Add(time.Hour))
	record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 1})

	p := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, DateOf(end, loc), p.Date)
	require.NotNil(t, p.Yesterday)
	assert.Equal(t, date, p.Yesterday.Date)
	assert.Equal(t, int64(goroutines*calls+1), p.Requests+p.Yesterday.Requests)
	assert.Equal(t, int64(goroutines*calls+1), p.Tokens+p.Yesterday.Tokens)
	assert.Zero(t, tr.Snapshot().LateUsage)
}
