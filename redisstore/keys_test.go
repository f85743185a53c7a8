package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expireAt returns the absolute expiry of key, failing the test when the key
// is missing or has none.
func expireAt(t *testing.T, client redis.UniversalClient, key string) time.Time {
	t.Helper()
	ms, err := client.Do(context.Background(), "PEXPIRETIME", key).Int64()
	require.NoError(t, err)
	require.Positive(t, ms, "PEXPIRETIME %s: -1 means no expiry, -2 no key", key)
	return time.UnixMilli(ms).UTC()
}

func TestStoreKeyExpiryWestOfUTC(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)

	// 22:00 in Los Angeles is already the next day in UTC.
	now := time.Date(2031, time.March, 14, 22, 0, 0, 0, losAngeles)
	dayEnd := time.Date(2031, time.March, 15, 0, 0, 0, 0, losAngeles)
	require.Equal(t, time.Date(2031, time.March, 15, 7, 0, 0, 0, time.UTC), dayEnd.UTC())

	for _, tc := range []struct {
		name  string
		grace time.Duration
		want  time.Duration
	}{
		{"default grace", 0, DefaultGrace},
		{"six hours", 6 * time.Hour, 6 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "grace-" + tc.want.String()
			log := &alertLog{}
			cfg := limited(ccrusage.NewManualClock(now), log, ccrusage.ProviderGemini, losAngeles, ccrusage.Limits{Tokens: 100})
			in := newInstance(t, client, cfg, Options{Prefix: prefix, Grace: tc.grace})

			// A first increment above 1 gets its expiry too.
			record(t, in.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 500})
			flush(t, in.st)

			counts := "{" + prefix + "}:counts:gemini:2031-03-14"
			assert.Equal(t, "500", hash(t, client, counts)["default:input_tokens"])
			assert.Equal(t, dayEnd.Add(tc.want).UTC(), expireAt(t, client, counts))
			n, err := client.Exists(context.Background(), "{"+prefix+"}:counts:gemini:2031-03-15").Result()
			require.NoError(t, err)
			assert.Zero(t, n, "no key under the UTC date")

			days := "{" + prefix + "}:days"
			score, err := client.ZScore(context.Background(), days, "gemini:2031-03-14").Result()
			require.NoError(t, err)
			assert.Equal(t, float64(dayEnd.UnixMilli()), score)
			assert.Equal(t, dayEnd.Add(tc.want).UTC(), expireAt(t, client, days))

			require.Equal(t, []ccrusage.Level{ccrusage.LevelCritical}, log.levels())
			claim := expireAt(t, client, "{"+prefix+"}:alert:gemini:2031-03-14:CRITICAL")
			assert.Equal(t, time.Date(2031, time.March, 15, 12, 0, 0, 0, time.UTC).Add(tc.want), claim)
			assert.False(t, claim.Before(dayEnd.Add(tc.want)), "the claim outlives the counts")

			flushKeys, err := client.Keys(context.Background(), "{"+prefix+"}:flush:*").Result()
			require.NoError(t, err)
			require.Len(t, flushKeys, 1, "the last batch's flush id only")
			ttl, err := client.PTTL(context.Background(), flushKeys[0]).Result()
			require.NoError(t, err)
			assert.Greater(t, ttl, tc.want-time.Minute)
			assert.LessOrEqual(t, ttl, tc.want)
		})
	}
}

func TestStoreNamesWithColons(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	clock := ccrusage.NewManualClock(base)
	a := newInstance(t, client, ccrusage.Config{Clock: clock}, Options{})
	b := newInstance(t, client, ccrusage.Config{Clock: clock}, Options{})

	record(t, a.tr, "team:alpha", "batch:nightly", ccrusage.Usage{OutputTokens: 4})
	flush(t, a.st)
	flush(t, b.st)

	p := providerSnapshot(t, b.tr, "team:alpha")
	assert.Equal(t, int64(1), p.Tasks["batch:nightly"].Requests)
	assert.Equal(t, int64(4), p.Tasks["batch:nightly"].OutputTokens)
	assert.Equal(t, "4", hash(t, client, "{ccrusage}:counts:team:alpha:2031-03-14")["batch:nightly:output_tokens"])
}

func TestParseDayMember(t *testing.T) {
	for _, tc := range []struct {
		member   string
		provider string
		date     ccrusage.Date
		ok       bool
	}{
		{"gemini:2031-03-14", "gemini", ccrusage.Date{Year: 2031, Month: time.March, Day: 14}, true},
		{"team:alpha:2031-03-14", "team:alpha", ccrusage.Date{Year: 2031, Month: time.March, Day: 14}, true},
		{":2031-03-14", "", ccrusage.Date{Year: 2031, Month: time.March, Day: 14}, true},
		{"gemini", "", ccrusage.Date{}, false},
		{"gemini:14.03.2031", "", ccrusage.Date{}, false},
	} {
		t.Run(tc.member, func(t *testing.T) {
			provider, date, ok := parseDayMember(tc.member)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.provider, provider)
			assert.Equal(t, tc.date, date)
		})
	}
}

func TestLatestDayEndIsAfterEveryZone(t *testing.T) {
	date := ccrusage.Date{Year: 2031, Month: time.March, Day: 14}
	for _, name := range []string{"Etc/GMT+12", "Pacific/Pago_Pago", "America/Los_Angeles", "UTC", "Asia/Tokyo", "Pacific/Kiritimati"} {
		t.Run(name, func(t *testing.T) {
			end := date.AddDays(1).Start(mustLoad(name))
			assert.False(t, latestDayEnd(date).Before(end))
		})
	}
}

// A Tracker clock behind Redis's own, as in a test with a fixed date in the
// past, must not make keys expire as they are written.
func TestStoreClockBehindRedisKeepsKeys(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), nil)
	past := time.Date(2020, time.June, 1, 12, 0, 0, 0, time.UTC)
	clock := ccrusage.NewManualClock(past)
	cfg := limited(clock, nil, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 100})
	a := newInstance(t, client, cfg, Options{})
	b := newInstance(t, client, cfg, Options{})

	record(t, a.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 2})
	record(t, b.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 3})
	flush(t, a.st)
	flush(t, b.st)
	flush(t, a.st)

	for _, in := range []instance{a, b} {
		assert.Equal(t, int64(2), status(t, in.tr, ccrusage.ProviderGemini).Requests.Used)
	}
	serverNow, err := client.Time(context.Background()).Result()
	require.NoError(t, err)
	key := "{ccrusage}:counts:gemini:2020-06-01"
	assert.False(t, expireAt(t, client, key).Before(serverNow.Add(DefaultGrace-time.Minute)),
		"the key lives at least the grace past Redis's time")
}
