package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStoreTwoTrackersShareTotals(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	log := &alertLog{}
	cfg := limited(clock, log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 100})
	a := newInstance(t, client, cfg, Options{})
	b := newInstance(t, client, cfg, Options{})

	for i := 0; i < 30; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 2})
		record(t, b.tr, ccrusage.ProviderGemini, ccrusage.TaskThink, ccrusage.Usage{InputTokens: 3, OutputTokens: 1})
	}
	// Only b uses DeepSeek: a must read it through the index of days.
	record(t, b.tr, ccrusage.ProviderDeepSeek, ccrusage.TaskBackground, ccrusage.Usage{CacheReadTokens: 7})
	flush(t, a.st)
	flush(t, b.st)
	flush(t, a.st)

	for name, in := range map[string]instance{"a": a, "b": b} {
		t.Run(name, func(t *testing.T) {
			g := providerSnapshot(t, in.tr, ccrusage.ProviderGemini)
			assert.Equal(t, int64(60), g.Requests)
			assert.Equal(t, int64(30*2+30*4), g.Tokens)
			assert.Equal(t, int64(30), g.Tasks[ccrusage.TaskThink].Requests)
			assert.Equal(t, int64(30), g.Tasks[ccrusage.TaskDefault].Requests)
			assert.Equal(t, int64(60), status(t, in.tr, ccrusage.ProviderGemini).Requests.Used)
			d := providerSnapshot(t, in.tr, ccrusage.ProviderDeepSeek)
			assert.Equal(t, int64(1), d.Requests)
			assert.Equal(t, int64(7), d.CacheReadTokens)

			st := in.tr.Snapshot().Store
			assert.Equal(t, "redis", st.Name)
			assert.True(t, st.Persistent)
			assert.True(t, st.Available)
			assert.False(t, st.Approximate)
			assert.Empty(t, st.LastError)
			assert.Equal(t, base, st.LastSync)
			assert.Zero(t, st.Pending)
		})
	}
	assert.Empty(t, log.levels(), "60 of 100 requests raise no alert")

	counts := hash(t, client, "{ccrusage}:counts:gemini:2031-03-14")
	assert.Equal(t, map[string]string{
		"default:requests":     "30",
		"default:input_tokens": "60",
		"think:requests":       "30",
		"think:input_tokens":   "90",
		"think:output_tokens":  "30",
	}, counts)
}

func TestStoreThreeTrackersOneWarning(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	log := &alertLog{}
	cfg := limited(clock, log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 100})
	instances := []instance{
		newInstance(t, client, cfg, Options{}),
		newInstance(t, client, cfg, Options{}),
		newInstance(t, client, cfg, Options{}),
	}

	// Each tracker alone stays at 27 %; together they reach 81 %.
	var wg sync.WaitGroup
	for _, in := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 27; i++ {
				_ = in.tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
			}
		}()
	}
	wg.Wait()
	for round := 0; round < 2; round++ {
		for _, in := range instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, in.st.Flush(context.Background()))
			}()
		}
		wg.Wait()
	}

	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels(), "one WARNING across three trackers")
	for _, in := range instances {
		s := status(t, in.tr, ccrusage.ProviderGemini)
		assert.Equal(t, int64(81), s.Requests.Used)
		assert.Equal(t, ccrusage.LevelWarning, s.Level)
	}
	owner, err := client.Get(context.Background(), "{ccrusage}:alert:gemini:2031-03-14:WARNING").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, owner)

	// The tracker that records the 95th request sends CRITICAL, once.
	for i := 0; i < 14; i++ {
		record(t, instances[1].tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}
	for _, in := range instances {
		flush(t, in.st)
	}
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning, ccrusage.LevelCritical}, log.levels())
}

func TestStoreTrackerRestart(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	log := &alertLog{}
	cfg := limited(clock, log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 10})
	first := newInstance(t, client, cfg, Options{})
	for i := 0; i < 9; i++ {
		record(t, first.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{OutputTokens: 5})
	}
	flush(t, first.st)
	require.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels())
	require.NoError(t, first.st.Close())

	// New reads the day's totals before it returns.
	restarted := newInstance(t, client, cfg, Options{})

	s := status(t, restarted.tr, ccrusage.ProviderGemini)
	assert.Equal(t, int64(9), s.Requests.Used)
	assert.Equal(t, int64(45), s.Tokens.Used)
	assert.Equal(t, ccrusage.LevelWarning, s.Level)
	assert.True(t, restarted.tr.Snapshot().Store.Available)
	flush(t, restarted.st)
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels(), "the WARNING claimed before the restart is not sent again")

	record(t, restarted.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	flush(t, restarted.st)
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning, ccrusage.LevelCritical}, log.levels())
	assert.Equal(t, "10", hash(t, client, "{ccrusage}:counts:gemini:2031-03-14")["default:requests"])
}

func TestStoreSameInstanceIDAfterRestart(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	opts := Options{InstanceID: "host-1"}

	for run := 1; run <= 2; run++ {
		in := newInstance(t, client, ccrusage.Config{Clock: clock}, opts)
		record(t, in.tr, ccrusage.ProviderDeepSeek, ccrusage.TaskDefault, ccrusage.Usage{})
		require.NoError(t, in.st.Close())
	}

	assert.Equal(t, "2", hash(t, client, "{ccrusage}:counts:deepseek:2031-03-14")["default:requests"],
		"the second process's first flush is not taken for the first's")
}

func TestStorePrefixesAreSeparate(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	a := newInstance(t, client, ccrusage.Config{Clock: clock}, Options{Prefix: "service-a"})
	b := newInstance(t, client, ccrusage.Config{Clock: clock}, Options{Prefix: "service-b"})

	record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	flush(t, a.st)
	flush(t, b.st)

	assert.Equal(t, int64(1), status(t, a.tr, ccrusage.ProviderGemini).Requests.Used)
	assert.Equal(t, int64(0), status(t, b.tr, ccrusage.ProviderGemini).Requests.Used)
	assert.Equal(t, "1", hash(t, client, "{service-a}:counts:gemini:2031-03-14")["default:requests"])
}

func TestStoreBackgroundFlush(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	log := &alertLog{}
	cfg := limited(clock, log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 10})
	a := newInstance(t, client, cfg, Options{FlushInterval: 10 * time.Millisecond})
	b := newInstance(t, client, cfg, Options{FlushInterval: 10 * time.Millisecond})

	for i := 0; i < 4; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
		record(t, b.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}

	for _, in := range []instance{a, b} {
		assert.Eventually(t, func() bool {
			return status(t, in.tr, ccrusage.ProviderGemini).Requests.Used == 8
		}, 5*time.Second, 10*time.Millisecond)
	}
	assert.Eventually(t, func() bool {
		return len(log.levels()) == 1
	}, 5*time.Second, 10*time.Millisecond, "one WARNING, claimed by the background goroutine")
	require.NoError(t, a.st.Close())
	require.NoError(t, b.st.Close())
	assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels())
}
