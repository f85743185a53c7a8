package ccrusage

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newMetricsServer serves NewMetricsHandler(tr, hc) at /ccr/metrics on
// 127.0.0.1 and returns the endpoint's URL.
func newMetricsServer(t *testing.T, tr *Tracker, hc *HealthChecker) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ccr/metrics", NewMetricsHandler(tr, hc))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, srv.URL + "/ccr/metrics"
}

// metricsResponse is one response of the metrics endpoint.
type metricsResponse struct {
	code    int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

func requestMetrics(t *testing.T, method, url string) metricsResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return metricsResponse{code: resp.StatusCode, header: resp.Header, body: body, elapsed: time.Since(start)}
}

// decodeMetrics decodes a metrics body into generic JSON values, with
// numbers kept as their exact text.
func decodeMetrics(t *testing.T, body []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	return m
}

// providerJSON returns the provider named name from a decoded metrics
// body.
func providerJSON(t *testing.T, m map[string]any, name string) map[string]any {
	t.Helper()
	providers, ok := m["providers"].([]any)
	require.True(t, ok, "providers is %T", m["providers"])
	for _, p := range providers {
		p := p.(map[string]any)
		if p["name"] == name {
			return p
		}
	}
	require.Failf(t, "provider not found", "no provider %q in %v", name, providers)
	return nil
}

func newHandlerTracker(t *testing.T, cfg Config) *Tracker {
	t.Helper()
	tr, err := New(cfg)
	require.NoError(t, err)
	return tr
}

func TestNewMetricsHandlerNilTracker(t *testing.T) {
	assert.Panics(t, func() { NewMetricsHandler(nil, nil) })
}

func TestMetricsHandlerRejectsMethods(t *testing.T) {
	_, url := newMetricsServer(t, newHandlerTracker(t, Config{Clock: NewManualClock(base)}), nil)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			resp := requestMetrics(t, method, url)
			assert.Equal(t, http.StatusMethodNotAllowed, resp.code)
			assert.Equal(t, "GET, HEAD", resp.header.Get("Allow"))
		})
	}
}

func TestMetricsHandlerGetAndHead(t *testing.T) {
	tr := newHandlerTracker(t, Config{Clock: NewManualClock(base)})
	require.NoError(t, tr.Record(ProviderDeepSeek, TaskThink, Usage{InputTokens: 100, OutputTokens: 20}))
	_, url := newMetricsServer(t, tr, nil)

	get := requestMetrics(t, http.MethodGet, url)
	assert.Equal(t, http.StatusOK, get.code)
	assert.Equal(t, "application/json", get.header.Get("Content-Type"))
	assert.Equal(t, "no-store", get.header.Get("Cache-Control"))
	assert.Equal(t, "nosniff", get.header.Get("X-Content-Type-Options"))
	assert.True(t, json.Valid(get.body))

	head := requestMetrics(t, http.MethodHead, url)
	assert.Equal(t, http.StatusOK, head.code)
	assert.Equal(t, "application/json", head.header.Get("Content-Type"))
	assert.Equal(t, "no-store", head.header.Get("Cache-Control"))
	assert.Empty(t, head.body)
	assert.Equal(t, get.header.Get("Content-Length"), head.header.Get("Content-Length"))
}

func TestMetricsHandlerFields(t *testing.T) {
	tr := newHandlerTracker(t, Config{Clock: NewManualClock(base)})
	require.NoError(t, tr.Record(ProviderGemini, TaskDefault, Usage{InputTokens: 7}))
	_, url := newMetricsServer(t, tr, nil)

	m := decodeMetrics(t, requestMetrics(t, http.MethodGet, url).body)
	for _, key := range []string{
		"time", "started", "persistent", "thresholds", "providers", "totals", "yesterday",
		"invalid_inputs", "unknown_usage", "late_usage", "sink_panics", "ccr",
	} {
		assert.Contains(t, m, key)
	}
	assert.Nil(t, m["ccr"], "ccr must be null without a HealthChecker")
	assert.Equal(t, "2026-10-14T12:00:00-07:00", m["time"])
	p := providerJSON(t, m, ProviderGemini)
	assert.Equal(t, json.Number("1"), p["requests"])
	assert.Equal(t, json.Number("7"), p["input_tokens"])
}

func TestMetricsHandlerUnlimitedRatioNull(t *testing.T) {
	tr := newHandlerTracker(t, Config{
		Clock:     NewManualClock(base),
		Providers: []ProviderConfig{{Name: ProviderAnthropic, Limits: Limits{Requests: 4}}},
	})
	require.NoError(t, tr.Record(ProviderAnthropic, TaskDefault, Usage{InputTokens: 1}))
	require.NoError(t, tr.Record(ProviderOpenRouter, TaskDefault, Usage{InputTokens: 1}))
	_, url := newMetricsServer(t, tr, nil)

	resp := requestMetrics(t, http.MethodGet, url)
	require.Equal(t, http.StatusOK, resp.code)
	m := decodeMetrics(t, resp.body)

	unlimited := providerJSON(t, m, ProviderOpenRouter)
	assert.Contains(t, unlimited, "ratio")
	assert.Nil(t, unlimited["ratio"])
	assert.Equal(t, "unlimited", unlimited["percent"])

	limited := providerJSON(t, m, ProviderAnthropic)
	assert.Equal(t, json.Number("0.25"), limited["ratio"])
	assert.Equal(t, "INFO", limited["level"])
}

func TestMetricsHandlerExactIntegers(t *testing.T) {
	tr := newHandlerTracker(t, Config{
		Clock:     NewManualClock(base),
		Providers: []ProviderConfig{{Name: ProviderDeepSeek, Limits: Limits{Tokens: math.MaxInt64}}},
	})
	require.NoError(t, tr.Record(ProviderDeepSeek, TaskDefault, Usage{InputTokens: math.MaxInt64 - 1}))
	require.NoError(t, tr.Record(ProviderDeepSeek, TaskDefault, Usage{OutputTokens: math.MaxInt64 - 2}))
	_, url := newMetricsServer(t, tr, nil)

	resp := requestMetrics(t, http.MethodGet, url)
	require.Equal(t, http.StatusOK, resp.code)
	p := providerJSON(t, decodeMetrics(t, resp.body), ProviderDeepSeek)
	assert.Equal(t, "9223372036854775806", p["input_tokens"].(json.Number).String())
	assert.Equal(t, "9223372036854775805", p["output_tokens"].(json.Number).String())
	assert.Equal(t, "9223372036854775807", p["tokens"].(json.Number).String())
	limits := p["limits"].(map[string]any)
	assert.Equal(t, "9223372036854775807", limits["tokens"].(json.Number).String())
	remaining := p["remaining"].(map[string]any)
	assert.Equal(t, "0", remaining["tokens"].(json.Number).String())
	assert.Equal(t, "CRITICAL", p["level"])
}

func TestMetricsHandlerCCRDown(t *testing.T) {
	tests := []struct {
		name    string
		url     func(t *testing.T) string
		wantErr string
	}{
		{"refused", closedCCRURL, "connection refused"},
		{"black hole", func(t *testing.T) string { return newBlackHoleCCR(t).URL() }, "timed out after 200ms"},
		{"server error", func(t *testing.T) string { return newFakeCCR(t, respondJSON(502, "")).URL() }, "unexpected HTTP status 502"},
		{"not json", func(t *testing.T) string { return newFakeCCR(t, respondJSON(200, "OK")).URL() }, "invalid JSON response"},
		{"unknown status", func(t *testing.T) string {
			return newFakeCCR(t, respondJSON(200, `{"status":"degraded"}`)).URL()
		}, `status "degraded"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(base)
			tr := newHandlerTracker(t, Config{Clock: clock})
			require.NoError(t, tr.Record(ProviderDeepSeek, TaskDefault, Usage{InputTokens: 3}))
			hc := mustHealthChecker(t, HealthConfig{URL: tt.url(t), Timeout: testHealthTimeout, Clock: clock})
			_, url := newMetricsServer(t, tr, hc)

			resp := requestMetrics(t, http.MethodGet, url)
			assert.Equal(t, http.StatusOK, resp.code)
			assert.Less(t, resp.elapsed, 2*time.Second)

			var m Metrics
			require.NoError(t, json.Unmarshal(resp.body, &m))
			require.NotNil(t, m.CCR)
			assert.Equal(t, HealthUnavailable, m.CCR.State)
			assert.Contains(t, m.CCR.Error, tt.wantErr)
			assert.True(t, m.CCR.CheckedAt.Equal(base))
			require.Len(t, m.Providers, 1)
			assert.Equal(t, int64(1), m.Providers[0].Requests)
		})
	}
}

func TestMetricsHandlerDefaultTimeout(t *testing.T) {
	hole := newBlackHoleCCR(t)
	hc := mustHealthChecker(t, HealthConfig{URL: hole.URL()})
	_, url := newMetricsServer(t, newHandlerTracker(t, Config{}), hc)

	resp := requestMetrics(t, http.MethodGet, url)
	assert.Equal(t, http.StatusOK, resp.code)
	assert.GreaterOrEqual(t, resp.elapsed, DefaultHealthTimeout)
	assert.Less(t, resp.elapsed, 2*time.Second)
	var m Metrics
	require.NoError(t, json.Unmarshal(resp.body, &m))
	require.NotNil(t, m.CCR)
	assert.Equal(t, HealthUnavailable, m.CCR.State)
}

func TestMetricsHandlerCCRRecovers(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(503, ""))
	clock := NewManualClock(base)
	sink := &healthSink{}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, Sink: sink})
	_, url := newMetricsServer(t, newHandlerTracker(t, Config{Clock: clock}), hc)

	state := func() HealthState {
		t.Helper()
		var m Metrics
		require.NoError(t, json.Unmarshal(requestMetrics(t, http.MethodGet, url).body, &m))
		require.NotNil(t, m.CCR)
		return m.CCR.State
	}
	assert.Equal(t, HealthUnavailable, state())

	// Within the interval the endpoint keeps serving the cached result.
	ccr.setResponse(respondJSON(200, bodyCCR3Running))
	assert.Equal(t, HealthUnavailable, state())

	clock.Advance(DefaultHealthInterval)
	assert.Equal(t, HealthAvailable, state())
	assert.Equal(t, int64(2), ccr.requests.Load())
	alerts := sink.received()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelCritical, alerts[0].Level)
	assert.Equal(t, LevelInfo, alerts[1].Level)
}

func TestMetricsHandlerRecordsWhileCCRDown(t *testing.T) {
	hole := newBlackHoleCCR(t)
	clock := NewManualClock(base)
	quotaAlerts := &healthSink{}
	tr := newHandlerTracker(t, Config{
		Clock:     clock,
		Sink:      quotaAlerts,
		Providers: []ProviderConfig{{Name: ProviderDeepSeek, Limits: Limits{Requests: 100}}},
	})
	// The probe timeout is far longer than the test, so the metrics request
	// below is still waiting on CCR while the records run.
	hc := mustHealthChecker(t, HealthConfig{URL: hole.URL(), Timeout: time.Minute, Clock: clock})
	_, url := newMetricsServer(t, tr, hc)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return hole.accepted.Load() == 1 }, 5*time.Second, time.Millisecond)

	for i := 0; i < 100; i++ {
		require.NoError(t, tr.Record(ProviderDeepSeek, TaskDefault, Usage{InputTokens: 10}))
	}
	st, err := tr.Status(ProviderDeepSeek)
	require.NoError(t, err)
	assert.Equal(t, int64(100), st.Requests.Used)
	assert.Equal(t, LevelCritical, st.Level)
	alerts := quotaAlerts.received()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelWarning, alerts[0].Level)
	assert.Equal(t, LevelCritical, alerts[1].Level)

	select {
	case <-done:
		t.Fatal("the metrics request ended before its probe")
	default:
	}
	assert.Equal(t, HealthUnknown, hc.Status().State)

	// A client that gives up gets its request ended at once.
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the metrics request did not end after its client gave up")
	}
}

func TestMetricsHandlerNoGoroutineLeak(t *testing.T) {
	hole := newBlackHoleCCR(t)
	clock := NewManualClock(base)
	tr := newHandlerTracker(t, Config{Clock: clock})
	hc := mustHealthChecker(t, HealthConfig{URL: hole.URL(), Timeout: testHealthTimeout, Interval: time.Second, Clock: clock})
	before := runtime.NumGoroutine()

	srv, url := newMetricsServer(t, tr, hc)
	client := srv.Client()
	const requests, workers = 100, 10
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				// Each request finds the cached result stale. Every other
				// client gives up early, so both ways out of Check run.
				clock.Advance(time.Second)
				timeout := time.Second
				if i%2 == 0 {
					timeout = 20 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				cancel()
			}
		}()
	}
	for i := 0; i < requests; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	srv.Close()
	client.CloseIdleConnections()

	// Probes end within their timeout, and connections close shortly
	// after; wait a bounded time for both.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	after := runtime.NumGoroutine()
	if !assert.LessOrEqual(t, after, before, "goroutines left behind") {
		buf := make([]byte, 1<<20)
		t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
	assert.Greater(t, hole.accepted.Load(), int64(1))
	assert.Equal(t, HealthUnavailable, hc.Status().State)
}

func TestMetricsHandlerReportedUnavailable(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, APIKey: testAPIKey})
	_, url := newMetricsServer(t, newHandlerTracker(t, Config{Clock: clock}), hc)

	requestMetrics(t, http.MethodGet, url)
	hc.ReportUnavailable(io.ErrUnexpectedEOF)
	body := requestMetrics(t, http.MethodGet, url).body

	var m Metrics
	require.NoError(t, json.Unmarshal(body, &m))
	require.NotNil(t, m.CCR)
	assert.Equal(t, HealthUnavailable, m.CCR.State)
	assert.Equal(t, "unexpected EOF", m.CCR.Error)
	assert.False(t, strings.Contains(string(body), testAPIKey))
	assert.Equal(t, int64(1), ccr.requests.Load())
}
