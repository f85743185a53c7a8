package ccrusage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// base is the fixed instant tests start from: noon in Los Angeles, a few
// weeks before the end of daylight saving time.
var base = time.Date(2026, time.October, 14, 12, 0, 0, 0, mustLoad("America/Los_Angeles"))

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func TestRecordCountsRequestAndTokens(t *testing.T) {
	clock := NewManualClock(base)
	tr, err := New(Config{Clock: clock})
	require.NoError(t, err)

	require.NoError(t, tr.Record(ProviderDeepSeek, TaskThink, Usage{InputTokens: 100, OutputTokens: 20, CacheReadTokens: 5}))
	s := tr.Snapshot()
	require.Len(t, s.Providers, 1)
	p := s.Providers[0]
	assert.Equal(t, int64(1), p.Requests)
	assert.Equal(t, int64(125), p.Tokens)
	assert.Equal(t, int64(1), p.Tasks[TaskThink].Requests)
}
