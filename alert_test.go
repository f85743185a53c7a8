package ccrusage

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func limited(name string, l Limits) Config {
	return Config{Providers: []ProviderConfig{{Name: name, Limits: l}}}
}

func TestAlertsOncePerLevel(t *testing.T) {
	tr, _, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 100}))

	for i := 0; i < 150; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}

	alerts := log.all()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelWarning, alerts[0].Level)
	assert.Equal(t, LevelInfo, alerts[0].Previous)
	assert.Equal(t, int64(80), alerts[0].Requests.Used)
	assert.Equal(t, LevelCritical, alerts[1].Level)
	assert.Equal(t, LevelWarning, alerts[1].Previous)
	assert.Equal(t, int64(95), alerts[1].Requests.Used)
	assert.Equal(t, AlertQuota, alerts[1].Kind)
	assert.Equal(t, ProviderGemini, alerts[1].Provider)
	assert.Equal(t, Date{2026, time.October, 14}, alerts[1].Date)
	assert.Equal(t, base, alerts[1].Time)
	assert.Equal(t, "gemini is CRITICAL (was WARNING): requests 95.0% of 100, tokens 0 (unlimited)", alerts[1].Message)
}

func TestAlertJumpOverBothThresholds(t *testing.T) {
	tr, _, log := newTracker(t, base, limited(ProviderDeepSeek, Limits{Tokens: 1000}))

	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 990})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 100})

	alerts := log.all()
	require.Len(t, alerts, 1)
	assert.Equal(t, LevelCritical, alerts[0].Level)
	assert.Equal(t, LevelInfo, alerts[0].Previous)
	assert.InDelta(t, 0.99, alerts[0].Ratio, 1e-12)
}

func TestAlertHigherOfTwoLimits(t *testing.T) {
	tr, _, log := newTracker(t, base, limited(ProviderDeepSeek, Limits{Requests: 10, Tokens: 1000}))

	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 960})

	require.Equal(t, []Level{LevelCritical}, log.levels())
	st := status(t, tr, ProviderDeepSeek)
	assert.Equal(t, LevelCritical, st.Level)
	assert.Equal(t, LevelInfo, st.Requests.Level)
	assert.InDelta(t, 0.96, st.Ratio, 1e-12)
}

func TestAlertUnlimitedNeverFires(t *testing.T) {
	tr, _, log := newTracker(t, base, Config{})
	for i := 0; i < 1000; i++ {
		record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 1_000_000})
	}
	assert.Empty(t, log.all())
}

func TestReadsNeverAlert(t *testing.T) {
	tr, clock, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 10}))
	for i := 0; i < 9; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}
	require.Equal(t, []Level{LevelWarning}, log.levels())

	clock.Set(base.AddDate(0, 0, 1))
	st := status(t, tr, ProviderGemini)
	tr.Snapshot()

	assert.Equal(t, LevelInfo, st.Level)
	assert.Equal(t, []Level{LevelWarning}, log.levels(), "a read on a new day must not announce the recovery")
}

func TestAlertsRearmEachDay(t *testing.T) {
	tr, clock, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 100}))
	for i := 0; i < 100; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}
	require.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())

	clock.Set(base.AddDate(0, 0, 1))
	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 1}))
	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 100}))

	for i := 0; i < 85; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}
	alerts := log.all()
	require.Len(t, alerts, 4)
	assert.Equal(t, LevelInfo, alerts[2].Level, "the new day first announces the recovery")
	assert.Equal(t, LevelCritical, alerts[2].Previous)
	assert.Equal(t, Date{2026, time.October, 15}, alerts[2].Date)
	assert.Equal(t, LevelWarning, alerts[3].Level)
	assert.Equal(t, Date{2026, time.October, 15}, alerts[3].Date)
}

func TestNewDayFirstRecordAboveWarning(t *testing.T) {
	tr, clock, log := newTracker(t, base, limited(ProviderDeepSeek, Limits{Tokens: 1000}))
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 990})
	require.Equal(t, []Level{LevelCritical}, log.levels())

	clock.Set(base.AddDate(0, 0, 1))
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 850})

	alerts := log.all()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelWarning, alerts[1].Level, "a fresh WARNING fires whatever yesterday's level was")
	assert.Equal(t, LevelCritical, alerts[1].Previous)
	assert.Equal(t, Date{2026, time.October, 15}, alerts[1].Date)
}

func TestNewDayRecoveryAlert(t *testing.T) {
	tr, clock, log := newTracker(t, base, limited(ProviderDeepSeek, Limits{Tokens: 1000}))
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 850})

	clock.Set(base.AddDate(0, 0, 1))
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 10})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 10})

	alerts := log.all()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelInfo, alerts[1].Level)
	assert.Equal(t, LevelWarning, alerts[1].Previous)
	assert.Equal(t, "deepseek is INFO (was WARNING): requests 1 (unlimited), tokens 1.0% of 1000", alerts[1].Message)
}

func TestNoRecoveryWithoutEarlierAlert(t *testing.T) {
	tr, clock, log := newTracker(t, base, limited(ProviderDeepSeek, Limits{Tokens: 1000}))
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 100})
	clock.Set(base.AddDate(0, 0, 1))
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{InputTokens: 100})
	assert.Empty(t, log.all())
}

func TestRaisingLimitRecovers(t *testing.T) {
	tr, _, log := newTracker(t, base, limited(ProviderGemini, Limits{Requests: 10}))
	for i := 0; i < 10; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}
	require.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())

	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 100}))
	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 200}))

	alerts := log.all()
	require.Len(t, alerts, 3)
	assert.Equal(t, LevelInfo, alerts[2].Level)
	assert.Equal(t, LevelCritical, alerts[2].Previous)
	assert.Equal(t, int64(100), alerts[2].Requests.Limit)

	// WARNING was announced today already; crossing it again stays quiet.
	for i := 0; i < 150; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}
	assert.Len(t, log.all(), 3)
}

func TestLoweringLimitAlerts(t *testing.T) {
	tr, _, log := newTracker(t, base, Config{})
	for i := 0; i < 50; i++ {
		record(t, tr, ProviderGemini, TaskDefault, Usage{})
	}
	require.Empty(t, log.all())

	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 60}))
	assert.Equal(t, []Level{LevelWarning}, log.levels())
	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 50}))
	assert.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())

	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 55}))
	assert.Len(t, log.all(), 2, "CRITICAL to WARNING is not announced")
	assert.Equal(t, LevelWarning, status(t, tr, ProviderGemini).Level)
}

func TestSinkPanicIsRecovered(t *testing.T) {
	calls := 0
	sink := AlertFunc(func(a Alert) {
		calls++
		panic("sink failure")
	})
	clock := NewManualClock(base)
	tr, err := New(Config{Clock: clock, Sink: sink, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 10}}}})
	require.NoError(t, err)

	for i := 0; i < 10; i++ {
		require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{InputTokens: 1}))
	}

	assert.Equal(t, 2, calls)
	s := tr.Snapshot()
	assert.Equal(t, int64(2), s.SinkPanics)
	assert.Equal(t, int64(10), s.Providers[0].Requests)
	assert.Equal(t, int64(10), s.Providers[0].Tokens)
}

func TestSinkMayCallBackIntoTracker(t *testing.T) {
	var tr *Tracker
	var seen []Status
	sink := AlertFunc(func(a Alert) {
		st, err := tr.Status(a.Provider)
		if err == nil {
			seen = append(seen, st)
		}
		_ = tr.Record(ProviderOpenRouter, TaskDefault, Usage{})
		_ = tr.SetLimits(ProviderOpenRouter, Limits{Requests: 1000})
		tr.Snapshot()
	})
	var err error
	tr, err = New(Config{Clock: NewManualClock(base), Sink: sink, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 10}}}})
	require.NoError(t, err)

	for i := 0; i < 8; i++ {
		require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}))
	}

	require.Len(t, seen, 1)
	assert.Equal(t, LevelWarning, seen[0].Level)
	assert.Equal(t, int64(1), providerSnapshot(t, tr, ProviderOpenRouter).Requests)
}

func TestBlockingSinkDoesNotStallOthers(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	sink := AlertFunc(func(a Alert) {
		once.Do(func() { close(entered) })
		<-release
	})
	tr, err := New(Config{Clock: NewManualClock(base), Sink: sink, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 1000}}}})
	require.NoError(t, err)
	for i := 0; i < 799; i++ {
		require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}))
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tr.Record(ProviderGemini, TaskDefault, Usage{}) // crosses WARNING and blocks in the sink
	}()
	<-entered

	for i := 0; i < 100; i++ {
		require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}))
	}
	assert.Equal(t, int64(900), status(t, tr, ProviderGemini).Requests.Used)
	assert.Equal(t, int64(900), tr.Snapshot().Totals.Requests)

	close(release)
	<-done
}

func TestSlogSinkLevelsAndKeys(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	sink := NewSlogSink(logger)
	tr, err := New(Config{Clock: NewManualClock(base), Sink: sink, Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 10, Tokens: 1000}}}})
	require.NoError(t, err)

	for i := 0; i < 10; i++ {
		require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{InputTokens: 5}))
	}
	require.NoError(t, tr.SetLimits(ProviderGemini, Limits{Requests: 100}))

	var records []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var r map[string]any
		require.NoError(t, dec.Decode(&r))
		records = append(records, r)
	}
	require.Len(t, records, 3)
	assert.Equal(t, "WARN", records[0]["level"])
	assert.Equal(t, "ERROR", records[1]["level"])
	assert.Equal(t, "INFO", records[2]["level"])

	r := records[1]
	assert.Equal(t, "gemini is CRITICAL (was WARNING): requests 100.0% of 10, tokens 5.0% of 1000", r["msg"])
	assert.Equal(t, "quota", r[SlogKeyKind])
	assert.Equal(t, "gemini", r[SlogKeyProvider])
	assert.Equal(t, "CRITICAL", r[SlogKeyLevel])
	assert.Equal(t, "WARNING", r[SlogKeyPrevious])
	assert.Equal(t, "2026-10-14", r[SlogKeyDate])
	assert.Equal(t, float64(10), r[SlogKeyRequests])
	assert.Equal(t, float64(10), r[SlogKeyRequestLimit])
	assert.Equal(t, float64(50), r[SlogKeyTokens])
	assert.Equal(t, float64(1000), r[SlogKeyTokenLimit])
	assert.Equal(t, float64(1), r[SlogKeyRatio])
	assert.Equal(t, "2026-10-14T12:00:00-07:00", r[SlogKeyAlertTime])
}

func TestSlogSinkHealthAlertOmitsQuota(t *testing.T) {
	var buf bytes.Buffer
	sink := &SlogSink{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}

	sink.Send(Alert{Kind: AlertHealth, Level: LevelCritical, Time: base, Message: "claude-code-router is unavailable"})

	var r map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &r))
	assert.Equal(t, "ERROR", r["level"])
	assert.Equal(t, "ccr_health", r[SlogKeyKind])
	assert.NotContains(t, r, SlogKeyProvider)
	assert.NotContains(t, r, SlogKeyRequests)
}

func TestSlogSinkNilLoggerUsesDefault(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)

	(&SlogSink{}).Send(Alert{Kind: AlertQuota, Provider: "p", Level: LevelWarning, Message: "m"})

	assert.Contains(t, buf.String(), "level=WARN")
}

func TestNilSinkDiscardsAlerts(t *testing.T) {
	tr, err := New(Config{Clock: NewManualClock(base), Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 1}}}})
	require.NoError(t, err)
	require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{}))
	assert.Equal(t, LevelCritical, status(t, tr, ProviderGemini).Level)
}
