package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// base is the start of most tests. Keys expire by Redis's own clock at an
// absolute instant derived from the Tracker's clock, so test days must lie
// after the real date: 2031 keeps them alive for the test.
var base = time.Date(2031, time.March, 14, 12, 0, 0, 0, time.UTC)

var losAngeles = mustLoad("America/Los_Angeles")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// alertLog is an AlertSink that keeps every alert it receives, from any
// number of Trackers.
type alertLog struct {
	mu     sync.Mutex
	alerts []ccrusage.Alert
}

func (l *alertLog) Send(a ccrusage.Alert) {
	l.mu.Lock()
	l.alerts = append(l.alerts, a)
	l.mu.Unlock()
}

// levels returns the levels of the alerts received so far, in order.
func (l *alertLog) levels() []ccrusage.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	var levels []ccrusage.Level
	for _, a := range l.alerts {
		levels = append(levels, a.Level)
	}
	return levels
}

// newClient returns a client of the server at addr, closed when t ends.
// configure, if not nil, changes the options first.
func newClient(t testing.TB, addr string, configure func(*redis.Options)) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: addr}
	if configure != nil {
		configure(opts)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// fastFailure makes a client give up at once on a stopped server.
func fastFailure(o *redis.Options) {
	o.MaxRetries = -1
	o.DialTimeout = 200 * time.Millisecond
}

// instance is one service instance: a Tracker and its Store.
type instance struct {
	tr *ccrusage.Tracker
	st *Store
}

// newInstance returns a Tracker with a Store on client, closed when t ends.
// A zero opts.FlushInterval becomes -1, so that the test flushes by hand.
func newInstance(t testing.TB, client redis.UniversalClient, cfg ccrusage.Config, opts Options) instance {
	t.Helper()
	if opts.FlushInterval == 0 {
		opts.FlushInterval = -1
	}
	st, err := New(client, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg.Store = st
	tr, err := ccrusage.New(cfg)
	require.NoError(t, err)
	return instance{tr: tr, st: st}
}

// limited returns a Config with clock, sink and one provider's limits.
func limited(clock ccrusage.Clock, sink ccrusage.AlertSink, provider string, loc *time.Location, l ccrusage.Limits) ccrusage.Config {
	return ccrusage.Config{
		Clock:     clock,
		Sink:      sink,
		Providers: []ccrusage.ProviderConfig{{Name: provider, Location: loc, Limits: l}},
	}
}

func flush(t testing.TB, st *Store) {
	t.Helper()
	require.NoError(t, st.Flush(context.Background()))
}

func record(t *testing.T, tr *ccrusage.Tracker, provider, task string, u ccrusage.Usage) {
	t.Helper()
	require.NoError(t, tr.Record(provider, task, u))
}

// providerSnapshot returns the snapshot of one provider, failing the test if
// it is absent.
func providerSnapshot(t *testing.T, tr *ccrusage.Tracker, name string) ccrusage.ProviderSnapshot {
	t.Helper()
	for _, p := range tr.Snapshot().Providers {
		if p.Name == name {
			return p
		}
	}
	require.Failf(t, "provider missing from snapshot", "%q", name)
	return ccrusage.ProviderSnapshot{}
}

func status(t *testing.T, tr *ccrusage.Tracker, name string) ccrusage.Status {
	t.Helper()
	s, err := tr.Status(name)
	require.NoError(t, err)
	return s
}

// hash returns the fields of a Redis hash.
func hash(t *testing.T, client redis.UniversalClient, key string) map[string]string {
	t.Helper()
	m, err := client.HGetAll(context.Background(), key).Result()
	require.NoError(t, err)
	return m
}
