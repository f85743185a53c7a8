package ccrusage

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedMemory is a shared store between the Trackers of one test. Each
// member applies its collected deltas and reads back the totals of the
// others when the test calls sync. It claims each alert once in all.
type sharedMemory struct {
	mu      sync.Mutex
	totals  map[deltaKey]Counts
	claimed map[string]bool
}

func newSharedMemory() *sharedMemory {
	return &sharedMemory{totals: map[deltaKey]Counts{}, claimed: map[string]bool{}}
}

// member is one process's Store on a sharedMemory.
type member struct {
	mem    *sharedMemory
	shared *Shared
	mine   map[deltaKey]Counts
}

func (m *member) Attach(s *Shared) error {
	m.shared = s
	return nil
}

func (m *member) SendAlert(a Alert, send func(Alert)) {
	key := a.Provider + "/" + a.Level.String() + "/" + a.Date.String()
	m.mem.mu.Lock()
	won := !m.mem.claimed[key]
	m.mem.claimed[key] = true
	m.mem.mu.Unlock()
	if won {
		send(a)
	}
}

func (m *member) Status() StoreStatus {
	return StoreStatus{Name: "shared-memory", Persistent: true, Available: true}
}

// sync applies this member's deltas and reports the others' totals.
func (m *member) sync(t *testing.T) {
	t.Helper()
	m.mem.mu.Lock()
	for _, d := range m.shared.Collect() {
		key := deltaKey{d.Provider, d.Task, d.Date}
		m.mem.totals[key] = m.mem.totals[key].add(d.Counts)
		m.mine[key] = m.mine[key].add(d.Counts)
	}
	var others []Others
	for key, total := range m.mem.totals {
		others = append(others, Others{Provider: key.provider, Task: key.task, Date: key.date, Counts: total.sub(m.mine[key])})
	}
	m.mem.mu.Unlock()
	require.NoError(t, m.shared.SetOthers(others))
}

func newMember(t *testing.T, mem *sharedMemory, clock Clock, sink AlertSink, cfg Config) (*Tracker, *member) {
	t.Helper()
	m := &member{mem: mem, mine: map[deltaKey]Counts{}}
	cfg.Clock, cfg.Sink, cfg.Store = clock, sink, m
	tr, err := New(cfg)
	require.NoError(t, err)
	return tr, m
}

func TestSharedStoreOneQuotaTwoTrackers(t *testing.T) {
	mem := newSharedMemory()
	clock := NewManualClock(base)
	log := &alertLog{}
	cfg := limited(ProviderGemini, Limits{Requests: 100})
	a, ma := newMember(t, mem, clock, log, cfg)
	b, mb := newMember(t, mem, clock, log, cfg)

	for i := 0; i < 45; i++ {
		record(t, a, ProviderGemini, TaskDefault, Usage{InputTokens: 2})
		record(t, b, ProviderGemini, TaskThink, Usage{InputTokens: 3})
	}
	ma.sync(t)
	mb.sync(t)
	ma.sync(t)

	assert.Equal(t, []Level{LevelWarning}, log.levels(), "one WARNING across both trackers")
	for _, tr := range []*Tracker{a, b} {
		st := status(t, tr, ProviderGemini)
		assert.Equal(t, int64(90), st.Requests.Used)
		p := providerSnapshot(t, tr, ProviderGemini)
		assert.Equal(t, int64(90), p.Requests)
		assert.Equal(t, int64(225), p.Tokens)
		assert.Equal(t, int64(45), p.Tasks[TaskThink].Requests)
		assert.True(t, tr.Snapshot().Persistent)
	}

	// The record path now checks thresholds against both trackers' counts:
	// five more requests on one tracker reach CRITICAL at 95.
	for i := 0; i < 5; i++ {
		record(t, a, ProviderGemini, TaskDefault, Usage{})
	}
	assert.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())
}

func TestSharedStoreCollectReturnsChangesOnce(t *testing.T) {
	mem := newSharedMemory()
	tr, m := newMember(t, mem, NewManualClock(base), nil, Config{})
	r, err := tr.Begin(ProviderDeepSeek, TaskDefault, 10)
	require.NoError(t, err)

	first := m.shared.Collect()
	require.Len(t, first, 1)
	assert.Equal(t, Counts{Requests: 1, EstimatedTokens: 10}, first[0].Counts)
	assert.Equal(t, Date{2026, time.October, 14}, first[0].Date)
	assert.Equal(t, time.Date(2026, time.October, 15, 0, 0, 0, 0, time.UTC), first[0].DayEnd.UTC())
	assert.Empty(t, m.shared.Collect())

	require.NoError(t, r.Fail())
	second := m.shared.Collect()
	require.Len(t, second, 1)
	assert.Equal(t, Counts{Requests: -1, Failures: 1, EstimatedTokens: -10}, second[0].Counts)
}

func TestSharedStoreRestartSeesToday(t *testing.T) {
	mem := newSharedMemory()
	clock := NewManualClock(base)
	log := &alertLog{}
	cfg := limited(ProviderGemini, Limits{Requests: 10})
	first, m1 := newMember(t, mem, clock, log, cfg)
	for i := 0; i < 9; i++ {
		record(t, first, ProviderGemini, TaskDefault, Usage{})
	}
	m1.sync(t)
	require.Equal(t, []Level{LevelWarning}, log.levels())

	restarted, m2 := newMember(t, mem, clock, log, cfg)
	m2.sync(t)

	assert.Equal(t, int64(9), status(t, restarted, ProviderGemini).Requests.Used)
	assert.Equal(t, []Level{LevelWarning}, log.levels(), "the WARNING claimed before the restart is not sent again")
	record(t, restarted, ProviderGemini, TaskDefault, Usage{})
	assert.Equal(t, []Level{LevelWarning, LevelCritical}, log.levels())
}

func TestSharedStoreIgnoresOtherDays(t *testing.T) {
	tr, m := newMember(t, newSharedMemory(), NewManualClock(base), nil, Config{})
	record(t, tr, ProviderDeepSeek, TaskDefault, Usage{})

	err := m.shared.SetOthers([]Others{
		{Provider: ProviderDeepSeek, Task: TaskDefault, Date: Date{2026, time.October, 1}, Counts: Counts{Requests: 7}},
		{Provider: "", Task: TaskDefault, Date: Date{2026, time.October, 14}, Counts: Counts{Requests: 7}},
		{Provider: ProviderGemini, Task: TaskDefault, Date: Date{2026, time.October, 14}, Counts: Counts{Requests: 3, InputTokens: 4}},
	})

	assert.ErrorIs(t, err, ErrInvalidName)
	assert.Equal(t, int64(1), providerSnapshot(t, tr, ProviderDeepSeek).Requests)
	g := providerSnapshot(t, tr, ProviderGemini)
	assert.Equal(t, int64(3), g.Requests)
	assert.Equal(t, int64(4), g.Tokens)
}

func TestMemoryStoreStatus(t *testing.T) {
	tr, _, _ := newTracker(t, base, Config{})
	s := tr.Snapshot()
	assert.Equal(t, StoreStatus{Name: "memory", Available: true}, s.Store)
	assert.False(t, s.Persistent)
	assert.False(t, s.Approximate)
}

func TestSharedNowReadsTrackerClock(t *testing.T) {
	clock := NewManualClock(base)
	_, m := newMember(t, newSharedMemory(), clock, nil, Config{})
	assert.Equal(t, base, m.shared.Now())

	later := clock.Advance(time.Hour)
	assert.Equal(t, later, m.shared.Now())
}

func TestStoreStatusJSON(t *testing.T) {
	b, err := json.Marshal(StoreStatus{Name: "memory", Available: true})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"last_sync":null`)

	synced := StoreStatus{Name: "redis", LastSync: time.Date(2026, time.October, 14, 9, 0, 0, 0, time.UTC)}
	b, err = json.Marshal(synced)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"last_sync":"2026-10-14T09:00:00Z"`)
	assert.Equal(t, 1, strings.Count(string(b), "last_sync"))
}
