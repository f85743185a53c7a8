package ccrusage

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// firstError keeps the first failure reported by goroutines other than the
// test's, so that a broken invariant fails the test once, not thousands of
// times.
type firstError struct {
	err atomic.Pointer[string]
}

func (f *firstError) report(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.err.CompareAndSwap(nil, &msg)
}

func (f *firstError) check(t *testing.T) {
	t.Helper()
	if msg := f.err.Load(); msg != nil {
		t.Error(*msg)
	}
}

// checkSaturatedReads reads tr through Snapshot, Status and the metrics
// handler, as a service does. It reports a negative count, a saturated
// count read below math.MaxInt64, a level below CRITICAL for the saturated
// provider, and a metrics response that is not valid JSON.
func checkSaturatedReads(tr *Tracker, metrics http.Handler, saturated string, failures *firstError) {
	for _, p := range tr.Snapshot().Providers {
		for task, c := range p.Tasks {
			for _, n := range []int64{c.Requests, c.Failures, c.Fallbacks, c.UnknownUsage, c.InputTokens,
				c.OutputTokens, c.CacheReadTokens, c.CacheCreationTokens, c.EstimatedTokens, c.Tokens} {
				if n < 0 {
					failures.report("%s/%s: negative count in %+v", p.Name, task, c)
				}
			}
		}
		if p.Name == saturated && p.Tokens != math.MaxInt64 {
			failures.report("%s: saturated tokens read as %d", p.Name, p.Tokens)
		}
	}

	st, err := tr.Status(saturated)
	if err != nil {
		failures.report("status: %v", err)
		return
	}
	if st.Tokens.Used != math.MaxInt64 {
		failures.report("status: saturated tokens read as %d", st.Tokens.Used)
	}
	if st.Level != LevelCritical {
		failures.report("status: level %v with saturated tokens", st.Level)
	}

	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ccr/metrics", nil))
	if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
		failures.report("metrics: status %d, body %.200s", rec.Code, rec.Body.String())
	}
}

// TestConcurrentSaturation records, begins and settles requests with
// token counts near math.MaxInt64 on many goroutines while others read.
// Tokens end saturated, and request and failure counts, which never
// overflow, end exact. Each alert is sent once.
func TestConcurrentSaturation(t *testing.T) {
	const (
		huge  = "huge"  // token counts near math.MaxInt64
		exact = "exact" // small counts that cross the request limit
		spill = "spill" // serves the requests that FinishOn moves from huge
	)
	const hugeGoroutines, hugeRounds = 4, 200 // each round makes one call of each kind
	const exactGoroutines, exactCalls = 2, 500
	tr, _, log := newTracker(t, base, Config{Providers: []ProviderConfig{
		{Name: huge, Limits: Limits{Tokens: 1000}},
		{Name: exact, Limits: Limits{Requests: exactGoroutines * exactCalls}},
	}})
	metrics := NewMetricsHandler(tr, nil)

	// Saturate huge's tokens before anything else runs, so that its one
	// CRITICAL alert comes first and the readers can expect saturation
	// throughout. The open request keeps TaskThink's estimate saturated,
	// and FinishUnknown keeps the estimates of TaskDefault.
	record(t, tr, huge, TaskDefault, Usage{InputTokens: math.MaxInt64})
	_, err := tr.Begin(huge, TaskThink, math.MaxInt64)
	require.NoError(t, err)
	require.Equal(t, []Level{LevelCritical}, log.levels())

	var failures firstError
	settle := func(what string, err error) {
		if err != nil {
			failures.report("%s: %v", what, err)
		}
	}
	var writers sync.WaitGroup
	for g := 0; g < hugeGoroutines; g++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			h, err := tr.Handle(huge, TaskDefault)
			settle("handle", err)
			for i := 0; i < hugeRounds; i++ {
				settle("record", tr.Record(huge, TaskDefault, Usage{InputTokens: 1<<62 + 1, OutputTokens: math.MaxInt64 / 3}))
				h.Record(Usage{CacheCreationTokens: math.MaxInt64})
				// A small record adds to the saturated day total with one
				// atomic add, which wraps it, while its own task's counts
				// stay exact.
				settle("record", tr.Record(huge, TaskBackground, Usage{InputTokens: 3}))

				r, err := tr.Begin(huge, TaskThink, math.MaxInt64/2+1)
				settle("begin", err)
				settle("finish", r.Finish(Usage{CacheReadTokens: 1 << 62}))

				r, err = tr.Begin(huge, TaskThink, 1<<62)
				settle("begin", err)
				settle("fail", r.Fail())

				r, err = tr.Begin(huge, TaskThink, 1<<62)
				settle("begin", err)
				settle("fallback", r.Fallback())

				r = h.Begin(math.MaxInt64)
				settle("finish unknown", r.FinishUnknown())

				r, err = tr.Begin(huge, TaskThink, 1<<62)
				settle("begin", err)
				settle("finish on", r.FinishOn(spill, Usage{OutputTokens: 1<<62 + 1}))
			}
		}()
	}
	for g := 0; g < exactGoroutines; g++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; i < exactCalls; i++ {
				if i%2 == 0 {
					settle("record", tr.Record(exact, TaskDefault, Usage{InputTokens: 3, OutputTokens: 2}))
					continue
				}
				r, err := tr.Begin(exact, TaskThink, 7)
				settle("begin", err)
				settle("finish", r.Finish(Usage{InputTokens: 5}))
			}
		}()
	}

	done := make(chan struct{})
	var readers sync.WaitGroup
	for g := 0; g < 2; g++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				checkSaturatedReads(tr, metrics, huge, &failures)
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	failures.check(t)
	checkSaturatedReads(tr, metrics, huge, &failures)
	failures.check(t)

	// Request, failure and fallback counts never come near the bound, so
	// they are exact. Every token count of huge and spill passed it.
	rounds := int64(hugeGoroutines * hugeRounds)
	h := providerSnapshot(t, tr, huge)
	assert.Equal(t, 1+3*rounds, h.Tasks[TaskDefault].Requests, "huge default requests")
	assert.Equal(t, rounds, h.Tasks[TaskDefault].UnknownUsage, "huge unknown usage")
	assert.Equal(t, rounds, h.Tasks[TaskBackground].Requests, "huge background requests")
	assert.Equal(t, 3*rounds, h.Tasks[TaskBackground].InputTokens, "huge background input")
	assert.Equal(t, 3*rounds, h.Tasks[TaskBackground].Tokens, "huge background tokens")
	assert.Equal(t, 1+rounds, h.Tasks[TaskThink].Requests, "huge think requests")
	assert.Equal(t, 3*rounds, h.Tasks[TaskThink].Failures, "huge failures")
	assert.Equal(t, 2*rounds, h.Tasks[TaskThink].Fallbacks, "huge fallbacks")
	assert.Equal(t, int64(math.MaxInt64), h.Tasks[TaskDefault].InputTokens, "huge input")
	assert.Equal(t, int64(math.MaxInt64), h.Tasks[TaskDefault].OutputTokens, "huge output")
	assert.Equal(t, int64(math.MaxInt64), h.Tasks[TaskDefault].CacheCreationTokens, "huge cache creation")
	assert.Equal(t, int64(math.MaxInt64), h.Tasks[TaskThink].CacheReadTokens, "huge cache read")
	assert.Equal(t, int64(math.MaxInt64), h.Tasks[TaskDefault].EstimatedTokens, "huge default estimates")
	assert.Equal(t, int64(math.MaxInt64), h.Tasks[TaskThink].EstimatedTokens, "huge think estimates")
	assert.Equal(t, int64(math.MaxInt64), h.Tokens, "huge tokens")
	assert.Equal(t, LevelCritical, h.Level, "huge level")

	s := providerSnapshot(t, tr, spill)
	assert.Equal(t, rounds, s.Requests, "spill requests")
	assert.Equal(t, int64(math.MaxInt64), s.OutputTokens, "spill output")

	e := providerSnapshot(t, tr, exact)
	calls := int64(exactGoroutines * exactCalls / 2)
	assert.Equal(t, 2*calls, e.Requests, "exact requests")
	assert.Equal(t, 3*calls, e.Tasks[TaskDefault].InputTokens, "exact default input")
	assert.Equal(t, 2*calls, e.Tasks[TaskDefault].OutputTokens, "exact default output")
	assert.Equal(t, 5*calls, e.Tasks[TaskThink].InputTokens, "exact think input")
	assert.Equal(t, 10*calls, e.Tokens, "exact tokens")
	assert.Zero(t, e.EstimatedTokens, "exact estimates")

	// huge announced CRITICAL once, before the goroutines ran. exact
	// reached its limit while they ran, and the goroutine that reaches 80 %
	// may read the count only after others took it past 95 %, so it may
	// announce CRITICAL alone.
	var hugeLevels, exactLevels []Level
	for _, a := range log.all() {
		switch a.Provider {
		case huge:
			hugeLevels = append(hugeLevels, a.Level)
		case exact:
			exactLevels = append(exactLevels, a.Level)
		default:
			t.Errorf("unexpected alert for %s: %v", a.Provider, a.Level)
		}
	}
	assert.Equal(t, []Level{LevelCritical}, hugeLevels, "huge alerts")
	assert.Contains(t, [][]Level{{LevelWarning, LevelCritical}, {LevelCritical}}, exactLevels, "exact alerts")
}
