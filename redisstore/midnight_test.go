package redisstore

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requests returns the requests of task on a provider's day in Redis.
func requests(t *testing.T, in instance, provider, date, task string) int64 {
	t.Helper()
	v := hash(t, in.st.client, "{ccrusage}:counts:"+provider+":"+date)[task+":requests"]
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	return n
}

func TestStoreTrackersStraddlingMidnight(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	before := time.Date(2031, time.March, 14, 23, 59, 50, 0, losAngeles)
	clockA, clockB := ccrusage.NewManualClock(before), ccrusage.NewManualClock(before)
	cfg := ccrusage.Config{Location: losAngeles}
	cfg.Clock = clockA
	a := newInstance(t, client, cfg, Options{})
	cfg.Clock = clockB
	b := newInstance(t, client, cfg, Options{})
	for i := 0; i < 10; i++ {
		record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
		record(t, b.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}
	flush(t, a.st)
	flush(t, b.st)

	// a's clock has passed midnight, b's has not: both write at once, each
	// to its own day.
	clockA.Set(time.Date(2031, time.March, 15, 0, 0, 5, 0, losAngeles))
	var wg sync.WaitGroup
	for _, in := range []instance{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				_ = in.tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
				if i%10 == 0 {
					assert.NoError(t, in.st.Flush(t.Context()))
				}
			}
		}()
	}
	wg.Wait()
	for _, in := range []instance{a, b, a} {
		flush(t, in.st)
	}

	assert.Equal(t, int64(120), requests(t, a, "gemini", "2031-03-14", "default"))
	assert.Equal(t, int64(100), requests(t, a, "gemini", "2031-03-15", "default"))
	assert.Equal(t, int64(100), status(t, a.tr, ccrusage.ProviderGemini).Requests.Used)
	assert.Equal(t, int64(120), status(t, b.tr, ccrusage.ProviderGemini).Requests.Used)
	yesterday := providerSnapshot(t, a.tr, ccrusage.ProviderGemini).Yesterday
	require.NotNil(t, yesterday)
	assert.Equal(t, int64(120), yesterday.Requests, "a still reads the day it left")

	clockB.Set(time.Date(2031, time.March, 15, 0, 0, 10, 0, losAngeles))
	record(t, b.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	flush(t, b.st)
	flush(t, a.st)
	for name, in := range map[string]instance{"a": a, "b": b} {
		t.Run(name, func(t *testing.T) {
			p := providerSnapshot(t, in.tr, ccrusage.ProviderGemini)
			assert.Equal(t, int64(101), p.Requests)
			require.NotNil(t, p.Yesterday)
			assert.Equal(t, int64(120), p.Yesterday.Requests)
		})
	}
}

func TestStoreConcurrentRecordsAcrossMidnight(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(time.Date(2031, time.March, 14, 23, 59, 59, 0, losAngeles))
	cfg := ccrusage.Config{Clock: clock, Location: losAngeles}
	instances := make([]instance, 3)
	for i := range instances {
		instances[i] = newInstance(t, client, cfg, Options{FlushInterval: 2 * time.Millisecond})
		record(t, instances[i].tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
	}

	// Twelve goroutines record while the background goroutines flush, and
	// the clock passes midnight halfway through.
	const perGoroutine = 200
	var done atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 12; g++ {
		in := instances[g%len(instances)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				_ = in.tr.Record(ccrusage.ProviderGemini, ccrusage.TaskThink, ccrusage.Usage{InputTokens: 1})
				if done.Add(1) == 12*perGoroutine/2 {
					clock.Set(time.Date(2031, time.March, 15, 0, 0, 1, 0, losAngeles))
				}
			}
		}()
	}
	wg.Wait()
	for _, in := range instances {
		require.NoError(t, in.st.Close())
	}
	// Flush still works after Close: one more round brings every tracker
	// the final totals of the others.
	for _, in := range instances {
		flush(t, in.st)
	}

	first := requests(t, instances[0], "gemini", "2031-03-14", "think")
	second := requests(t, instances[0], "gemini", "2031-03-15", "think")
	assert.Equal(t, int64(12*perGoroutine), first+second)
	assert.Positive(t, second)
	assert.Equal(t, int64(3), requests(t, instances[0], "gemini", "2031-03-14", "default"))
	for i, in := range instances {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			p := providerSnapshot(t, in.tr, ccrusage.ProviderGemini)
			assert.Equal(t, second, p.Requests)
			assert.Equal(t, second, p.InputTokens)
			require.NotNil(t, p.Yesterday)
			assert.Equal(t, first+3, p.Yesterday.Requests)
			assert.Zero(t, in.tr.Snapshot().Store.Pending)
		})
	}
}
