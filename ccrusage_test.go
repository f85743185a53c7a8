package ccrusage

import (
	"errors"
	"math"
	"strings"
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

func TestRecordCountsByProviderAndTask(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})

	record(t, tr, ProviderDeepSeek, TaskThink, Usage{InputTokens: 100, OutputTokens: 20, CacheReadTokens: 5, CacheCreationTokens: 3})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 10, OutputTokens: 1})
	record(t, tr, ProviderGemini, TaskBackground, Usage{OutputTokens: 7})

	d := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(2), d.Requests)
	assert.Equal(t, int64(110), d.InputTokens)
	assert.Equal(t, int64(21), d.OutputTokens)
	assert.Equal(t, int64(5), d.CacheReadTokens)
	assert.Equal(t, int64(3), d.CacheCreationTokens)
	assert.Equal(t, int64(139), d.Tokens)
	assert.Equal(t, int64(1), d.Tasks[TaskThink].Requests)
	assert.Equal(t, int64(128), d.Tasks[TaskThink].Tokens)
	assert.Equal(t, int64(11), d.Tasks[TaskDefault].Tokens)
	assert.NotContains(t, d.Tasks, TaskBackground)

	s := tr.Snapshot()
	assert.Equal(t, int64(3), s.Totals.Requests)
	assert.Equal(t, int64(146), s.Totals.Tokens)
	assert.Equal(t, int64(7), providerSnapshot(t, tr, ProviderGemini).Tasks[TaskBackground].OutputTokens)
}

func TestRecordEmptyTaskIsDefault(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	record(t, tr, ProviderDeepSeek, "", Usage{InputTokens: 1})
	assert.Equal(t, int64(1), providerSnapshot(t, tr, ProviderDeepSeek).Tasks[TaskDefault].Requests)
}

func TestRecordCustomTaskName(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	record(t, tr, "local-llama", "summarize", Usage{InputTokens: 1})
	assert.Equal(t, int64(1), providerSnapshot(t, tr, "local-llama").Tasks["summarize"].Requests)
}

func TestRecordRejectsEmptyProvider(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})

	err := tr.Record("", TaskDefault, Usage{InputTokens: 5})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalidName))
	assert.Contains(t, err.Error(), `provider name ""`)
	assert.Empty(t, tr.Snapshot().Providers)

	_, err = tr.Begin("", TaskDefault, 5)
	assert.ErrorIs(t, err, ErrInvalidName)
	_, err = tr.Handle("", TaskDefault)
	assert.ErrorIs(t, err, ErrInvalidName)
	_, err = tr.Status("")
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.ErrorIs(t, tr.SetLimits("", Limits{Requests: 1}), ErrInvalidName)
	assert.Empty(t, tr.Snapshot().Providers)
}

func TestRecordRejectsLongNames(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	long := strings.Repeat("x", MaxNameLength+1)

	err := tr.Record(long, TaskDefault, Usage{})
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.Contains(t, err.Error(), "129 bytes")
	assert.ErrorIs(t, tr.Record(ProviderDeepSeek, long, Usage{}), ErrInvalidName)
	assert.Empty(t, tr.Snapshot().Providers)

	record(t, tr, strings.Repeat("y", MaxNameLength), TaskDefault, Usage{})
}

func TestRecordClampsNegativeTokens(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 10})

	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: -50, OutputTokens: 7, CacheReadTokens: -1})

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(2), p.Requests)
	assert.Equal(t, int64(10), p.InputTokens)
	assert.Equal(t, int64(7), p.OutputTokens)
	assert.Equal(t, int64(0), p.CacheReadTokens)
	assert.Equal(t, int64(1), tr.Snapshot().InvalidInputs)
}

func TestRecordSaturatesTokens(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{Providers: []ProviderConfig{{Name: ProviderDeepSeek, Limits: Limits{Tokens: 1000}}}})

	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: math.MaxInt64, OutputTokens: math.MaxInt64})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: math.MaxInt64, CacheReadTokens: 5})
	record(t, tr, ProviderDeepSeek, TaskThink, Usage{InputTokens: math.MaxInt64})

	p := providerSnapshot(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(math.MaxInt64), p.InputTokens)
	assert.Equal(t, int64(math.MaxInt64), p.OutputTokens)
	assert.Equal(t, int64(math.MaxInt64), p.Tokens)
	assert.Equal(t, int64(3), p.Requests)
	assert.Equal(t, LevelCritical, p.Level)

	st := status(t, tr, ProviderDeepSeek)
	assert.Equal(t, int64(math.MaxInt64), st.Tokens.Used)
	assert.Equal(t, int64(0), st.Tokens.Remaining())
}

func TestNameBoundsUseOverflow(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{MaxProviders: 2, MaxTasks: 2})

	for i := 0; i < 5; i++ {
		record(t, tr, "provider-"+string(rune('a'+i)), "task-"+string(rune('a'+i)), Usage{InputTokens: 1})
	}

	var names []string
	for _, p := range tr.Snapshot().Providers {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"_overflow", "provider-a", "provider-b"}, names)
	over := providerSnapshot(t, tr, OverflowName)
	assert.Equal(t, int64(3), over.Requests)
	assert.Equal(t, int64(3), over.Tasks[OverflowName].Requests)
	assert.Equal(t, int64(1), providerSnapshot(t, tr, "provider-b").Tasks["task-b"].Requests)
	assert.Equal(t, int64(5), tr.Snapshot().Totals.Requests)
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"threshold NaN", Config{Thresholds: Thresholds{Warning: math.NaN()}}, "Warning NaN"},
		{"warning above critical", Config{Thresholds: Thresholds{Warning: 0.9, Critical: 0.8}}, "Warning 0.9 must be below Critical 0.8"},
		{"negative max providers", Config{MaxProviders: -1}, "MaxProviders -1"},
		{"negative max tasks", Config{MaxTasks: -3}, "MaxTasks -3"},
		{"unnamed provider", Config{Providers: []ProviderConfig{{}}}, `provider name "" is empty (Providers[0])`},
		{"duplicate provider", Config{Providers: []ProviderConfig{{Name: "a"}, {Name: "a"}}}, `"a" is configured twice`},
		{"reserved name", Config{Providers: []ProviderConfig{{Name: OverflowName}}}, "reserved"},
		{"negative request limit", Config{Providers: []ProviderConfig{{Name: "a", Limits: Limits{Requests: -1}}}}, "request limit -1"},
		{"negative token limit", Config{Providers: []ProviderConfig{{Name: "a", Limits: Limits{Tokens: -2}}}}, "token limit -2"},
		{"too many providers", Config{MaxProviders: 1, Providers: []ProviderConfig{{Name: "a"}, {Name: "b"}}}, "more than MaxProviders 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestNewZeroConfig(t *testing.T) {
	tr, err := New(Config{})
	require.NoError(t, err)
	s := tr.Snapshot()
	assert.Equal(t, Thresholds{Warning: 0.8, Critical: 0.95}, s.Thresholds)
	assert.False(t, s.Persistent)
}

func TestSetLimitsRejectsNegative(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	record(t, tr, ProviderGemini, TaskDefault, Usage{InputTokens: 3})

	err := tr.SetLimits(ProviderGemini, Limits{Requests: -5})

	require.Error(t, err)
	assert.Contains(t, err.Error(), "request limit -5")
	assert.Equal(t, int64(1), providerSnapshot(t, tr, ProviderGemini).Requests)
	assert.Equal(t, Limits{}, providerSnapshot(t, tr, ProviderGemini).Limits)
}

func TestHandleRecords(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	h, err := tr.Handle(ProviderOpenRouter, TaskWebSearch)
	require.NoError(t, err)

	h.Record(Usage{InputTokens: 4})
	r := h.Begin(10)
	require.NoError(t, r.Finish(Usage{OutputTokens: 2}))

	p := providerSnapshot(t, tr, ProviderOpenRouter)
	assert.Equal(t, int64(2), p.Tasks[TaskWebSearch].Requests)
	assert.Equal(t, int64(6), p.Tokens)
}

func TestEstimateTokens(t *testing.T) {
	assert.Equal(t, int64(0), EstimateTokens(""))
	assert.Equal(t, int64(1), EstimateTokens("abc"))
	assert.Equal(t, int64(1), EstimateTokens("abcd"))
	assert.Equal(t, int64(2), EstimateTokens("abcde"))
	assert.Equal(t, int64(1), EstimateTokens("日本語"), "counts characters, not bytes")
	assert.Equal(t, int64(250), EstimateTokens(strings.Repeat("word ", 200)))
}

func TestUsageTotalSaturates(t *testing.T) {
	assert.Equal(t, int64(math.MaxInt64), Usage{InputTokens: math.MaxInt64, OutputTokens: 1}.Total())
	assert.Equal(t, int64(3), Usage{InputTokens: 1, OutputTokens: 2, CacheReadTokens: -9}.Total())
}

func TestRecordRejectsUnprintableNames(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	tests := []struct {
		name, provider, task, wantErr string
	}{
		{"newline in provider", "deep\nseek", TaskDefault, "control character at byte 4"},
		{"escape in task", ProviderDeepSeek, "th\x1bink", "control character at byte 2"},
		{"invalid UTF-8 provider", "gem\xffini", TaskDefault, "not valid UTF-8"},
		{"invalid UTF-8 task", ProviderDeepSeek, "\xc3", "not valid UTF-8"},
		{"leading space", " gemini", TaskDefault, "starts or ends with white space"},
		{"trailing space in task", ProviderDeepSeek, "think ", "starts or ends with white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.Record(tt.provider, tt.task, Usage{InputTokens: 1})
			assert.ErrorIs(t, err, ErrInvalidName)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
	assert.Empty(t, tr.Snapshot().Providers)
	record(t, tr, "zürich-gpu", "résumé", Usage{InputTokens: 1})
}

func TestSetLimitsPastMaxProviders(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{MaxProviders: 1})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{})

	err := tr.SetLimits(ProviderGemini, Limits{Requests: 5})

	assert.ErrorContains(t, err, `provider "gemini": past MaxProviders 1`)
	assert.Equal(t, Limits{}, providerSnapshot(t, tr, OverflowName).Limits)
	require.NoError(t, tr.SetLimits(OverflowName, Limits{Requests: 5}))
	require.NoError(t, tr.SetLimits(ProviderDeepSeek, Limits{Requests: 5}))
}
