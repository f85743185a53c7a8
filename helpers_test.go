package ccrusage

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// alertLog is an AlertSink that keeps every alert it receives.
type alertLog struct {
	mu     sync.Mutex
	alerts []Alert
}

func (l *alertLog) Send(a Alert) {
	l.mu.Lock()
	l.alerts = append(l.alerts, a)
	l.mu.Unlock()
}

// all returns a copy of the alerts received so far.
func (l *alertLog) all() []Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Alert(nil), l.alerts...)
}

// levels returns the levels of the alerts received so far, in order.
func (l *alertLog) levels() []Level {
	var levels []Level
	for _, a := range l.all() {
		levels = append(levels, a.Level)
	}
	return levels
}

// newTracker returns a Tracker on a ManualClock at start, with its alerts
// collected in the returned log. cfg's Clock and Sink are overwritten.
func newTracker(t *testing.T, start time.Time, cfg Config) (*Tracker, *ManualClock, *alertLog) {
	t.Helper()
	clock := NewManualClock(start)
	log := &alertLog{}
	cfg.Clock = clock
	cfg.Sink = log
	tr, err := New(cfg)
	require.NoError(t, err)
	return tr, clock, log
}

// providerSnapshot returns the snapshot of one provider, failing the test if
// it is absent.
func providerSnapshot(t *testing.T, tr *Tracker, name string) ProviderSnapshot {
	t.Helper()
	for _, p := range tr.Snapshot().Providers {
		if p.Name == name {
			return p
		}
	}
	require.Failf(t, "provider missing from snapshot", "%q", name)
	return ProviderSnapshot{}
}

// status returns tr.Status(name), failing the test on error.
func status(t *testing.T, tr *Tracker, name string) Status {
	t.Helper()
	s, err := tr.Status(name)
	require.NoError(t, err)
	return s
}

// record calls tr.Record, failing the test on error.
func record(t *testing.T, tr *Tracker, provider, task string, u Usage) {
	t.Helper()
	require.NoError(t, tr.Record(provider, task, u))
}

var (
	losAngeles = mustLoad("America/Los_Angeles")
	tokyo      = mustLoad("Asia/Tokyo")
)
