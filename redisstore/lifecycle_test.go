package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStoreCloseConcurrently(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	in := newInstance(t, client, ccrusage.Config{Clock: ccrusage.NewManualClock(base)}, Options{FlushInterval: time.Millisecond})

	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				_ = in.tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})
			}
		}()
	}
	wg.Wait()
	errs := make(chan error, 3)
	for g := 0; g < 3; g++ {
		go func() { errs <- in.st.Close() }()
	}
	for g := 0; g < 3; g++ {
		assert.NoError(t, <-errs)
	}
	assert.NoError(t, in.st.Close(), "a fourth call")

	assert.Equal(t, "400", hash(t, client, "{ccrusage}:counts:gemini:2031-03-14")["default:requests"], "Close flushes what is left")
}

func TestStoreSendAlertAfterClose(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	log := &alertLog{}
	cfg := limited(ccrusage.NewManualClock(base), log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 1})
	in := newInstance(t, client, cfg, Options{})
	require.NoError(t, in.st.Close())

	record(t, in.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{})

	assert.Equal(t, []ccrusage.Level{ccrusage.LevelCritical}, log.levels(), "sent at once, without a claim")
	assert.Equal(t, int64(1), in.tr.Snapshot().Store.UnclaimedAlerts)
	flush(t, in.st)
	assert.Equal(t, "1", hash(t, client, "{ccrusage}:counts:gemini:2031-03-14")["default:requests"], "Flush works after Close")
}

func TestStoreSendAlertOtherKinds(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	st, err := New(client, Options{FlushInterval: -1})
	require.NoError(t, err)

	var sent []ccrusage.Alert
	health := ccrusage.Alert{Kind: ccrusage.AlertHealth, Level: ccrusage.LevelCritical}
	st.SendAlert(health, func(a ccrusage.Alert) { sent = append(sent, a) })

	assert.Equal(t, []ccrusage.Alert{health}, sent)
	assert.Zero(t, st.Status().UnclaimedAlerts)
}

func TestStoreAttachOnce(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	in := newInstance(t, client, ccrusage.Config{}, Options{})

	_, err := ccrusage.New(ccrusage.Config{Store: in.st})
	assert.ErrorContains(t, err, "ccrusage: redis store is attached to a Tracker already")

	require.NoError(t, in.st.Close())
	_, err = ccrusage.New(ccrusage.Config{Store: in.st})
	assert.ErrorContains(t, err, "ccrusage: redis store is closed")
}

func TestStoreUnattached(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	st, err := New(client, Options{})
	require.NoError(t, err)

	assert.ErrorContains(t, st.Flush(context.Background()), "redis store is not attached")
	s := st.Status()
	assert.Equal(t, "redis", s.Name)
	assert.False(t, s.Available)
	assert.True(t, s.Approximate)
	assert.NoError(t, st.Close(), "Close without Attach sends nothing")
}

func TestParseReply(t *testing.T) {
	date := ccrusage.Date{Year: 2031, Month: time.March, Day: 14}
	reply := []any{
		int64(1),
		[]any{int64(1), int64(0)},
		[]any{
			"gemini:2031-03-14", []any{"default:requests", "3", "default:input_tokens", "40", "think:requests", "1"},
			"no-date", []any{"default:requests", "5"},
			"deepseek:2031-03-14", []any{"default:requests", "many", "default:color", "7", "nokind", "2", "default:failures", "2"},
		},
	}

	r, err := parseReply(reply, 2)
	require.NoError(t, err)
	assert.True(t, r.applied)
	assert.Equal(t, []bool{true, false}, r.claims)
	assert.Equal(t, map[taskKey]ccrusage.Counts{
		{provider: "gemini", task: "default", date: date}:   {Requests: 3, InputTokens: 40},
		{provider: "gemini", task: "think", date: date}:     {Requests: 1},
		{provider: "deepseek", task: "default", date: date}: {Failures: 2},
	}, r.totals)
}

func TestParseReplyRejectsShape(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   any
		nclaims int
	}{
		{"not an array", "OK", 0},
		{"two parts", []any{int64(1), []any{}}, 0},
		{"claims missing", []any{int64(1), []any{}, []any{}}, 1},
		{"odd totals", []any{int64(1), []any{}, []any{"gemini:2031-03-14"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseReply(tc.reply, tc.nclaims)
			assert.ErrorContains(t, err, "ccrusage: invalid reply from the flush script")
		})
	}
}
