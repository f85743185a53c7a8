package redisstore

import (
	"context"
	"testing"

	"github.com/ccrusage/ccrusage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStoreOutageBuffersAndRecovers(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), fastFailure)
	clock := ccrusage.NewManualClock(base)
	a := newInstance(t, client, ccrusage.Config{Clock: clock}, Options{})
	b := newInstance(t, client, ccrusage.Config{Clock: clock}, Options{})
	for i := 0; i < 5; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 1})
	}
	flush(t, a.st)
	flush(t, b.st)
	require.Equal(t, int64(5), status(t, b.tr, ccrusage.ProviderGemini).Requests.Used)

	srv.stop()
	for i := 0; i < 7; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 1})
	}
	assert.Error(t, a.st.Flush(context.Background()))

	down := a.tr.Snapshot()
	assert.False(t, down.Store.Available)
	assert.True(t, down.Store.Approximate)
	assert.True(t, down.Approximate)
	assert.NotEmpty(t, down.Store.LastError)
	assert.Equal(t, base, down.Store.LastSync, "the last successful flush")
	assert.Equal(t, int64(1), down.Store.Pending)
	assert.Equal(t, int64(12), status(t, a.tr, ccrusage.ProviderGemini).Requests.Used, "recording goes on")

	// A change to another key waits behind the batch that failed.
	record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskThink, ccrusage.Usage{InputTokens: 1})
	assert.Error(t, a.st.Flush(context.Background()))
	assert.Equal(t, int64(2), a.tr.Snapshot().Store.Pending)

	srv.start()
	flush(t, a.st)
	flush(t, b.st)

	up := a.tr.Snapshot().Store
	assert.True(t, up.Available)
	assert.False(t, up.Approximate)
	assert.Empty(t, up.LastError)
	assert.Zero(t, up.Pending)
	assert.Zero(t, up.Dropped)
	assert.Equal(t, map[string]string{
		"default:requests":     "12",
		"default:input_tokens": "12",
		"think:requests":       "1",
		"think:input_tokens":   "1",
	}, hash(t, client, "{ccrusage}:counts:gemini:2031-03-14"))
	assert.Equal(t, int64(13), status(t, a.tr, ccrusage.ProviderGemini).Requests.Used)
	assert.Equal(t, int64(13), status(t, b.tr, ccrusage.ProviderGemini).Requests.Used)
}

func TestStoreOutageDropsPastMaxPending(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), fastFailure)
	in := newInstance(t, client, ccrusage.Config{Clock: ccrusage.NewManualClock(base)}, Options{MaxPending: 2})
	srv.stop()

	for _, task := range []string{"one", "two", "three"} {
		record(t, in.tr, ccrusage.ProviderGemini, task, ccrusage.Usage{})
	}
	assert.Error(t, in.st.Flush(context.Background()))
	// "one" is in the batch that failed, which is sent unchanged, so its
	// new change needs a place of its own.
	record(t, in.tr, ccrusage.ProviderGemini, "one", ccrusage.Usage{})
	assert.Error(t, in.st.Flush(context.Background()))

	st := in.tr.Snapshot().Store
	assert.Equal(t, int64(2), st.Pending)
	assert.Equal(t, int64(2), st.Dropped)
	assert.Equal(t, int64(4), status(t, in.tr, ccrusage.ProviderGemini).Requests.Used, "the Tracker still counts what the store dropped")

	srv.start()
	flush(t, in.st)
	assert.Equal(t, map[string]string{
		"one:requests": "1",
		"two:requests": "1",
	}, hash(t, client, "{ccrusage}:counts:gemini:2031-03-14"))
	assert.Equal(t, int64(2), in.tr.Snapshot().Store.Dropped)
}

func TestStoreAlertWaitsForShortOutage(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), fastFailure)
	log := &alertLog{}
	cfg := limited(ccrusage.NewManualClock(base), log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 10})
	a := newInstance(t, client, cfg, Options{SendUnclaimedAfter: 3})
	b := newInstance(t, client, cfg, Options{SendUnclaimedAfter: 3})
	srv.stop()

	for i := 0; i < 8; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}
	for i := 0; i < 2; i++ {
		assert.Error(t, a.st.Flush(context.Background()))
	}
	assert.Empty(t, log.levels(), "the WARNING waits for its claim")

	srv.start()
	flush(t, a.st)
	flush(t, b.st)
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels())
	assert.Zero(t, a.tr.Snapshot().Store.UnclaimedAlerts)
	assert.Equal(t, ccrusage.LevelWarning, status(t, b.tr, ccrusage.ProviderGemini).Level)
}

func TestStoreAlertSentUnclaimedInLongOutage(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), fastFailure)
	log := &alertLog{}
	cfg := limited(ccrusage.NewManualClock(base), log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 10})
	a := newInstance(t, client, cfg, Options{SendUnclaimedAfter: 2})
	b := newInstance(t, client, cfg, Options{SendUnclaimedAfter: 2})
	srv.stop()

	for i := 0; i < 8; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}
	assert.Error(t, a.st.Flush(context.Background()))
	assert.Empty(t, log.levels(), "one failed flush: the WARNING still waits")
	assert.Error(t, a.st.Flush(context.Background()))
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels(), "sent after two failed flushes")

	// With the outage still on, the next alert goes out at once.
	for i := 0; i < 2; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning, ccrusage.LevelCritical}, log.levels())
	assert.Equal(t, int64(2), a.tr.Snapshot().Store.UnclaimedAlerts)

	// Once Redis is back the alerts are claimed after the fact, so b,
	// which now reads the counts, sends neither.
	srv.start()
	flush(t, a.st)
	flush(t, b.st)
	assert.Equal(t, ccrusage.LevelCritical, status(t, b.tr, ccrusage.ProviderGemini).Level)
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning, ccrusage.LevelCritical}, log.levels())
	assert.Equal(t, int64(2), a.tr.Snapshot().Store.UnclaimedAlerts)
	assert.Zero(t, b.tr.Snapshot().Store.UnclaimedAlerts)
}

func TestStoreStartsWhileRedisIsDown(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), fastFailure)
	srv.stop()

	in := newInstance(t, client, ccrusage.Config{Clock: ccrusage.NewManualClock(base)}, Options{})
	st := in.tr.Snapshot().Store
	assert.False(t, st.Available)
	assert.True(t, st.Approximate)
	assert.NotEmpty(t, st.LastError)
	assert.True(t, st.LastSync.IsZero())

	record(t, in.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	srv.start()
	flush(t, in.st)
	assert.Equal(t, "1", hash(t, client, "{ccrusage}:counts:gemini:2031-03-14")["default:requests"])
	assert.True(t, in.tr.Snapshot().Store.Available)
}
