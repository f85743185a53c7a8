package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, "ccrusage", o.Prefix)
	assert.Equal(t, 500*time.Millisecond, o.FlushInterval)
	assert.LessOrEqual(t, o.FlushInterval, time.Second)
	assert.Equal(t, 48*time.Hour, o.Grace)
	assert.Equal(t, DefaultMaxPending, o.MaxPending)
	assert.Equal(t, time.Second, o.Timeout)
	assert.Equal(t, DefaultSendUnclaimedAfter, o.SendUnclaimedAfter)
	assert.Len(t, o.InstanceID, 32)

	other, err := Options{}.withDefaults()
	require.NoError(t, err)
	assert.NotEqual(t, o.InstanceID, other.InstanceID)
}

func TestOptionsKeepSetFields(t *testing.T) {
	set := Options{
		Prefix:             "svc",
		FlushInterval:      -1,
		Grace:              time.Hour,
		MaxPending:         3,
		Timeout:            time.Minute,
		SendUnclaimedAfter: 4,
		InstanceID:         "host-1",
	}
	o, err := set.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, set, o)
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"brace in prefix", Options{Prefix: "a{b"}, "ccrusage: invalid Prefix \"a{b\": must not contain '{' or '}'"},
		{"negative grace", Options{Grace: -time.Second}, "ccrusage: invalid Grace -1s: must not be negative"},
		{"negative max pending", Options{MaxPending: -1}, "ccrusage: invalid MaxPending -1: must not be negative"},
		{"negative timeout", Options{Timeout: -time.Second}, "ccrusage: invalid Timeout -1s: must not be negative"},
		{"negative send unclaimed after", Options{SendUnclaimedAfter: -2}, "ccrusage: invalid SendUnclaimedAfter -2: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := New(client, tc.opts)
			assert.Nil(t, st)
			assert.EqualError(t, err, tc.want)
		})
	}
}

func TestNewRejectsNilClient(t *testing.T) {
	st, err := New(nil, Options{})
	assert.Nil(t, st)
	assert.EqualError(t, err, "ccrusage: redis client is nil")
}
